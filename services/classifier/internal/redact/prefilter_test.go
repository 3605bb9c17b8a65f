package redact

import (
	"maps"
	"math/rand/v2"
	"testing"
)

// textAlways is Text without the pre-checks that skip regexps: the
// pre-checks must never change the answer.
func textAlways(s string) (string, map[string]int32) {
	counts := map[string]int32{}
	s = emailRE.ReplaceAllStringFunc(s, func(string) string { counts[Email]++; return Placeholder(Email) })
	s = ibanRE.ReplaceAllStringFunc(s, func(m string) string {
		n, ok := ibanPrefix(m)
		if !ok {
			return m
		}
		counts[IBAN]++
		return Placeholder(IBAN) + m[n:]
	})
	s = cardRE.ReplaceAllStringFunc(s, func(m string) string {
		if !Luhn(digitsOf(m)) {
			return m
		}
		counts[Card]++
		return Placeholder(Card)
	})
	for _, re := range phoneREs {
		s = re.ReplaceAllStringFunc(s, func(m string) string {
			if n := len(digitsOf(m)); n < 7 || n > 15 {
				return m
			}
			counts[Phone]++
			return Placeholder(Phone)
		})
	}
	if len(counts) == 0 {
		return s, nil
	}
	return s, counts
}

func TestPrechecksNeverChangeTheAnswer(t *testing.T) {
	pieces := []string{"a", "DE", "gb82", "x", " ", "-", "+", "(", ")", "@", ".", "com", "0", "1", "4", "9", "00", "4111", "3704", "0044", "e@x.io", "é"}
	r := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		var s string
		for range r.IntN(40) {
			s += pieces[r.IntN(len(pieces))]
		}
		got, gn := Text(s)
		want, wn := textAlways(s)
		if got != want || !maps.Equal(gn, wn) {
			t.Fatalf("Text(%q) = %q, %v; without pre-checks %q, %v", s, got, gn, want, wn)
		}
	}
}
