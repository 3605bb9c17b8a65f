package rules

import (
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"
)

// TestClassifyTextReusesDocs proves that a doc recycled through docPool
// classifies exactly as a new one: texts of different lengths and words,
// long ones first so a short text would see any state they left behind.
func TestClassifyTextReusesDocs(t *testing.T) {
	c, err := Load("../../../deploy/examples/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{
		strings.Repeat("I was charged twice and the app crashes, not happy at all. ", 20),
		"I was charged twice and the app crashes, not happy at all.",
		"The courier left my parcel in the rain and nobody answers my emails.",
		"Refund please! The checkout is broken and I am NOT satisfied.",
		"Great service, thank you, love it",
		"Ça ne marche pas, remboursement svp. Très déçu.",
		"crashes",
		"",
		"not late. I am happy",
	}
	check := func(t *testing.T, text string) {
		d := &doc{first: map[string]int{}}
		d.reset(text)
		want := c.classify(d)
		if got := c.ClassifyText(text); !proto.Equal(got, want) {
			t.Errorf("%.40q: reused doc classified as %v, a new one as %v", text, got, want)
		}
	}
	for range 3 {
		for _, text := range texts {
			check(t, text)
		}
	}
	// Concurrent classifications share the pool; -race checks they never
	// share a doc.
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for k := range 50 {
				check(t, texts[(g+k)%len(texts)])
			}
		})
	}
	wg.Wait()
}
