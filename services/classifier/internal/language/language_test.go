package language

import (
	"strings"
	"sync"
	"testing"
)

var demoLanguages = []string{"en", "de", "fr", "es", "it", "nl", "pt"}

func TestNGramDetects(t *testing.T) {
	d, err := New(demoLanguages)
	if err != nil {
		t.Fatal(err)
	}
	for text, want := range map[string]string{
		"I was charged twice and the app crashes":                "en",
		"Ich wurde zweimal belastet und die App stürzt ab":       "de",
		"La livraison est en retard et le colis est endommagé":   "fr",
		"El paquete no llegó y quiero un reembolso":              "es",
		"Het pakket is nooit aangekomen, ik wil mijn geld terug": "nl",
	} {
		got, conf := d.Detect(text)
		if got != want || conf <= 0 || conf > 1 {
			t.Errorf("Detect(%q) = %q, %v; want %q with confidence in (0,1]", text, got, conf, want)
		}
	}
	if got, conf := d.Detect("42 !!"); got != "" || conf != 0 {
		t.Errorf("Detect(no letters) = %q, %v; want nothing", got, conf)
	}
}

func TestNGramIsSafeForConcurrentUse(t *testing.T) {
	d, err := New([]string{"en", "de"})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("The delivery was late again. ", 200) // past maxRunes
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if got, _ := d.Detect(long); got != "en" {
				t.Errorf("Detect(long English) = %q", got)
			}
		})
	}
	wg.Wait()
}

func TestCheck(t *testing.T) {
	if err := Check(demoLanguages); err != nil {
		t.Errorf("Check(%q) = %v", demoLanguages, err)
	}
	for _, bad := range [][]string{{"en"}, {"en", "en"}, {"en", "xx"}, {"en", "english"}, nil} {
		if err := Check(bad); err == nil {
			t.Errorf("Check(%q) succeeded", bad)
		}
	}
	if d, err := New([]string{"en"}); err == nil || d != nil {
		t.Errorf("New with one language = %v, %v; want no detector and an error", d, err)
	}
}

// fixed is a Detector that always answers the same.
type fixed struct {
	code string
	conf float64
}

func (f fixed) Detect(string) (string, float64) { return f.code, f.conf }

func TestResolve(t *testing.T) {
	tests := []struct {
		name   string
		d      Detector
		text   string
		locale string
		want   string
	}{
		{"confident detection wins over locale", fixed{"fr", 0.9}, "bonjour", "de-CH", "fr"},
		{"detection at the threshold counts", fixed{"fr", 0.5}, "bonjour", "de-CH", "fr"},
		{"unsure detection falls back to locale", fixed{"nl", 0.3}, "thanks!", "en-GB", "en"},
		{"no detection falls back to locale", fixed{"", 0}, "ok", "pt-BR", "pt"},
		{"empty text is not detected", fixed{"fr", 1}, "  ", "es", "es"},
		{"no detector uses locale", nil, "hello", "it", "it"},
		{"nothing known", fixed{"", 0}, "ok", "", ""},
		{"malformed locale", fixed{"", 0}, "ok", "not a locale!", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Resolve(tt.d, tt.text, tt.locale, 0.5); got != tt.want {
				t.Errorf("Resolve = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPrefix(t *testing.T) {
	for _, tt := range []struct {
		s    string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"one two three", 9, "one two"},   // the cut word is dropped
		{"one two three", 8, "one two "},  // the cut falls on a space
		{"onetwothree", 5, "onetw"},       // no space: a hard cut
		{"a verylongword", 8, "a verylo"}, // dropping the word would leave too little
		{"äöü äöü", 5, "äöü"},             // runes, not bytes
	} {
		if got := prefix(tt.s, tt.n); got != tt.want {
			t.Errorf("prefix(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}

// More candidates than Detect sums on the stack still work.
func TestNGramManyCandidates(t *testing.T) {
	codes := []string{"en", "de", "fr", "es", "it", "nl", "pt", "sv", "da", "nb", "fi", "pl", "cs", "ro", "hu", "tr", "ca", "et", "lv", "lt"}
	if len(codes) <= maxCandidates {
		t.Fatalf("want more than %d candidates", maxCandidates)
	}
	d, err := New(codes)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := d.Detect("Ich wurde zweimal belastet und die App stürzt ab"); got != "de" {
		t.Errorf("Detect(German) = %q", got)
	}
}
