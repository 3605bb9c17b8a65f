package features

import (
	"slices"
	"testing"

	"github.com/feedloop/feedloop/services/classifier/model/wordvec"
)

// With word vectors, the words found in the table follow the n-gram
// terms as Vectors terms (row, count), sorted by row; words with an
// apostrophe are looked up the way the table's text was cut.
func TestVectorTerms(t *testing.T) {
	c := Default().WithWordVectors()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	tab, err := wordvec.Load(c.WordVectors)
	if err != nil {
		t.Fatal(err)
	}
	text := "You DON'T want the refund, it's the REFUND qwzxv!"
	terms := c.Terms(text)
	plain := Default().Terms(text)
	if !slices.Equal(terms[:len(plain)], plain) {
		t.Fatal("the n-gram terms changed")
	}
	got := map[string]uint32{}
	for i, tm := range terms[len(plain):] {
		if tm.Block != Vectors || i > 0 && tm.Hash <= terms[len(plain)+i-1].Hash {
			t.Fatalf("vector term %d %+v: wrong block or not ascending", i, tm)
		}
		got[tab.Word(int(tm.Hash))] = tm.Count
	}
	want := map[string]uint32{"you": 1, "do": 1, "not": 1, "want": 1, "the": 2, "refund": 2, "it": 1}
	if len(got) != len(want) {
		t.Errorf("vector words %v, want %v", got, want)
	}
	for w, n := range want {
		if got[w] != n {
			t.Errorf("count of %q = %d, want %d (all: %v)", w, got[w], n, got)
		}
	}
	// A reused buffer gives the same terms.
	var b Buffer
	for range 2 {
		for _, s := range []string{"hello world", text, "", "😀 it's"} {
			if a, r := c.AppendTerms(nil, s, &b), c.Terms(s); !slices.Equal(a, r) {
				t.Fatalf("%q: AppendTerms %v, Terms %v", s, a, r)
			}
		}
	}
}

func TestValidateWordVectors(t *testing.T) {
	for _, c := range []Config{
		func() Config { c := Default(); c.WordVectors = "nope"; c.WordVectorWeight = 1; return c }(),
		func() Config { c := Default().WithWordVectors(); c.WordVectorWeight = 0; return c }(),
		func() Config { c := Default(); c.WordVectorWeight = 1; return c }(),
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}
