package locale_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/feedloop/feedloop/pkg/locale"
)

func TestCandidates(t *testing.T) {
	got := locale.Candidates(" zh_Hant-TW")
	want := []string{"zh-hant-tw", "zh-hant", "zh", ""}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Candidates = %q, want %q", got, want)
	}
}

func TestDate(t *testing.T) {
	day := time.Date(2025, 3, 28, 23, 30, 0, 0, time.FixedZone("X", -2*3600)) // 29 March in UTC
	for lang, want := range map[string]string{
		"en":    "29 March 2025",
		"en-GB": "29 March 2025",
		"en-US": "March 29, 2025",
		"de":    "29. März 2025",
		"de_CH": "29. März 2025",
		"fr":    "29 mars 2025",
		"ja":    "2025-03-29",
		"":      "2025-03-29",
	} {
		if got := locale.Date(lang, day); got != want {
			t.Errorf("Date(%q) = %q, want %q", lang, got, want)
		}
	}
	if got := locale.Date("de", time.Time{}); got != "" {
		t.Errorf("Date(zero) = %q", got)
	}
}
