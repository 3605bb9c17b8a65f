// Package validate checks a submitted feedback item against intake's rules
// and reports every broken rule as a field violation. It is pure: the same
// item and clock always give the same violations, whatever the transport.
//
// It is public so every edge that takes input on a customer's or a
// system's behalf (the router's status page and team API) refuses what
// intake would refuse with the same rules, before anything is published:
// an edge must never answer success for what the next stage dead-letters.
package validate

import (
	"fmt"
	"net/mail"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/text/language"

	"github.com/feedloop/feedloop/pkg/bus"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// Limits of a feedback item. Byte lengths, not runes: they bound storage and
// message size.
const (
	MaxExternalIDBytes = 256
	MaxTextBytes       = 32 << 10
	MaxSubjectBytes    = 512
	// MaxShortBytes bounds the free-text labels (product, area, customer id
	// and name) the issue does not size: generous, but not a second text.
	MaxShortBytes        = 256
	MaxAttributes        = 64
	MaxAttributeKeyBytes = 64
	MaxAttributeValBytes = 1 << 10
	// MaxFutureSkew is how far occurred_at may lie ahead of the clock:
	// enough for a source with a wrong time zone, not for a typo of a year.
	MaxFutureSkew = 24 * time.Hour
)

// Prefix is the path of the feedback message in every request, so a field
// is named the same over gRPC, HTTP and NATS: "feedback.customer.email".
const Prefix = "feedback"

// Violation names a bad field and the rule it broke.
type Violation struct {
	// Field is the path of the field, e.g. "feedback.customer.email".
	Field string
	// Description is the rule broken, e.g. "must be at most 32768 bytes".
	Description string
}

func (v Violation) String() string { return v.Field + ": " + v.Description }

// Join renders violations as one line, for error messages and logs.
func Join(vs []Violation) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.String()
	}
	return strings.Join(parts, "; ")
}

// Feedback returns every rule fb breaks, in field order; nil means valid.
// id and received_at are not checked: intake overwrites them. now is the
// reception time occurred_at is compared with.
func Feedback(fb *feedloopv1.Feedback, now time.Time) []Violation {
	c := checker{prefix: Prefix}
	if fb == nil {
		c.add("", "is required")
		return c.vs
	}
	switch {
	case fb.GetSource() == "":
		c.add("source", "is required")
	case !bus.ValidToken(fb.GetSource()):
		c.add("source", "must be 1 to 64 characters of a-z, 0-9, '_' or '-', got %q", clip(fb.GetSource()))
	}
	switch id := fb.GetExternalId(); {
	case id == "":
		c.add("external_id", "is required")
	case len(id) > MaxExternalIDBytes:
		c.add("external_id", "must be at most %d bytes, got %d", MaxExternalIDBytes, len(id))
	case !printable(id):
		c.add("external_id", "must be printable UTF-8 without control characters")
	case !idNotPath(id):
		// '/' is fine ("projects/7/issues/42"); what a consumer building a
		// path or URL from the id could be tricked by is not.
		c.add("external_id", "must be an id, not a path: no '.' or '..' segment, no leading '/' and no '\\', got %q", clip(id))
	}
	// CHANNEL_UNSPECIFIED is allowed: the contract says "not given by the
	// source", and many sources do not know. Unknown numbers are not: they
	// would flow on to every consumer as a channel nobody can name.
	if _, ok := feedloopv1.Channel_name[int32(fb.GetChannel())]; !ok {
		c.add("channel", "must be a known Channel value (0 to %d), got %d", len(feedloopv1.Channel_name)-1, int32(fb.GetChannel()))
	}
	if cu := fb.GetCustomer(); cu != nil {
		c.customer(cu)
	}
	c.line("subject", fb.GetSubject(), MaxSubjectBytes)
	switch t := fb.GetText(); {
	case strings.TrimSpace(t) == "" && fb.Nps == nil && fb.Csat == nil && fb.Ces == nil:
		// A bare score is feedback (a survey answer); otherwise the text is it.
		c.add("text", "is required unless the item carries a score (nps, csat or ces)")
	default:
		c.text("text", t, MaxTextBytes)
	}
	if fb.Nps != nil {
		c.score("nps", fb.GetNps(), 0, 10)
	}
	if fb.Csat != nil {
		c.score("csat", fb.GetCsat(), 1, 5)
	}
	if fb.Ces != nil {
		c.score("ces", fb.GetCes(), 1, 7)
	}
	c.line("product", fb.GetProduct(), MaxShortBytes)
	c.line("area", fb.GetArea(), MaxShortBytes)
	c.attributes(fb.GetAttributes())
	if ts := fb.GetOccurredAt(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			c.add("occurred_at", "must be a valid timestamp: %v", err)
		} else if at := ts.AsTime(); at.After(now.Add(MaxFutureSkew)) {
			c.add("occurred_at", "must not be more than %s after reception (%s), got %s",
				MaxFutureSkew, now.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
		}
	}
	if r := fb.GetInReplyTo(); r != "" {
		if u, err := uuid.Parse(r); err != nil || u.String() != strings.ToLower(r) {
			c.add("in_reply_to", "must be a feedback id (UUID such as 123e4567-e89b-12d3-a456-426614174000), got %q", clip(r))
		}
	}
	return c.vs
}

// Text returns the violation of intake's rules for free text (those of
// feedback.text: valid UTF-8, at most maxBytes, no control characters but
// tab, CR and LF) by s, named field as given; nil means valid. Empty text
// is valid: whether a field is required is the edge's rule.
func Text(field, s string, maxBytes int) []Violation {
	c := checker{prefix: ""}
	c.text(field, s, maxBytes)
	return c.vs
}

// Line is Text for a one-line field (the rules of feedback.subject): no
// line break or control character at all.
func Line(field, s string, maxBytes int) []Violation {
	c := checker{prefix: ""}
	c.line(field, s, maxBytes)
	return c.vs
}

// checker collects violations; prefix is put before every field path
// (Prefix for a Feedback, nothing for an edge's own field).
type checker struct {
	prefix string
	vs     []Violation
}

func (c *checker) add(field, format string, args ...any) {
	path := c.prefix
	switch {
	case path == "":
		path = field
	case field != "":
		path += "." + field
	}
	c.vs = append(c.vs, Violation{Field: path, Description: fmt.Sprintf(format, args...)})
}

// text checks an optional free-text field: valid UTF-8, bounded, and no
// control characters but tab, CR and LF (a NUL or an escape sequence means
// nothing in feedback and corrupts terminals, logs and mail).
func (c *checker) text(field, s string, maxBytes int) {
	c.checkText(field, s, maxBytes, textControl, "must not contain control characters other than tab, CR and LF")
}

// textControl reports whether free text may hold control rune r.
func textControl(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || r == '\u2028' || r == '\u2029'
}

// StripText is s without the characters Text refuses in it: invalid UTF-8
// and control characters other than tab, CR and LF. A web form offers the
// result back to its writer, whose screen showed none of them (they come
// with a paste); an API refuses them instead (Text).
func StripText(s string) string {
	return strings.Map(func(r rune) rune {
		if isControl(r) && !textControl(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
}

// isControl is what checkText treats as a control character: Unicode's,
// and the line and paragraph separators.
func isControl(r rune) bool { return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' }

// line checks an optional one-line field (subject, name, labels): as text,
// and no control character or line break at all, since these end up in
// email headers and one-line displays, where a CR/LF injects a header.
func (c *checker) line(field, s string, maxBytes int) {
	c.checkText(field, s, maxBytes, func(rune) bool { return false },
		"must be one line: no CR, LF or other control characters")
}

func (c *checker) checkText(field, s string, maxBytes int, allowed func(rune) bool, rule string) {
	switch {
	case len(s) > maxBytes:
		c.add(field, "must be at most %d bytes, got %d", maxBytes, len(s))
	case !utf8.ValidString(s):
		c.add(field, "must be valid UTF-8")
	default:
		for i, r := range s {
			if isControl(r) && !allowed(r) {
				c.add(field, "%s, got %U at byte %d", rule, r, i)
				return
			}
		}
	}
}

func (c *checker) score(field string, v, lo, hi int32) {
	if v < lo || v > hi {
		c.add(field, "must be between %d and %d, got %d", lo, hi, v)
	}
}

func (c *checker) customer(cu *feedloopv1.Customer) {
	c.line("customer.id", cu.GetId(), MaxShortBytes)
	c.line("customer.name", cu.GetName(), MaxShortBytes)
	if e := cu.GetEmail(); e != "" {
		// Control characters first: an address that smuggles a header into
		// an email is rejected whatever net/mail thinks of the rest.
		if strings.ContainsFunc(e, unicode.IsControl) {
			c.add("customer.email", "must not contain CR, LF or other control characters (email header injection)")
		} else if a, err := mail.ParseAddress(e); err != nil || a.Name != "" || a.Address != e {
			// A bare address only: notifier sends to it as given.
			c.add("customer.email", "must be an email address such as ada@example.com, got %q", clip(e))
		}
	}
	if l := cu.GetLocale(); l != "" {
		if _, err := language.Parse(l); err != nil {
			c.add("customer.locale", "must be a BCP 47 language tag such as en or de-CH, got %q", clip(l))
		}
	}
}

func (c *checker) attributes(attrs map[string]string) {
	if len(attrs) > MaxAttributes {
		c.add("attributes", "must have at most %d entries, got %d", MaxAttributes, len(attrs))
		return
	}
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic order of violations
	for _, k := range keys {
		switch {
		case k == "":
			c.add("attributes", "keys must not be empty")
		case len(k) > MaxAttributeKeyBytes:
			c.add("attributes", "keys must be at most %d bytes, got %q (%d bytes)", MaxAttributeKeyBytes, clip(k), len(k))
		case !printable(k):
			c.add("attributes", "keys must be printable UTF-8 without control characters, got %q", clip(k))
		default:
			c.text(fmt.Sprintf("attributes[%q]", k), attrs[k], MaxAttributeValBytes)
		}
	}
}

// printable reports whether s is valid UTF-8 of printable characters (the
// ASCII space included): an id ends up in logs, keys and subjects.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// idNotPath reports whether id cannot be taken for a path: no "." or ".."
// segment, no leading '/', no backslash.
func idNotPath(id string) bool {
	if strings.HasPrefix(id, "/") || strings.ContainsRune(id, '\\') {
		return false
	}
	for seg := range strings.SplitSeq(id, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// clip shortens s for quoting in a message.
func clip(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
