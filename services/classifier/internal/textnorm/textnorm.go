// Package textnorm puts text in the one form that keyword rules match
// against: compatibility-normalised, accents removed, case-folded, and cut
// into words that know which clause they belong to.
package textnorm

import (
	"strings"
	"unicode"

	"golang.org/x/text/cases"
	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

var apostrophes = strings.NewReplacer("\u2019", "'", "\u2018", "'", "\u02bc", "'", "`", "'")

// Fold returns s compatibility-decomposed (so "ﬁ" is "fi" and full-width
// letters are ASCII), without combining accents ("é" is "e"), case-folded
// ("ß" is "ss") and with typographic apostrophes made plain.
func Fold(s string) string {
	// Transformers and casers keep state: build them per call so Fold is
	// safe for concurrent use.
	t := transform.Chain(norm.NFKD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	out, _, err := transform.String(t, s)
	if err != nil {
		out = s
	}
	return cases.Fold().String(apostrophes.Replace(out))
}

// StripAccents removes combining accents but keeps case and everything
// else, for text such as regular expressions whose escapes are case
// sensitive.
func StripAccents(s string) string {
	t := transform.Chain(norm.NFKD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	out, _, err := transform.String(t, s)
	if err != nil {
		return s
	}
	return apostrophes.Replace(out)
}

// Token is one word of a text.
type Token struct {
	// Text is the word as it appears in the folded text.
	Text string
	// Clause counts the clause breaks (. , ; : ! ? … or a line break)
	// before the word, so rules can tell "not late. happy" from
	// "not happy".
	Clause int
}

// Tokens cuts folded text into words: runs of letters, digits and marks,
// with apostrophes inside a word kept ("don't" is one word). Everything else
// separates words.
func Tokens(folded string) []Token {
	var toks []Token
	clause := 0
	rs := []rune(folded)
	for i := 0; i < len(rs); {
		r := rs[i]
		if !isWord(r) {
			if isClauseBreak(r) {
				clause++
			}
			i++
			continue
		}
		j := i + 1
		for j < len(rs) && (isWord(rs[j]) || rs[j] == '\'' && j+1 < len(rs) && isWord(rs[j+1])) {
			j++
		}
		toks = append(toks, Token{Text: string(rs[i:j]), Clause: clause})
		i = j
	}
	return toks
}

// Words returns the texts of Tokens(Fold(s)), for keywords.
func Words(s string) []string {
	toks := Tokens(Fold(s))
	out := make([]string, len(toks))
	for i, t := range toks {
		out[i] = t.Text
	}
	return out
}

func isWord(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)
}

func isClauseBreak(r rune) bool {
	switch r {
	case '.', ',', ';', ':', '!', '?', '\n', '\u2026', '\u3002', '\uff01', '\uff1f':
		return true
	}
	return false
}
