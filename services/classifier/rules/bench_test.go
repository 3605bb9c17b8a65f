package rules_test

import (
	"strings"
	"testing"

	"github.com/feedloop/feedloop/services/classifier/rules"
)

func BenchmarkClassifyText(b *testing.B) {
	c, err := rules.Load(exampleFile)
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []struct {
		name string
		text string
	}{
		{"short", "I was charged twice and the app crashes, not happy at all."},
		{"32KiB", strings.Repeat("The courier left my parcel in the rain and nobody answers my emails. ", 480)},
	} {
		b.Run(size.name, func(b *testing.B) {
			b.SetBytes(int64(len(size.text)))
			for b.Loop() {
				c.ClassifyText(size.text)
			}
		})
	}
}
