package language

import (
	"strings"
	"testing"
)

// BenchmarkLinguaDetect is one detection with the default languages, on a
// feedback-sized text (the bench item's) and on a long one (cut to
// maxRunes).
func BenchmarkLinguaDetect(b *testing.B) {
	d, err := NewLingua(demoLanguages)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct{ name, text string }{
		{"item", "The invoice for March shows the wrong amount. Could you please check it and send me a corrected one before the end of the month?"},
		{"long", strings.Repeat("Die Lieferung kam wieder zu spät und niemand antwortet auf meine E-Mails. ", 100)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				d.Detect(tc.text)
			}
		})
	}
}
