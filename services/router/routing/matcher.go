package routing

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// MatchType is a matcher's operator.
type MatchType int

// The four operators of Prometheus matchers.
const (
	MatchEqual     MatchType = iota // =
	MatchNotEqual                   // !=
	MatchRegexp                     // =~
	MatchNotRegexp                  // !~
)

func (t MatchType) String() string {
	switch t {
	case MatchEqual:
		return "="
	case MatchNotEqual:
		return "!="
	case MatchRegexp:
		return "=~"
	case MatchNotRegexp:
		return "!~"
	}
	return fmt.Sprintf("MatchType(%d)", int(t))
}

// Matcher tests one label, like a Prometheus matcher: name, operator, value.
//
// Labels with several values (topic, rule) match in the natural way: = and =~
// hold when ANY value matches, != and !~ hold when NO value matches. So
// `topic!="billing"` excludes every item that has billing among its topics.
// An absent label reads as "", so `attr.plan!="enterprise"` holds for an item
// with no plan.
type Matcher struct {
	Type  MatchType
	Name  string
	Value string
	re    *regexp.Regexp
}

// NewMatcher checks the label name (and, for enum labels, the value of
// = and !=) and compiles a regular expression anchored at both ends, as
// Prometheus does: `channel=~"email|chat"` matches "email", not "emails".
func NewMatcher(t MatchType, name, value string) (*Matcher, error) {
	if err := checkLabelName(name); err != nil {
		return nil, err
	}
	m := &Matcher{Type: t, Name: name, Value: value}
	switch t {
	case MatchEqual, MatchNotEqual:
		if vals, ok := enumLabels[name]; ok && value != "" && !slices.Contains(vals, value) {
			return nil, fmt.Errorf("%s has no value %q (want \"\" or one of %s)", name, value, strings.Join(vals, ", "))
		}
	case MatchRegexp, MatchNotRegexp:
		// Compile the value alone first so an error quotes what the user wrote.
		if _, err := regexp.Compile(value); err != nil {
			return nil, fmt.Errorf("invalid regexp %q: %w", value, err)
		}
		m.re = regexp.MustCompile("^(?:" + value + ")$")
	default:
		return nil, fmt.Errorf("unknown match type %d", int(t))
	}
	return m, nil
}

// ParseMatcher parses `name="value"` with one of =, !=, =~, !~. The value
// is a double-quoted Go string (escapes allowed) or a bare word without
// spaces or quotes: `topic=billing` is `topic="billing"`.
func ParseMatcher(s string) (*Matcher, error) {
	in := strings.TrimSpace(s)
	i := 0
	for i < len(in) && isNameByte(in[i]) {
		i++
	}
	name, rest := in[:i], strings.TrimLeft(in[i:], " \t")
	if name == "" {
		return nil, fmt.Errorf("matcher %q: want name=\"value\" (operators =, !=, =~, !~)", s)
	}
	var t MatchType
	switch {
	case strings.HasPrefix(rest, "=~"):
		t, rest = MatchRegexp, rest[2:]
	case strings.HasPrefix(rest, "!~"):
		t, rest = MatchNotRegexp, rest[2:]
	case strings.HasPrefix(rest, "!="):
		t, rest = MatchNotEqual, rest[2:]
	case strings.HasPrefix(rest, "="):
		t, rest = MatchEqual, rest[1:]
	default:
		return nil, fmt.Errorf("matcher %q: want one of =, !=, =~, !~ after %q", s, name)
	}
	rest = strings.TrimSpace(rest)
	value := rest
	if strings.HasPrefix(rest, `"`) {
		v, err := strconv.Unquote(rest)
		if err != nil {
			return nil, fmt.Errorf("matcher %q: value is not a valid double-quoted string", s)
		}
		value = v
	} else if strings.ContainsAny(rest, "\"' \t") {
		return nil, fmt.Errorf("matcher %q: quote a value that holds spaces or quotes", s)
	}
	return NewMatcher(t, name, value)
}

// MustParseMatcher is ParseMatcher for literals in code and tests.
func MustParseMatcher(s string) *Matcher {
	m, err := ParseMatcher(s)
	if err != nil {
		panic(err)
	}
	return m
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
}

// Matches reports whether values (a label's values; none reads as "")
// satisfy m.
func (m *Matcher) Matches(values []string) bool {
	if len(values) == 0 {
		values = []string{""}
	}
	anyMatch := slices.ContainsFunc(values, m.matchOne)
	if m.Type == MatchNotEqual || m.Type == MatchNotRegexp {
		return !anyMatch
	}
	return anyMatch
}

func (m *Matcher) matchOne(v string) bool {
	if m.re != nil {
		return m.re.MatchString(v)
	}
	return v == m.Value
}

// String renders m as it is written in the routes file.
func (m *Matcher) String() string {
	return m.Name + m.Type.String() + strconv.Quote(m.Value)
}

// Matchers all have to match.
type Matchers []*Matcher

// Matches reports whether every matcher holds for ls.
func (ms Matchers) Matches(ls LabelSet) bool {
	for _, m := range ms {
		if !m.Matches(ls[m.Name]) {
			return false
		}
	}
	return true
}

// String renders ms as {a="b", c=~"d"}.
func (ms Matchers) String() string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
