// Package textnorm puts text in the one form that keyword rules match
// against: compatibility-normalised, accents removed, case-folded, and cut
// into words that know which clause they belong to.
package textnorm

import (
	"strings"
	"unicode"
	"unicode/utf8"

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
	if folded, ok := foldASCII(s); ok {
		return folded
	}
	// Transformers and casers keep state: build them per call so Fold is
	// safe for concurrent use.
	t := transform.Chain(norm.NFKD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	out, _, err := transform.String(t, s)
	if err != nil {
		out = s
	}
	return cases.Fold().String(apostrophes.Replace(out))
}

// foldASCII is Fold for ASCII text, where normalisation changes nothing,
// case folding is lower-casing and '`' is the only apostrophe to replace;
// ok is false for other text.
func foldASCII(s string) (string, bool) {
	change := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return "", false
		}
		if 'A' <= c && c <= 'Z' || c == '`' {
			change = true
		}
	}
	if !change {
		return s, true
	}
	b := make([]byte, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '`':
			c = '\''
		}
		b[i] = c
	}
	return string(b), true
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
	return AppendTokens(make([]Token, 0, len(folded)/6+1), folded)
}

// AppendTokens is Tokens appending to toks, so a caller can reuse a slice.
func AppendTokens(toks []Token, folded string) []Token {
	// Words are cut out of folded by byte offsets, so they share its memory
	// instead of being copied one by one.
	clause := 0
	for i := 0; i < len(folded); {
		r, n := decode(folded, i)
		if !isWord(r) {
			if isClauseBreak(r) {
				clause++
			}
			i += n
			continue
		}
		j := i + n
		for j < len(folded) {
			r, n := decode(folded, j)
			if isWord(r) {
				j += n
				continue
			}
			if r == '\'' && j+n < len(folded) {
				if next, _ := decode(folded, j+n); isWord(next) {
					j += n
					continue
				}
			}
			break
		}
		toks = append(toks, Token{Text: folded[i:j], Clause: clause})
		i = j
	}
	return toks
}

// decode returns the rune at byte i of s and its length in bytes; invalid
// UTF-8 is one utf8.RuneError per byte, as converting to []rune gives.
func decode(s string, i int) (rune, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
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
	if r < utf8.RuneSelf {
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)
}

func isClauseBreak(r rune) bool {
	switch r {
	case '.', ',', ';', ':', '!', '?', '\n', '\u2026', '\u3002', '\uff01', '\uff1f':
		return true
	}
	return false
}
