package templates_test

import (
	"errors"
	htmltemplate "html/template"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/feedloop/feedloop/pkg/locale"
	"github.com/feedloop/feedloop/services/notifier/internal/steps"
	"github.com/feedloop/feedloop/services/notifier/internal/templates"
)

// write creates files (path → content) under a new temp dir.
func write(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// step returns the three files of step under prefix, each saying lang.
func step(prefix, name, lang string) map[string]string {
	return map[string]string{
		filepath.Join(prefix, name+".subject.tmpl"): lang + " subject {{.FeedbackID}}\n",
		filepath.Join(prefix, name+".txt.tmpl"):     lang + " text {{.Customer.Name}}",
		filepath.Join(prefix, name+".html.tmpl"):    "<p>" + lang + " html {{.Customer.Name}}</p>",
	}
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

var samples = map[string]any{"received": steps.Sample("received")}

func TestLocaleFallback(t *testing.T) {
	dir := write(t, merge(step("", "received", "default"), step("de", "received", "de"), step("de-AT", "received", "de-at"), step("pt_BR", "received", "pt-br")))
	set, err := templates.Load(dir, samples)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	data := steps.Sample("received")
	for locale, want := range map[string]string{
		"de-CH":      "de",      // region without override → language
		"de":         "de",      // exact
		"DE-at":      "de-at",   // case-insensitive, region override
		"de_AT":      "de-at",   // underscore spelling
		"pt-BR":      "pt-br",   // directory spelled pt_BR
		"pt":         "default", // a region dir is no language fallback
		"fr-CA":      "default", // unknown → default
		"":           "default",
		"zh-Hant-TW": "default",
	} {
		r, err := set.Render("received", locale, data)
		if err != nil {
			t.Fatalf("Render(%q): %v", locale, err)
		}
		if !strings.HasPrefix(r.Subject, want+" subject ") || !strings.HasPrefix(r.Text, want+" text ") || !strings.HasPrefix(r.HTML, "<p>"+want+" html ") {
			t.Errorf("Render(%q) = %+v, want the %s templates", locale, r, want)
		}
	}
}

func TestRenderEscapesHTMLNotText(t *testing.T) {
	dir := write(t, step("", "received", "x"))
	set, err := templates.Load(dir, samples)
	if err != nil {
		t.Fatal(err)
	}
	d := steps.Sample("received")
	d.Customer.Name = `<script>alert("x")</script>`
	r, err := set.Render("received", "", d)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.HTML, "<script>") {
		t.Errorf("HTML not escaped: %s", r.HTML)
	}
	if !strings.Contains(r.Text, "<script>") {
		t.Errorf("text was escaped: %s", r.Text)
	}
}

func TestSubjectIsOneLine(t *testing.T) {
	files := step("", "received", "x")
	files["received.subject.tmpl"] = "  Hello\n{{.Subject}}\r\n  there  \n"
	set, err := templates.Load(write(t, files), samples)
	if err != nil {
		t.Fatal(err)
	}
	d := steps.Sample("received")
	d.Subject = "evil\r\nBcc: x@example.com"
	r, err := set.Render("received", "", d)
	if err != nil {
		t.Fatal(err)
	}
	if r.Subject != "Hello evil Bcc: x@example.com there" {
		t.Errorf("Subject = %q", r.Subject)
	}
}

func TestLoadErrorsNameTheFile(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		want  []string // substrings of the error, each naming a file
	}{
		{
			name:  "missing default file",
			files: map[string]string{"received.subject.tmpl": "s", "received.txt.tmpl": "t"},
			want:  []string{"received.html.tmpl: missing"},
		},
		{
			name:  "empty directory",
			files: map[string]string{},
			want:  []string{"received.subject.tmpl: missing", "received.txt.tmpl: missing", "received.html.tmpl: missing"},
		},
		{
			name:  "missing and broken files together",
			files: map[string]string{"received.subject.tmpl": "{{.Nope}}"},
			want:  []string{"received.subject.tmpl: execute with sample data", "received.txt.tmpl: missing", "received.html.tmpl: missing"},
		},
		{
			name:  "partial locale override",
			files: merge(step("", "received", "d"), map[string]string{"de/received.txt.tmpl": "hallo"}),
			want:  []string{filepath.Join("de", "received.subject.tmpl") + ": missing", filepath.Join("de", "received.html.tmpl") + ": missing"},
		},
		{
			name:  "parse error",
			files: merge(step("", "received", "d"), map[string]string{"received.txt.tmpl": "{{.Customer.Name"}),
			want:  []string{"received.txt.tmpl: parse"},
		},
		{
			name:  "unknown field",
			files: merge(step("", "received", "d"), step("fr", "received", "fr"), map[string]string{"fr/received.html.tmpl": "{{.Customer.Nmae}}"}),
			want:  []string{filepath.Join("fr", "received.html.tmpl") + ": execute with sample data"},
		},
		{
			name:  "unknown function",
			files: merge(step("", "received", "d"), map[string]string{"received.subject.tmpl": "{{shout .Subject}}"}),
			want:  []string{"received.subject.tmpl: parse"},
		},
		{
			name:  "empty subject",
			files: merge(step("", "received", "d"), map[string]string{"received.subject.tmpl": "{{/* nothing */}}\n"}),
			want:  []string{"received.subject.tmpl: renders empty text"},
		},
		{
			name:  "not a locale directory",
			files: merge(step("", "received", "d"), map[string]string{"old stuff/x.txt": "x"}),
			want:  []string{"old stuff: directory name is not a locale"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := write(t, tc.files)
			_, err := templates.Load(dir, samples)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), filepath.Join(dir, w)) {
					t.Errorf("error does not contain %q:\n%v", filepath.Join(dir, w), err)
				}
			}
		})
	}
}

func TestLoadMissingDir(t *testing.T) {
	_, err := templates.Load(filepath.Join(t.TempDir(), "nope"), samples)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("error = %v, want not-exist naming the directory", err)
	}
}

func TestUnusedFilesAreReported(t *testing.T) {
	dir := write(t, merge(step("", "received", "d"), step("", "planned", "d"), map[string]string{"de/recieved.txt.tmpl": "typo"}))
	set, err := templates.Load(dir, samples)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(set.Unused(), "\n")
	for _, w := range []string{"planned.txt.tmpl", filepath.Join("de", "recieved.txt.tmpl")} {
		if !strings.Contains(got, w) {
			t.Errorf("Unused() = %q, want it to list %s", got, w)
		}
	}
	if strings.Contains(got, "received.txt.tmpl") {
		t.Errorf("Unused() lists a used file: %q", got)
	}
}

func TestFuncs(t *testing.T) {
	files := step("", "received", "d")
	files["received.txt.tmpl"] = `{{truncate 5 "abcdefgh"}}|{{truncate 10 "short"}}|{{date .ReceivedAt}}|{{join ", " (slice .Classification.Topics 0 0)}}|{{date .Assignment.ResolveBy}}`
	set, err := templates.Load(write(t, files), samples)
	if err != nil {
		t.Fatal(err)
	}
	d := steps.Sample("received")
	d.Assignment = steps.Assignment{}
	r, err := set.Render("received", "", d)
	if err != nil {
		t.Fatal(err)
	}
	if want := "abcd…|short|2025-03-14 09:26 UTC||"; r.Text != want {
		t.Errorf("Text = %q, want %q", r.Text, want)
	}
}

func exampleSet(t *testing.T) *templates.Set {
	t.Helper()
	all := map[string]any{}
	for _, name := range steps.Names() {
		all[name] = steps.Sample(name)
	}
	set, err := templates.Load(filepath.Join("..", "..", "..", "..", "deploy", "examples", "templates"), all)
	if err != nil {
		t.Fatalf("example templates: %v", err)
	}
	return set
}

// The shipped example templates must load: feedloop dev and the
// Kubernetes examples use them.
func TestExampleTemplatesLoad(t *testing.T) {
	set := exampleSet(t)
	if len(set.Unused()) != 0 {
		t.Errorf("example templates have unused files: %v", set.Unused())
	}
	r, err := set.Render("received", "de-CH", steps.Sample("received"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.Subject, "Wir haben Ihr Feedback erhalten") || r.Locale != "de" {
		t.Errorf("de-CH rendered %q from locale %q", r.Subject, r.Locale)
	}
	r, err = set.Render("routed", "", steps.Sample("routed"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Subject, "[billing]") || !strings.Contains(r.Text, "Priority:       high") {
		t.Errorf("routed rendered %q / %q", r.Subject, r.Text)
	}
}

// Every customer step speaks English, German and French, and says what it
// must: the team's message, the dates in the locale's words, the reason,
// the survey links. Team steps are English only.
func TestExampleTemplatesSayEachStep(t *testing.T) {
	set := exampleSet(t)
	s := steps.Sample("")
	msg, reason, link1 := s.Message, s.Reason, s.SurveyLinks[0].URL
	cases := []struct {
		step, locale string
		subject      string
		text         []string
	}{
		{"received", "en", "We got your feedback: Charged twice", []string{s.Text, s.StatusURL}},
		{"received", "de", "Wir haben Ihr Feedback erhalten: Charged twice", []string{s.Text, s.StatusURL}},
		{"customer_routed", "en", "Your feedback reached our billing team: Charged twice", []string{"reached our billing team"}},
		{"customer_routed", "de", "Ihr Feedback ist bei unserem Team billing angekommen: Charged twice", []string{"Team billing"}},
		{"customer_routed", "fr", "Votre avis est arrivé à notre équipe billing : Charged twice", []string{"équipe billing"}},
		{"planned", "en", "We have a plan: Charged twice", []string{"done by 28 March 2025", msg, s.StatusURL}},
		{"planned", "de", "Wir haben einen Plan: Charged twice", []string{"bis zum 28. März 2025", msg, s.StatusURL}},
		{"planned", "fr", "Nous avons un plan : Charged twice", []string{"d'ici le 28 mars 2025", msg}},
		{"plan_changed", "en", "New date for your feedback: Charged twice", []string{"instead of 21 March 2025", "done by 28 March 2025", msg}},
		{"plan_changed", "de", "Neuer Termin für Ihr Feedback: Charged twice", []string{"statt bis zum 21. März 2025", "bis zum 28. März 2025", msg}},
		{"plan_changed", "fr", "Nouvelle date pour votre avis : Charged twice", []string{"au lieu du 21 mars 2025", "d'ici le 28 mars 2025"}},
		{"resolved", "en", "Resolved: Charged twice", []string{"has resolved your feedback", msg}},
		{"resolved", "de", "Erledigt: Charged twice", []string{"erledigt", msg}},
		{"resolved", "fr", "Résolu : Charged twice", []string{"a traité votre avis", msg}},
		{"declined", "en", "About your feedback: Charged twice", []string{"not be able to act on it", reason, "We are sorry"}},
		{"declined", "de", "Zu Ihrem Feedback: Charged twice", []string{"nicht umsetzen", reason, "Es tut uns leid"}},
		{"declined", "fr", "À propos de votre avis : Charged twice", []string{"pas y donner suite", reason}},
		{"survey", "en", "How did we do? (Charged twice)", []string{"by our billing and product teams", link1, "just reply"}},
		{"survey", "de", "Wie zufrieden waren Sie? (Charged twice)", []string{"billing und product", link1, "antworten Sie einfach"}},
		{"survey", "fr", "Êtes-vous satisfait ? (Charged twice)", []string{link1, "répondez simplement"}},
		{"digest", "en", "Today's updates on your feedback (2)", []string{s.Digest[0].Subject, s.Digest[0].Text, s.Digest[1].Subject, s.Digest[1].Text}},
		{"digest", "de", "Die Neuigkeiten von heute zu Ihrem Feedback (2)", []string{s.Digest[0].Subject, s.Digest[1].Text}},
		{"digest", "fr", "Les nouvelles du jour sur votre avis (2)", []string{s.Digest[0].Subject, s.Digest[1].Text}},
		{"escalated", "", "[billing] [high] SLA breached (acknowledge): Charged twice", []string{"escalated to support-leads", "level 1"}},
		{"reopened", "", "[billing] Reopened by customer: Charged twice", []string{"reopened by customer", reason}},
	}
	for _, tc := range cases {
		t.Run(tc.step+"/"+tc.locale, func(t *testing.T) {
			d := steps.Sample(tc.step)
			r, err := set.Render(tc.step, tc.locale, d)
			if err != nil {
				t.Fatal(err)
			}
			if r.Locale != locale.Normalize(tc.locale) && tc.locale != "en" {
				t.Errorf("rendered from %q, want %q", r.Locale, tc.locale)
			}
			if r.Subject != tc.subject {
				t.Errorf("subject = %q, want %q", r.Subject, tc.subject)
			}
			for _, w := range tc.text {
				if !strings.Contains(r.Text, w) {
					t.Errorf("text lacks %q:\n%s", w, r.Text)
				}
				// Data is escaped in HTML, the template's own words are not.
				if !strings.Contains(r.HTML, w) && !strings.Contains(r.HTML, htmltemplate.HTMLEscapeString(w)) {
					t.Errorf("HTML lacks %q:\n%s", w, r.HTML)
				}
			}
		})
	}
	// Without survey links (no status URL) the survey asks for a reply only.
	d := steps.Sample("survey")
	d.SurveyLinks = nil
	r, err := set.Render("survey", "de", d)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.Text, "csat=") || !strings.Contains(r.Text, "Antworten Sie einfach auf diese Nachricht mit einer Bewertung") {
		t.Errorf("survey without links:\n%s", r.Text)
	}
	// A warning is not a breach.
	d = steps.Sample("escalated")
	d.Escalation.Kind, d.Escalation.Level = "warning", 0
	r, err = set.Render("escalated", "", d)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Subject, "SLA at risk") || strings.Contains(r.Text, "escalated to") {
		t.Errorf("warning rendered %q:\n%s", r.Subject, r.Text)
	}
}
