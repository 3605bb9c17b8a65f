package templates

import (
	"strings"
	"testing"
)

// The fast path of oneLine returns exactly what collapsing the fields does.
func TestOneLineFastPathMatchesFields(t *testing.T) {
	for _, s := range []string{
		"", " ", "a", "a b", "a  b", " a", "a ", "a\tb", "a\nb", "[billing] [high] New feedback: Charged twice",
		"Grüße aus Zürich", "a\u00a0b", "a\u0085b", "a\r\nb", "\n", "a b c  ", "x\vy", "x\fy",
	} {
		if got, want := oneLine(s), strings.Join(strings.Fields(s), " "); got != want {
			t.Errorf("oneLine(%q) = %q, want %q", s, got, want)
		}
	}
}
