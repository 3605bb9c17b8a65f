package textnorm

import (
	"slices"
	"testing"
)

func TestFold(t *testing.T) {
	for in, want := range map[string]string{
		"Café CRÈME":          "cafe creme",
		"Straße":              "strasse",
		"ÜBERWEISUNG":         "uberweisung",
		"ﬁle Ｆｕｌｌ":            "file full",
		"Don\u2019t":          "don't",
		"İstanbul":            "istanbul", // the dot above is an accent too
		"already folded text": "already folded text",
	} {
		if got := Fold(in); got != want {
			t.Errorf("Fold(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStripAccentsKeepsCase(t *testing.T) {
	if got, want := StripAccents(`\bCafé\D`), `\bCafe\D`; got != want {
		t.Errorf("StripAccents = %q, want %q", got, want)
	}
}

func TestTokens(t *testing.T) {
	got := Tokens(Fold("I don't like it. The app—it crashes!\nRe-install: didn't help, 2x charged"))
	want := []Token{
		{"i", 0}, {"don't", 0}, {"like", 0}, {"it", 0},
		{"the", 1}, {"app", 1}, {"it", 1}, {"crashes", 1},
		{"re", 3}, {"install", 3}, {"didn't", 4}, {"help", 4}, {"2x", 5}, {"charged", 5},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Tokens =\n%v\nwant\n%v", got, want)
	}
}

func TestTokensDropsDanglingApostrophes(t *testing.T) {
	got := Words("'quoted' customers' rock'n'roll")
	want := []string{"quoted", "customers", "rock'n'roll"}
	if !slices.Equal(got, want) {
		t.Errorf("Words = %q, want %q", got, want)
	}
}
