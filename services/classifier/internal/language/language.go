// Package language tells which language a feedback item is written in:
// a Detector guesses from the text, and Resolve falls back to the
// customer's locale when the guess is unsure.
package language

import (
	"strings"

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
// language, and detection time grows with the length.
const maxRunes = 300

// New returns the default detector, NGram, for the given ISO 639-1 codes
// (at least two).
func New(codes []string) (Detector, error) {
	d, err := NewNGram(codes)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Check returns an error for codes that are not two or more distinct ISO
// 639-1 codes the detector has profiles for.
func Check(codes []string) error {
	_, err := checkCodes(codes)
	return err
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
