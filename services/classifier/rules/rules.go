// Package rules is the rules-based classifier: a YAML file of keyword and
// regular-expression rules for topics, urgency and sentiment, validated up
// front and compiled into a Classifier that is safe for concurrent use.
//
// The file format is documented in deploy/examples/rules.yaml. In short:
//
//	version: "2025-06-01"          # recorded as model_version "rules:2025-06-01"
//	topics:                        # every matching rule adds its topic, in rule order
//	  - id: billing-charges
//	    topic: billing
//	    keywords: ["charged twice", "refund*"]
//	    patterns: ['\binvoice\s*#?\d+']
//	urgency:                       # the highest matching level wins; default normal
//	  critical: {keywords: [lawyer, fraud]}
//	  high:     {keywords: [crash*]}
//	  low:      {keywords: [suggestion]}
//	sentiment:
//	  negative: [broken, "not working"]
//	  positive: [love, great]
//	  negators: [not, never, "*n't"]   # "not happy" counts as negative
//
// Keywords match whole words and phrases, case- and accent-insensitively
// after Unicode normalisation; a '*' at the end (start) of a keyword matches
// any word ending (beginning). Patterns are RE2 regular expressions matched
// case-insensitively against the normalised text (lower case, no accents).
package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/feedloop/feedloop/services/classifier/internal/textnorm"
)

// ErrInvalid is wrapped by every error about the content of a rules file.
var ErrInvalid = errors.New("invalid rules")

// TopicUnknown is the topic of feedback that no topic rule matched; its
// confidence is 0, which sends the item to triage.
const TopicUnknown = "unknown"

// ModelVersionPrefix precedes the file's version in model_version.
const ModelVersionPrefix = "rules:"

// file is the YAML schema; unknown fields are rejected.
type file struct {
	Version   string      `yaml:"version"`
	Topics    []topicRule `yaml:"topics"`
	Urgency   urgencyFile `yaml:"urgency"`
	Sentiment sentiment   `yaml:"sentiment"`
}

type topicRule struct {
	ID       string   `yaml:"id"`
	Topic    string   `yaml:"topic"`
	Keywords []string `yaml:"keywords"`
	Patterns []string `yaml:"patterns"`
}

type matcherFile struct {
	Keywords []string `yaml:"keywords"`
	Patterns []string `yaml:"patterns"`
}

type urgencyFile struct {
	Critical matcherFile `yaml:"critical"`
	High     matcherFile `yaml:"high"`
	Low      matcherFile `yaml:"low"`
}

type sentiment struct {
	Negative []string `yaml:"negative"`
	Positive []string `yaml:"positive"`
	Negators []string `yaml:"negators"`
}

// Load reads and compiles the rules file at path.
func Load(path string) (*Classifier, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("rules %s: %w", path, err)
	}
	return c, nil
}

// Parse validates and compiles a rules file. Its error wraps ErrInvalid and
// names every bad entry by its path, e.g.
// "topics[2].patterns[0]: invalid regexp: ...".
func Parse(data []byte) (*Classifier, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the file is empty", ErrInvalid)
		}
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: the file must hold exactly one YAML document", ErrInvalid)
	}
	c, errs := compile(f)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w:\n%w", ErrInvalid, errors.Join(errs...))
	}
	return c, nil
}

var (
	idRE      = regexp.MustCompile(`^[a-z0-9][a-z0-9_.\-]{0,63}$`)
	topicRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9_\-]{0,63}$`)
	versionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:+\-]{0,63}$`)
)

// compile validates f and builds the runtime model, collecting every
// problem rather than stopping at the first.
func compile(f file) (*Classifier, []error) {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	c := &Classifier{version: f.Version, modelVersion: ModelVersionPrefix + f.Version}
	if f.Version == "" {
		bad("version", "is required")
	} else if !versionRE.MatchString(f.Version) {
		bad("version", "must be 1-64 letters, digits or _ . : + -, got %q", f.Version)
	}

	if len(f.Topics) == 0 {
		bad("topics", "at least one topic rule is required")
	}
	firstUse := map[string]int{}
	for i, r := range f.Topics {
		p := fmt.Sprintf("topics[%d]", i)
		switch {
		case r.ID == "":
			bad(p+".id", "is required")
		case !idRE.MatchString(r.ID):
			bad(p+".id", "must be 1-64 of a-z 0-9 _ . - starting with a letter or digit, got %q", r.ID)
		default:
			if j, dup := firstUse[r.ID]; dup {
				bad(p+".id", "duplicate id %q, first used by topics[%d]", r.ID, j)
			} else {
				firstUse[r.ID] = i
			}
		}
		switch {
		case r.Topic == "":
			bad(p+".topic", "is required")
		case r.Topic == TopicUnknown:
			bad(p+".topic", "%q is reserved for feedback that no rule matched", TopicUnknown)
		case !topicRE.MatchString(r.Topic):
			bad(p+".topic", "must be 1-64 of a-z 0-9 _ - starting with a letter or digit, got %q", r.Topic)
		}
		if len(r.Keywords) == 0 && len(r.Patterns) == 0 {
			bad(p, "needs at least one keyword or pattern")
		}
		m, merrs := compileMatcher(p, matcherFile{Keywords: r.Keywords, Patterns: r.Patterns})
		errs = append(errs, merrs...)
		c.topics = append(c.topics, topicMatcher{id: r.ID, topic: r.Topic, m: m})
	}

	for _, l := range []struct {
		name  string
		level urgencyLevel
		f     matcherFile
	}{
		{"critical", urgencyCritical, f.Urgency.Critical},
		{"high", urgencyHigh, f.Urgency.High},
		{"low", urgencyLow, f.Urgency.Low},
	} {
		m, merrs := compileMatcher("urgency."+l.name, l.f)
		errs = append(errs, merrs...)
		c.urgency = append(c.urgency, urgencyMatcher{level: l.level, m: m})
	}

	var kerrs []error
	c.negative, kerrs = compileKeywords("sentiment.negative", f.Sentiment.Negative)
	errs = append(errs, kerrs...)
	c.positive, kerrs = compileKeywords("sentiment.positive", f.Sentiment.Positive)
	errs = append(errs, kerrs...)
	c.negators, kerrs = compileKeywords("sentiment.negators", f.Sentiment.Negators)
	errs = append(errs, kerrs...)
	for i, n := range c.negators {
		if len(n.words) != 1 {
			bad(fmt.Sprintf("sentiment.negators[%d]", i), "must be a single word, got %q", f.Sentiment.Negators[i])
		}
	}
	return c, errs
}

func compileMatcher(path string, f matcherFile) (matcher, []error) {
	var m matcher
	var errs []error
	m.phrases, errs = compileKeywords(path+".keywords", f.Keywords)
	for i, src := range f.Patterns {
		p := fmt.Sprintf("%s.patterns[%d]", path, i)
		// Compile the pattern as written first so the error quotes the
		// author's text, then the form that runs against folded text.
		if _, err := regexp.Compile(src); err != nil {
			errs = append(errs, fmt.Errorf("%s: invalid regexp: %w", p, err))
			continue
		}
		re, err := regexp.Compile("(?i)" + textnorm.StripAccents(src))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: invalid regexp after removing accents: %w", p, err))
			continue
		}
		if re.MatchString("") {
			errs = append(errs, fmt.Errorf("%s: %q matches empty text, so it would match every feedback", p, src))
			continue
		}
		m.patterns = append(m.patterns, newPattern(re))
	}
	return m, errs
}

func compileKeywords(path string, kws []string) ([]phrase, []error) {
	var out []phrase
	var errs []error
	for i, kw := range kws {
		ph, err := compilePhrase(kw)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %w", path, i, err))
			continue
		}
		out = append(out, ph)
	}
	return out, errs
}

// compilePhrase turns a keyword into the words it matches. A '*' may open
// or close the keyword and widens its first or last word.
func compilePhrase(kw string) (phrase, error) {
	s := strings.TrimSpace(textnorm.Fold(kw))
	if s == "" {
		return phrase{}, errors.New("keyword is empty")
	}
	anyStart := strings.HasPrefix(s, "*")
	anyEnd := strings.HasSuffix(s, "*")
	s = strings.TrimSuffix(strings.TrimPrefix(s, "*"), "*")
	if strings.Contains(s, "*") {
		return phrase{}, fmt.Errorf("keyword %q: '*' is only allowed at the start or end", kw)
	}
	toks := textnorm.Tokens(s)
	if len(toks) == 0 {
		return phrase{}, fmt.Errorf("keyword %q has no letters or digits", kw)
	}
	ph := phrase{text: kw}
	for _, t := range toks {
		ph.words = append(ph.words, word{text: t.Text})
	}
	if anyStart {
		if !strings.HasPrefix(s, toks[0].Text) {
			return phrase{}, fmt.Errorf("keyword %q: '*' must be attached to a word", kw)
		}
		ph.words[0].anyStart = true
	}
	if anyEnd {
		if !strings.HasSuffix(s, toks[len(toks)-1].Text) {
			return phrase{}, fmt.Errorf("keyword %q: '*' must be attached to a word", kw)
		}
		ph.words[len(ph.words)-1].anyEnd = true
	}
	return ph, nil
}
