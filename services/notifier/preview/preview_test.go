package preview_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/notifier/preview"
)

func planEvent(locale string, consent bool) *feedloopv1.Event {
	return &feedloopv1.Event{
		Id: "ev-1", FeedbackId: "fb-1", OccurredAt: timestamppb.Now(),
		Payload: &feedloopv1.Event_StatusChanged{StatusChanged: &feedloopv1.StatusChanged{
			Team: "billing", From: feedloopv1.Status_STATUS_ACKNOWLEDGED, To: feedloopv1.Status_STATUS_PLANNED,
			CustomerMessage: "We refund the double charge.",
			DueAt:           timestamppb.New(time.Date(2031, 3, 14, 0, 0, 0, 0, time.UTC)),
			StatusToken:     "tok",
			Feedback: &feedloopv1.Feedback{Id: "fb-1", Subject: "Charged twice", Customer: &feedloopv1.Customer{
				Name: "Ada", Locale: locale, Consent: &feedloopv1.Consent{Contact: consent},
			}},
		}},
	}
}

var examples = filepath.Join("..", "..", "..", "deploy", "examples", "templates")

func load(t *testing.T) *preview.Renderer { return loadDir(t, examples) }

func loadDir(t *testing.T, dir string) *preview.Renderer {
	t.Helper()
	r, err := preview.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRendersThePlanInTheCustomersLocale(t *testing.T) {
	res, err := load(t).Render(planEvent("de-CH", true), "https://status.example/s")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Messages) != 1 || len(res.Skipped) != 0 {
		t.Fatalf("got %+v, want one message", res)
	}
	m := res.Messages[0]
	if m.Step != "planned" || m.Locale != "de" || !strings.HasPrefix(m.Subject, "Wir haben einen Plan") {
		t.Errorf("step %q locale %q subject %q, want planned in de", m.Step, m.Locale, m.Subject)
	}
	for _, want := range []string{"We refund the double charge.", "https://status.example/s/tok"} {
		if !strings.Contains(m.Text, want) || !strings.Contains(m.HTML, want) {
			t.Errorf("text or HTML lacks %q:\n%s\n%s", want, m.Text, m.HTML)
		}
	}
}

func TestSaysWhyNoMessageWithoutConsent(t *testing.T) {
	res, err := load(t).Render(planEvent("en", false), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Messages) != 0 || len(res.Skipped) != 1 || !strings.Contains(res.Skipped[0], "consent") {
		t.Fatalf("got %+v, want no message and a consent reason", res)
	}
}

func TestAcknowledgeTellsTheCustomerNothing(t *testing.T) {
	ev := planEvent("en", true)
	ev.GetStatusChanged().To = feedloopv1.Status_STATUS_ACKNOWLEDGED
	res, err := load(t).Render(ev, "")
	if err != nil || len(res.Messages) != 0 {
		t.Fatalf("got %+v, %v; want no message", res, err)
	}
}

// The language a message is in is the one its HTML declares, so a clerk is
// told the truth whatever the template directories are called: the
// example default templates are English whatever the customer's locale
// (they once declared the customer's), and a deployment whose default
// templates are Spanish gets "es".
func TestMessageLanguageIsWhatItsHTMLDeclares(t *testing.T) {
	for _, c := range []struct{ locale, wantLocale, wantLanguage string }{
		{"de-CH", "de", "de"},
		{"fr", "fr", "fr"},
		{"pt-BR", "", "en"}, // no Portuguese templates: the default ones
		{"", "", "en"},
	} {
		res, err := load(t).Render(planEvent(c.locale, true), "")
		if err != nil {
			t.Fatal(err)
		}
		if m := res.Messages[0]; m.Locale != c.wantLocale || m.Language != c.wantLanguage {
			t.Errorf("customer locale %q: templates %q in %q, want %q in %q", c.locale, m.Locale, m.Language, c.wantLocale, c.wantLanguage)
		}
	}

	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(examples)); err != nil {
		t.Fatal(err)
	}
	planned := filepath.Join(dir, "planned.html.tmpl")
	b, err := os.ReadFile(planned)
	if err != nil {
		t.Fatal(err)
	}
	for lang, want := range map[string]string{`<html lang="es">`: "es", `<html lang=" es-MX ">`: "es", `<html>`: "", `<html lang="not a tag!">`: ""} {
		if err := os.WriteFile(planned, []byte(strings.Replace(string(b), `<html lang="en">`, lang, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		res, err := loadDir(t, dir).Render(planEvent("es", true), "")
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Messages[0].Language; got != want {
			t.Errorf("default planned template with %s: language %q, want %q", lang, got, want)
		}
	}
}
