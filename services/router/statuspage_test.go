package router_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// page fetches path on the router's HTTP port with accept, wanting code.
func (e *edges) page(t *testing.T, path, accept string, code int) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+e.router.HTTPAddr()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", accept)
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != code {
		t.Fatalf("GET %s: %s, want %d:\n%s", path, resp.Status, code, body)
	}
	return string(body)
}

func contains(t *testing.T, what, page string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(page, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, page)
		}
	}
}

func lacks(t *testing.T, what, page string, unwanted ...string) {
	t.Helper()
	for _, w := range unwanted {
		if strings.Contains(page, w) {
			t.Errorf("%s shows %q:\n%s", what, w, page)
		}
	}
}

// The test's own month names, written apart from the page's tables.
var (
	monthsDE = []string{"Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober", "November", "Dezember"}
	monthsFR = []string{"janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"}
)

func dateDE(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("%d. %s %d", t.Day(), monthsDE[t.Month()-1], t.Year())
}

func dateFR(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("%d %s %d", t.Day(), monthsFR[t.Month()-1], t.Year())
}

// The status page speaks the customer's language, picked from the locale
// as the notifier picks its templates (base language, then English): its
// words, the timeline's phrases and the dates. The customer's own text is
// escaped whatever the language, and the JSON form is the same for all.
func TestStatusPageSpeaksTheCustomersLanguage(t *testing.T) {
	e := startEdges(t)
	const (
		de, deToken   = "3a1f0c2e-3b4d-4e5f-8a9b-0c1d2e3f4a01", "000000000000000000000000000de001"
		fr, frToken   = "3a1f0c2e-3b4d-4e5f-8a9b-0c1d2e3f4a02", "000000000000000000000000000f7002"
		pt, ptToken   = "3a1f0c2e-3b4d-4e5f-8a9b-0c1d2e3f4a03", "00000000000000000000000000097003"
		none, noToken = "3a1f0c2e-3b4d-4e5f-8a9b-0c1d2e3f4a04", "00000000000000000000000000000004"
	)
	e.itemIn(de, deToken, "de", `Rechnung <script>alert("x")</script> & Co`)
	e.itemIn(fr, frToken, "fr-FR", "Facture")
	e.itemIn(pt, ptToken, "pt-BR", "Fatura")
	e.itemIn(none, noToken, "", "Invoice")
	due := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 10)
	if _, err := e.teams["billing"].Plan(e.as("billing"), &feedloopv1.PlanRequest{FeedbackId: de, CustomerMessage: "Wir erstatten <b>42 EUR</b>.", DueAt: timestamppb.New(due)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.teams["billing"].Resolve(e.as("billing"), &feedloopv1.ResolveRequest{FeedbackId: fr, CustomerMessage: "Remboursé."}); err != nil {
		t.Fatal(err)
	}
	today := time.Now().UTC()

	page := e.page(t, "/status/"+deToken, "text/html", http.StatusOK)
	contains(t, "the German page", page, `<html lang="de">`, "Ihr Feedback", "In Bearbeitung", "Eingegangen am <time", ">"+dateDE(today)+"</time>",
		"Wir haben Ihr Feedback erhalten", "An unser Team billing weitergeleitet", "Unser Team billing sieht sich Ihr Feedback an",
		"Unser Team billing hat einen Plan", "geplant bis zum "+dateDE(due), "Unser Team billing plant, bis zum "+dateDE(due),
		"Team billing", "Geplant", "Verlauf", "UTC",
		// The customer's and the team's text, escaped.
		"Rechnung &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co", "Wir erstatten &lt;b&gt;42 EUR&lt;/b&gt;.")
	lacks(t, "the German page", page, "<script>", "<b>42", "We received", "Forwarded", "What happened", "planned for", "In progress")
	if !strings.Contains(page, dateDE(today)+", ") {
		t.Errorf("the German timeline lacks a date as %q:\n%s", dateDE(today)+", 03:35 UTC", page)
	}

	page = e.page(t, "/status/"+frToken, "text/html", http.StatusOK)
	contains(t, "the French page", page, `<html lang="fr">`, "Votre avis", "Clôturé", "Reçu le <time", ">"+dateFR(today)+"</time>",
		"Nous avons bien reçu votre avis", "Transmis à notre équipe billing", "Traité par notre équipe billing",
		"Historique", dateFR(today)+" à ", "Remboursé.")
	lacks(t, "the French page", page, "We received", "What happened", "Closed")

	for _, tok := range []string{ptToken, noToken} {
		page = e.page(t, "/status/"+tok, "text/html", http.StatusOK)
		contains(t, "the English page", page, `<html lang="en">`, "Your feedback", "In progress", "We received your feedback",
			"Forwarded to the billing team", "The billing team is looking into it", "What happened", today.Format("2 January 2006")+", ")
	}

	// JSON is for machines: the same English values whatever the locale,
	// plus the page's language.
	var got struct {
		Language string `json:"language"`
		Closed   bool   `json:"closed"`
		Teams    []struct {
			Team, Status string
			Due          *time.Time `json:"planned_for"`
		} `json:"teams"`
		Timeline []struct {
			What string `json:"what"`
		} `json:"timeline"`
	}
	body := e.page(t, "/status/"+deToken, "application/json", http.StatusOK)
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	var whats []string
	for _, en := range got.Timeline {
		whats = append(whats, en.What)
	}
	want := "We received your feedback|Forwarded to the billing team|The billing team is looking into it|The billing team has a plan"
	if got.Language != "de" || got.Closed || len(got.Teams) != 1 || got.Teams[0].Status != "planned" || got.Teams[0].Due == nil || !got.Teams[0].Due.Equal(due) ||
		strings.Join(whats, "|") != want {
		t.Errorf("German item's JSON: %s\nwant language de, team billing planned for %s, timeline %s", body, due, want)
	}
	if !strings.Contains(body, `"subject":"Rechnung \u003cscript\u003e`) {
		t.Errorf("JSON subject: %s", body)
	}

	// An unknown link says so in each language, with no item's words.
	page = e.page(t, "/status/ffffffffffffffffffffffffffffffff", "text/html", http.StatusNotFound)
	contains(t, "the not-found page", page, "We cannot find this page", "Wir können diese Seite nicht finden", "Nous ne trouvons pas cette page")
	e.page(t, "/status/not-a-token", "text/html", http.StatusNotFound)

	if dir := os.Getenv("STATUS_PAGE_DUMP"); dir != "" { // a look at the pages by hand
		for name, tok := range map[string]string{"de": deToken, "fr": frToken, "en": noToken} {
			_ = os.WriteFile(dir+"/status-"+name+".html", []byte(e.page(t, "/status/"+tok, "text/html", http.StatusOK)), 0o644)
		}
	}
}

// The survey in German: the question, the scale, the form's labels, a
// refusal and the thanks; the JSON refusal stays the API's English.
func TestSurveyInTheCustomersLanguage(t *testing.T) {
	e := startEdges(t)
	const id, token = "3a1f0c2e-3b4d-4e5f-8a9b-0c1d2e3f4a05", "000000000000000000000000000de005"
	e.itemIn(id, token, "de-CH", "Rechnung")
	if _, err := e.teams["billing"].Resolve(e.as("billing"), &feedloopv1.ResolveRequest{FeedbackId: id, CustomerMessage: "Erstattet."}); err != nil {
		t.Fatal(err)
	}

	page := e.page(t, "/status/"+token, "text/html", http.StatusOK)
	contains(t, "the closed German page", page, "Abgeschlossen", "Alle Teams haben Ihr Feedback bearbeitet", `href="/status/`+token+`/survey"`)

	form := e.page(t, "/status/"+token+"/survey?csat=4", "text/html", http.StatusOK)
	contains(t, "the German survey", form, `<html lang="de">`, "<fieldset", "<legend>Wie zufrieden sind Sie damit, wie wir Ihr Feedback bearbeitet haben?</legend>",
		"1 = sehr unzufrieden", "5 = sehr zufrieden", `<label class="comment" for="comment">Möchten Sie noch etwas hinzufügen? (optional)</label>`,
		">Absenden</button>", `value="4" required checked`)
	lacks(t, "the German survey", form, "How satisfied", "Send")

	r := e.survey(token, url.Values{"csat": {"9"}}, "", true)
	if r.code != http.StatusUnprocessableEntity {
		t.Fatalf("csat 9: %d", r.code)
	}
	contains(t, "the German refusal", r.body, "Bitte wählen Sie eine Bewertung von 1 bis 5.", `<html lang="de">`)
	lacks(t, "the German refusal", r.body, "choose a score")
	r = e.survey(token, url.Values{"csat": {"5"}, "comment": {"gut\x00\vschlecht"}}, "", true)
	if r.code != http.StatusUnprocessableEntity {
		t.Fatalf("comment with control characters: %d", r.code)
	}
	// The comment comes back without what the customer could not see, to
	// check and send; the page says so in German, with no English rule.
	contains(t, "the German comment refusal", r.body, "Ihr Kommentar enthielt Zeichen, die wir nicht annehmen können", "Wir haben sie entfernt",
		">gutschlecht</textarea>")
	lacks(t, "the German comment refusal", r.body, "control characters", "U+0000", `lang="en"`)
	if dir := os.Getenv("STATUS_PAGE_DUMP"); dir != "" {
		_ = os.WriteFile(dir+"/survey-de.html", []byte(r.body), 0o644)
	}
	if r := e.survey(token, url.Values{"csat": {"9"}}, "", false); r.code != http.StatusUnprocessableEntity || r.Error != "csat: choose a score from 1 to 5" {
		t.Errorf("JSON refusal: %d %+v, want the API's English", r.code, r)
	}

	r = e.survey(token, url.Values{"csat": {"5"}, "comment": {"Danke"}}, "", true)
	if r.code != http.StatusOK {
		t.Fatalf("answer: %d %s", r.code, r.body)
	}
	contains(t, "the German thanks", r.body, "Vielen Dank für Ihre Antwort.")
}
