package language

import (
	"strings"
	"testing"
)

// BenchmarkDetect is one detection with the default languages, on a
// feedback-sized text (the bench item's) and on a long one (cut to
// maxRunes), by the detector and by lingua, the one before it.
func BenchmarkDetect(b *testing.B) {
	ngram, err := New(demoLanguages)
	if err != nil {
		b.Fatal(err)
	}
	lingua, err := newLingua(demoLanguages)
	if err != nil {
		b.Fatal(err)
	}
	for _, d := range []struct {
		name string
		d    Detector
	}{{"ngram", ngram}, {"lingua", lingua}} {
		for _, tc := range []struct{ name, text string }{
			{"item", "The invoice for March shows the wrong amount. Could you please check it and send me a corrected one before the end of the month?"},
			{"long", strings.Repeat("Die Lieferung kam wieder zu spät und niemand antwortet auf meine E-Mails. ", 100)},
		} {
			b.Run(d.name+"/"+tc.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					d.d.Detect(tc.text)
				}
			})
		}
	}
}
