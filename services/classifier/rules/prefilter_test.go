package rules

import (
	"math/rand/v2"
	"os"
	"regexp"
	"regexp/syntax"
	"slices"
	"testing"
	"unicode"
	"unicode/utf8"
)

// The literal pre-check assumes KELVIN SIGN and LONG S are the only non-ASCII
// runes a case-insensitive ASCII letter matches.
func TestOnlyKelvinAndLongSFoldToASCII(t *testing.T) {
	for r := 'a'; r <= 'z'; r++ {
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f >= utf8.RuneSelf && f != '\u212a' && f != '\u017f' {
				t.Errorf("%q folds to %q", r, f)
			}
		}
	}
}

func TestRequiredLiterals(t *testing.T) {
	for src, want := range map[string][]string{
		`(?i)\bcharged\s+(?:me\s+)?(?:twice|two times|2x|double)\b`: {"charged"},
		`(?i)\b(?:order|parcel|package)\s+(?:is\s+|was\s+)?late\b`:  {"order", "rcel", "ckage"},
		`(?i)\berror\s*(?:code\s*)?[:#]?\s*[a-z]*\d{2,}`:            {"error"},
		`(?i)\bversion\s+\d+\.\d+`:                                  {"version"},
		`(?i)caf[eé]`:                                               {"caf"},
		`(?i)\w+@\w+`:                                               {"@"},
		`(?i)\d+`:                                                   nil,
		`(?i)(?:foo)?bar*`:                                          {"ba"},
		`(?i)straße`:                                                nil,
	} {
		re, err := syntax.Parse(src, syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := requiredLiterals(re.Simplify())
		if ok != (want != nil) || !slices.Equal(got, want) {
			t.Errorf("requiredLiterals(%s) = %q, %v; want %q", src, got, ok, want)
		}
	}
}

// The pre-check never changes whether a pattern matches: random texts made
// of the example rules' literals and their near misses, every pattern.
func TestPatternPrecheckAgreesWithRegexp(t *testing.T) {
	data, err := os.ReadFile("../../../deploy/examples/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	var pats []pattern
	for _, tm := range c.topics {
		pats = append(pats, tm.m.patterns...)
	}
	for _, u := range c.urgency {
		pats = append(pats, u.m.patterns...)
	}
	pats = append(pats, newPattern(regexp.MustCompile(`(?i)kiss`)))
	pieces := []string{"charged", "Charged", "charg", "me", "twice", "2x", "invoice", "receipt", "no.", "#", "12", "7",
		"order", "parcel", "package", "is", "late", "error", "code", ":", "version", "1.2", "app", "update",
		"report", "to", "the", "police", "\u212aiss", "\u017fo", "ki\u017f\u017f", " ", " ", "\n", "é"}
	r := rand.New(rand.NewPCG(5, 6))
	for range 5000 {
		var s string
		for range r.IntN(12) {
			s += pieces[r.IntN(len(pieces))]
		}
		for _, p := range pats {
			if got, want := p.match(s, caseless(s)), p.re.MatchString(s); got != want {
				t.Fatalf("%s on %q: pre-checked %v, regexp %v", p.re, s, got, want)
			}
		}
	}
}
