package textnorm

import (
	"math/rand/v2"
	"slices"
	"testing"
	"unicode"

	"golang.org/x/text/cases"
	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// foldSlow is Fold without the ASCII fast path.
func foldSlow(s string) string {
	t := transform.Chain(norm.NFKD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	out, _, err := transform.String(t, s)
	if err != nil {
		out = s
	}
	return cases.Fold().String(apostrophes.Replace(out))
}

// tokensSlow is Tokens over a []rune, as it was written first.
func tokensSlow(folded string) []Token {
	var toks []Token
	clause := 0
	rs := []rune(folded)
	for i := 0; i < len(rs); {
		if !isWord(rs[i]) {
			if isClauseBreak(rs[i]) {
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

func TestFastPathsAgree(t *testing.T) {
	pieces := []string{"a", "Z", "k", "K", "ß", "é", "É", "ﬁ", "Ｆ", "İ", "\u212a", "\u017f", "'", "`", "\u2019", " ", ".", ",", "\n", "!", "0", "9", "-", "\xff", "ü", "あ", "\u0301"}
	r := rand.New(rand.NewPCG(3, 4))
	for range 5000 {
		var s string
		for range r.IntN(30) {
			s += pieces[r.IntN(len(pieces))]
		}
		if got, want := Fold(s), foldSlow(s); got != want {
			t.Fatalf("Fold(%q) = %q, want %q", s, got, want)
		}
		f := foldSlow(s)
		if got, want := Tokens(f), tokensSlow(f); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("Tokens(%q) = %v, want %v", f, got, want)
		}
	}
}
