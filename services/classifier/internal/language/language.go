// Package language tells which language a feedback item is written in:
// a Detector guesses from the text, and Resolve falls back to the
// customer's locale when the guess is unsure.
package language

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pemistahl/lingua-go"
	"golang.org/x/text/language"
)

// Detector guesses the language of a text. Implementations must be safe for
// concurrent use.
type Detector interface {
	// Detect returns the ISO 639-1 code of the language of text with a
	// confidence in 0..1, or "" when it cannot tell.
	Detect(text string) (code string, confidence float64)
}

// maxRunes bounds the text a detector looks at: a few sentences decide the
// language (lingua's accuracy on sentences of 120 characters and more is
// not much below what it gets from whole paragraphs), and detection time
// grows with the length.
const maxRunes = 300

// Lingua detects languages with lingua-go in low-accuracy mode (trigram
// models only), restricted to a few languages: that keeps the resident
// models to a few MB and a detection well under a millisecond, at the cost
// of reliability on texts of a few words (which Resolve guards against).
type Lingua struct {
	d lingua.LanguageDetector
}

// Check returns an error for codes that are not two or more distinct ISO
// 639-1 codes lingua knows.
func Check(codes []string) error {
	_, err := isoCodes(codes)
	return err
}

func isoCodes(codes []string) ([]lingua.IsoCode639_1, error) {
	var out []lingua.IsoCode639_1
	var errs []error
	seen := map[lingua.IsoCode639_1]bool{}
	for _, c := range codes {
		iso := lingua.GetIsoCode639_1FromValue(strings.TrimSpace(c))
		if iso == lingua.UnknownIsoCode639_1 || lingua.GetLanguageFromIsoCode639_1(iso) == lingua.Unknown {
			errs = append(errs, fmt.Errorf("%q is not an ISO 639-1 code of a supported language", c))
			continue
		}
		if !seen[iso] {
			seen[iso] = true
			out = append(out, iso)
		}
	}
	if len(errs) == 0 && len(out) < 2 {
		errs = append(errs, fmt.Errorf("need at least 2 distinct languages to choose from, got %q", codes))
	}
	return out, errors.Join(errs...)
}

// NewLingua builds a detector for the given ISO 639-1 codes (at least two)
// and loads their models now, so the first message does not pay for it.
func NewLingua(codes []string) (*Lingua, error) {
	iso, err := isoCodes(codes)
	if err != nil {
		return nil, fmt.Errorf("language: %w", err)
	}
	d := lingua.NewLanguageDetectorBuilder().
		FromIsoCodes639_1(iso...).
		WithLowAccuracyMode().
		WithPreloadedLanguageModels().
		Build()
	return &Lingua{d: d}, nil
}

// Detect implements Detector.
func (l *Lingua) Detect(text string) (string, float64) {
	text = prefix(text, maxRunes)
	values := l.d.ComputeLanguageConfidenceValues(text)
	if len(values) == 0 || values[0].Value() == 0 {
		return "", 0
	}
	return strings.ToLower(values[0].Language().IsoCode639_1().String()), values[0].Value()
}

// prefix returns the first n runes of s, cut back to the last space when
// that leaves a word whole and keeps most of the text.
func prefix(s string, n int) string {
	end := -1
	for i := range s {
		if n == 0 {
			end = i
			break
		}
		n--
	}
	if end < 0 {
		return s
	}
	if isSpaceAt(s, end-1) || isSpaceAt(s, end) {
		return s[:end]
	}
	if sp := strings.LastIndexAny(s[:end], " \t\n"); sp > end/2 {
		end = sp
	}
	return s[:end]
}

func isSpaceAt(s string, i int) bool {
	return s[i] == ' ' || s[i] == '\t' || s[i] == '\n'
}

// Resolve returns the language of a feedback item as a BCP 47 language
// tag: what d detects in text when its confidence reaches minConfidence,
// otherwise the language of the customer's locale ("de-CH" gives "de"),
// otherwise "". d may be nil (locale only).
func Resolve(d Detector, text, locale string, minConfidence float64) string {
	if d != nil && strings.TrimSpace(text) != "" {
		if code, conf := d.Detect(text); code != "" && conf >= minConfidence {
			return code
		}
	}
	return FromLocale(locale)
}

// FromLocale returns the base language of a BCP 47 locale, or "" when the
// locale is empty or malformed.
func FromLocale(locale string) string {
	if strings.TrimSpace(locale) == "" {
		return ""
	}
	tag, err := language.Parse(locale)
	if err != nil {
		return ""
	}
	base, conf := tag.Base()
	if conf == language.No {
		return ""
	}
	return base.String()
}
