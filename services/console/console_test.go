package console_test

import (
	"bufio"
	"context"
	"google.golang.org/protobuf/proto"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/console"
)

func TestConfigNamesTheVariable(t *testing.T) {
	cfg := console.DefaultConfig()
	cfg.HTTPAddr, cfg.TeamAPIAddr, cfg.SessionTTL = "nope", "router", time.Hour
	err := cfg.Validate()
	for _, want := range []string{"CONSOLE_HTTP_ADDR", "CONSOLE_TEAM_API_ADDR", "CONSOLE_SESSION_KEY_FILE"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %s", err, want)
		}
	}
	cfg = testConfig("127.0.0.1:1", "/nonexistent")
	cfg.Dev = &console.Dev{}
	if _, err := console.New(cfg, nil); err == nil || !strings.Contains(err.Error(), "CONSOLE_TEMPLATES_DIR") {
		t.Errorf("New with a missing templates dir = %v, want an error naming CONSOLE_TEMPLATES_DIR", err)
	}
}

func TestSignInSignOutAndCSRF(t *testing.T) {
	e := start(t)
	b := e.browser()
	if r := b.get("/"); r.url != "/signin" {
		t.Fatalf("signed out, / went to %s, want the sign-in page", r.url)
	}
	for _, h := range []string{"Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy"} {
		if r := b.get("/signin"); r.hdr.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
	if r := b.get("/signin"); !strings.Contains(r.hdr.Get("Content-Security-Policy"), "default-src 'none'; script-src 'self'") {
		t.Errorf("CSP %q", r.hdr.Get("Content-Security-Policy"))
	}
	r := b.post("/signin", url.Values{"token": {"not-a-token"}})
	if r.code != http.StatusUnauthorized || !strings.Contains(r.body, "This token was not accepted") {
		t.Fatalf("wrong token: %d\n%s", r.code, r.body)
	}
	b.signIn("billing")
	cookie := b.c.Jar.Cookies(mustURL(e.url))[0]
	if strings.Contains(cookie.Value, tokens["billing"]) {
		t.Error("the session cookie holds the token in clear")
	}
	// A form without its CSRF token changes nothing.
	if r := b.post("/signout", url.Values{"csrf_token": {""}}); r.code != http.StatusForbidden || !strings.Contains(r.body, "Form refused") {
		t.Fatalf("sign-out without CSRF token: %d\n%s", r.code, r.body)
	}
	if r := b.get("/"); r.url != "/" {
		t.Fatal("the refused sign-out signed out")
	}
	if r := b.post("/signout", url.Values{}); r.url != "/signin" || !strings.Contains(r.body, "You are signed out") {
		t.Fatalf("sign-out: at %s\n%s", r.url, r.body)
	}
	if r := b.get("/"); r.url != "/signin" {
		t.Fatal("still signed in after signing out")
	}
	// Another site's form is refused by the browser's own headers too.
	req, _ := http.NewRequest(http.MethodPost, e.url+"/signin", strings.NewReader("token=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if r := b.do(req); r.code != http.StatusForbidden {
		t.Errorf("cross-site POST: %d, want 403", r.code)
	}
}

func TestRevokedTokenSignsOutWithAMessage(t *testing.T) {
	e := start(t)
	b := e.browser()
	b.signIn("billing")
	writeTokens(t, e.tokens, ", revoked: true")
	testkit.Eventually(t, "the revoked session signed out", func() bool {
		r := b.get("/")
		return r.code == http.StatusUnauthorized && strings.Contains(r.body, "no longer accepts your team token") && strings.Contains(r.body, "revoked")
	})
	if r := b.get("/"); r.url != "/signin" {
		t.Errorf("after the message, / is at %s, want the sign-in page (cookie cleared)", r.url)
	}
}

func TestExpiringTokenEndsTheSession(t *testing.T) {
	e := start(t)
	writeTokens(t, e.tokens, ", expires: \""+time.Now().Add(3*time.Second).UTC().Format(time.RFC3339)+"\"")
	b := e.browser()
	testkit.Eventually(t, "the router knows the expiry", func() bool {
		res, err := e.team("billing").Me(e.team("billing").ctx(), &feedloopv1.MeRequest{})
		return err == nil && res.GetExpiresAt() != nil
	})
	b.signIn("billing")
	testkit.Eventually(t, "the session ended with the token", func() bool {
		r := b.get("/")
		return r.code == http.StatusUnauthorized && strings.Contains(r.body, "expired")
	})
}

func TestInboxOrderFilterSearchAndPaging(t *testing.T) {
	e := start(t)
	now := time.Now()
	late := e.submit(fb{subject: "Invoice total wrong", text: "The invoice total is wrong.", topic: "billing", occurred: now.Add(-time.Hour)})
	soon := e.submit(fb{subject: "Charged twice", text: "I was charged twice for May.", topic: "billing", occurred: now.Add(-5 * time.Hour)})
	refund := e.submit(fb{subject: "Refund please", text: "Where is my refund?", topic: "billing", email: "grace@example.com", occurred: now.Add(-2 * time.Hour), nps: proto.Int32(3)})
	e.submit(fb{subject: "Parcel lost", text: "My parcel never came.", topic: "delivery"})
	b := e.browser()
	b.signIn("billing")
	r := b.get("/")
	order := rowIDs(r.body)
	if want := []string{soon, refund, late}; strings.Join(order, ",") != strings.Join(want, ",") {
		t.Fatalf("inbox order %v, want soonest due first %v", order, want)
	}
	if !strings.Contains(r.body, "<strong>Overdue</strong> · overdue by 1 h") {
		t.Errorf("the item 5 h old (4 h to acknowledge) is not marked overdue in words:\n%s", r.body)
	}
	if !strings.Contains(r.body, "due in 2 h") || !strings.Contains(r.body, "Ada Lovelace &lt;ada@example.com&gt;") {
		t.Errorf("countdown or customer missing")
	}
	if !strings.Contains(r.body, "NPS 3 · detractor") || !strings.Contains(r.body, "Refund please") {
		t.Errorf("the score band or subject is missing from the inbox")
	}
	if strings.Contains(r.body, "Parcel lost") {
		t.Error("billing sees logistics' item")
	}
	if got := rowIDs(b.get("/?q=refund").body); len(got) != 1 || got[0] != refund {
		t.Errorf("search refund: %v, want [%s]", got, refund)
	}
	if got := rowIDs(b.get("/?q=grace%40example.com").body); len(got) != 1 || got[0] != refund {
		t.Errorf("search by customer email: %v, want [%s]", got, refund)
	}
	c := e.team("billing")
	if _, err := c.Acknowledge(c.ctx(), &feedloopv1.AcknowledgeRequest{FeedbackId: late}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "acknowledged filter", func() bool {
		got := rowIDs(b.get("/?state=acknowledged").body)
		return len(got) == 1 && got[0] == late
	})
	if got := rowIDs(b.get("/?state=resolved").body); len(got) != 0 {
		t.Errorf("resolved filter: %v, want none", got)
	}
	if r := b.get("/?state=bogus"); r.code != http.StatusBadRequest {
		t.Errorf("unknown state: %d", r.code)
	}
	// Paging: 25 a page.
	for range 24 {
		e.submit(fb{subject: "More", text: "another billing question", topic: "billing", occurred: now})
	}
	first := b.get("/")
	if n := len(rowIDs(first.body)); n != 25 || !strings.Contains(pagerText(first.body), "Showing 1–25 of 27") {
		t.Fatalf("first page: %d rows", n)
	}
	next := regexp.MustCompile(`href="(/\?[^"]+)" rel="next"`).FindStringSubmatch(first.body)
	if next == nil {
		t.Fatal("no next page link")
	}
	second := b.get(html.UnescapeString(next[1]))
	if n := len(rowIDs(second.body)); n != 2 || !strings.Contains(pagerText(second.body), "Showing 26–27 of 27") {
		t.Errorf("second page: %d rows", n)
	}
}

// pagerText is the pager's "Showing …" line as a reader sees it, tags
// dropped.
func pagerText(body string) string {
	_, after, _ := strings.Cut(body, `<span id="shown">`)
	line, _, _ := strings.Cut(after, "</span></span>")
	return regexp.MustCompile(`<[^>]*>`).ReplaceAllString("Showing"+strings.TrimPrefix(line, "Showing"), "")
}

var rowRE = regexp.MustCompile(`<tr class="row[^"]*" data-id="([^"]+)"`)

func rowIDs(body string) []string {
	var out []string
	for _, m := range rowRE.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func TestItemPageActionsAndRefusals(t *testing.T) {
	e := start(t)
	evil := `<script>alert(1)</script><img src=x onerror=alert(2)>`
	id := e.submit(fb{subject: "Charged twice", text: "I was charged twice. " + evil, topic: "billing"})
	other := e.submit(fb{subject: "Old invoice", text: "Please resend invoice 12.", topic: "billing"})
	b := e.browser()
	b.signIn("billing")
	r := b.get("/items/" + id)
	if r.code != http.StatusOK || strings.Contains(r.body, "<script>alert") || strings.Contains(r.body, "<img src=x") ||
		!strings.Contains(r.body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Fatalf("markup not shown inert:\n%s", r.body)
	}
	for _, want := range []string{"charged twice", "92% sure", "the trained model", "other items", "The customer will read this", "Internal — only teams see this", `<option value="logistics">`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("item page lacks %q", want)
		}
	}
	// Words of the text are quoted; a description of the model's word
	// vectors is not (the customer did not write it).
	if !strings.Contains(r.body, "“charged twice”") || !strings.Contains(r.body, "<em>meaning of the whole text</em>") || strings.Contains(r.body, "“(meaning") {
		t.Errorf("evidence not shown as quoted words and a description:\n%s", regexp.MustCompile(`(?s)<table class="evidence">.*?</table>`).FindString(r.body))
	}
	if !strings.Contains(r.body, "/items/"+other) {
		t.Error("customer history does not link the other item")
	}
	// Acknowledge, then again: an illegal transition, said in words.
	if r := b.post("/items/"+id+"/acknowledge", url.Values{}); !strings.Contains(r.body, "Acknowledged. The customer is not told") {
		t.Fatalf("acknowledge: %d\n%s", r.code, r.body)
	}
	if r := b.post("/items/"+id+"/acknowledge", url.Values{}); r.code != http.StatusConflict || !strings.Contains(r.body, "can&#39;t be done in the item&#39;s current state") {
		t.Errorf("second acknowledge: %d\n%s", r.code, regexp.MustCompile(`(?s)class="error" role="alert">[^<]*`).FindString(r.body))
	}
	// Plan without a date: refused beside the form, the message kept.
	r = b.post("/items/"+id+"/plan", url.Values{"customer_message": {"Refund on its way"}})
	if r.code != http.StatusUnprocessableEntity || !strings.Contains(r.body, "Choose the date") || !strings.Contains(r.body, ">Refund on its way</textarea>") {
		t.Errorf("plan without date: %d\n%s", r.code, r.body)
	}
	// Plan in the past: the router's field violation, in words.
	r = b.post("/items/"+id+"/plan", url.Values{"customer_message": {"Refund on its way"}, "due": {"2020-01-01"}})
	if r.code != http.StatusUnprocessableEntity || !strings.Contains(r.body, "Please correct the form: date:") || !strings.Contains(r.body, `name="due" type="date" min="`) {
		t.Errorf("plan in the past: %d\n%s", r.code, r.body)
	}
	due := time.Now().UTC().AddDate(0, 0, 10).Format("2006-01-02")
	if r := b.post("/items/"+id+"/plan", url.Values{"customer_message": {"Refund on its way"}, "due": {due}}); !strings.Contains(r.body, "Planned. The customer will be told") {
		t.Fatalf("plan: %d\n%s", r.code, r.body)
	}
	// Resolve without a message is refused; nothing changes.
	// The refusal names the field as the form labels it, and marks it.
	if r := b.post("/items/"+id+"/resolve", url.Values{"customer_message": {""}}); r.code != http.StatusUnprocessableEntity ||
		!strings.Contains(r.body, "Please correct the form: message to the customer: required") ||
		!strings.Contains(r.body, `name="customer_message" rows="3" aria-invalid="true"`) {
		t.Errorf("empty resolve: %d\n%s", r.code, r.body)
	}
	c := e.team("billing")
	g, _ := c.Get(c.ctx(), &feedloopv1.GetRequest{FeedbackId: id})
	if st := g.GetItem().GetAssignments()[0].GetStatus(); st != feedloopv1.Status_STATUS_PLANNED {
		t.Fatalf("after the refused resolve the status is %s, want planned", st)
	}
	if r := b.post("/items/"+id+"/comment", url.Values{"internal_note": {"Checked with finance " + evil}}); !strings.Contains(r.body, "Note added") || strings.Contains(r.body, "<script>alert") {
		t.Errorf("comment: %d", r.code)
	}
	// A page loaded before the forms were renamed posts "text": its note is kept.
	if r := b.post("/items/"+id+"/comment", url.Values{"text": {"Finance confirmed the refund"}}); !strings.Contains(r.body, "Note added") || !strings.Contains(r.body, "Finance confirmed the refund") {
		t.Errorf("comment from an older page: %d", r.code)
	}
	if r := b.post("/items/"+id+"/resolve", url.Values{"customer_message": {"Refunded 12.00"}}); !strings.Contains(r.body, "Resolved. The customer will be told") {
		t.Fatalf("resolve: %d\n%s", r.code, r.body)
	}
	// Decline and reroute on the other item.
	if r := b.post("/items/"+other+"/reroute", url.Values{"team": {""}, "internal_note": {"not ours"}}); r.code != http.StatusUnprocessableEntity || !strings.Contains(r.body, ">not ours</textarea>") {
		t.Errorf("reroute without team: %d\n%s", r.code, r.body)
	}
	if r := b.post("/items/"+other+"/reroute", url.Values{"team": {"logistics"}, "internal_note": {"a parcel question"}}); r.url != "/" {
		t.Fatalf("reroute: at %s %d\n%s", r.url, r.code, r.body)
	}
	lg := e.browser()
	lg.signIn("logistics")
	if r := lg.get("/items/" + other); r.code != http.StatusOK {
		t.Errorf("logistics cannot open the rerouted item: %d", r.code)
	}
	if r := lg.post("/items/"+other+"/decline", url.Values{"customer_message": {"Invoices are not ours either"}}); !strings.Contains(r.body, "Declined. The customer will be told your reason") {
		t.Errorf("decline: %d\n%s", r.code, r.body)
	}
	// Another team's item: not listed, its URL refused.
	if strings.Contains(lg.get("/?state=all").body, id) {
		t.Error("logistics' inbox lists billing's item")
	}
	if r := lg.get("/items/" + id); r.code != http.StatusNotFound || strings.Contains(r.body, "Charged twice") {
		t.Errorf("logistics opened billing's item: %d", r.code)
	}
	if r := lg.post("/items/"+id+"/comment", url.Values{"internal_note": {"sneaky"}}); r.code != http.StatusNotFound && r.code != http.StatusForbidden {
		t.Errorf("logistics commented on billing's item: %d", r.code)
	}
}

// TestItemPageNamesTheEmailsLanguage: next to each box whose text goes into
// an email, the page names the language that email goes out in, as the
// notifier's templates will pick it (de-CH gets the German templates,
// pt-BR the default ones, whose HTML says they are English), and says
// nothing where no email goes.
func TestItemPageNamesTheEmailsLanguage(t *testing.T) {
	e := start(t)
	swiss := e.submit(fb{subject: "Doppelte Abbuchung", text: "Zweimal abgebucht.", topic: "billing", email: "hans@example.ch", locale: "de-CH"})
	brazil := e.submit(fb{subject: "Cobrança dupla", text: "Fui cobrado duas vezes.", topic: "billing", email: "joao@example.com", locale: "pt-BR"})
	quiet := e.submit(fb{subject: "Quiet", text: "Do not write to me.", topic: "billing", email: "quiet@example.com", noConsent: true})
	b := e.browser()
	b.signIn("billing")
	page := func(id string) string {
		b.get("/items/" + id)
		b.post("/items/"+id+"/acknowledge", url.Values{})
		r := b.get("/items/" + id)
		if !strings.Contains(r.body, `id="form-plan"`) {
			t.Fatalf("item %s: no plan form after acknowledging:\n%s", id, r.body)
		}
		return r.body
	}
	for _, c := range []struct {
		id, lang, locale string
	}{
		{swiss, "German", "Swiss High German (de-CH)"},
		{brazil, "English", "Brazilian Portuguese (pt-BR)"},
	} {
		body := page(c.id)
		for _, action := range []string{"plan", "resolve", "decline"} {
			want := `id="` + action + `-lang">This email goes out in <strong>` + c.lang + `</strong>: write your message in ` + c.lang + `.</p>`
			if !strings.Contains(body, want) {
				t.Errorf("%s (%s): no %q", c.locale, action, want)
			}
			if !strings.Contains(body, `id="`+action+`-message" name="customer_message" rows="3" aria-describedby="`+action+`-lang"`) {
				t.Errorf("%s: the %s message box does not point at its language", c.locale, action)
			}
		}
		if !strings.Contains(body, "<dd>"+c.locale+"</dd>") {
			t.Errorf("customer's language not in words: want %q", c.locale)
		}
	}
	if body := page(quiet); strings.Contains(body, "This email goes out in") {
		t.Error("a customer who gets no email: the page names an email language")
	}
}

// TestPreviewIsWhatTheCustomerGets previews a plan, makes it, and compares
// the preview with the email the real notifier sent.
func TestPreviewIsWhatTheCustomerGets(t *testing.T) {
	e := start(t)
	id := e.submit(fb{subject: "Doppelte Abbuchung", text: "Zweimal abgebucht.", topic: "billing", email: "hans@example.ch", locale: "de-CH"})
	noConsent := e.submit(fb{subject: "Quiet", text: "Do not write to me.", topic: "billing", email: "quiet@example.com", noConsent: true})
	b := e.browser()
	b.signIn("billing")
	b.get("/items/" + id)
	b.post("/items/"+id+"/acknowledge", url.Values{})
	due := time.Now().UTC().AddDate(0, 0, 7).Format("2006-01-02")
	form := url.Values{"for": {"plan"}, "customer_message": {"Wir erstatten den Betrag."}, "due": {due}}
	r := b.post("/items/"+id+"/preview", form)
	subject := textOf(t, r.body, `class="pv-subject">`)
	text := textOf(t, r.body, `class="pv-text">`)
	if !strings.Contains(r.body, `class="pv-locale">German (de templates)<`) || !strings.HasPrefix(subject, "Wir haben einen Plan") {
		t.Fatalf("preview not in the customer's locale: %q\n%s", subject, r.body)
	}
	if !strings.Contains(r.body, ">Wir erstatten den Betrag.</textarea>") {
		t.Error("the preview lost what was typed")
	}
	frame := regexp.MustCompile(`class="pv-html" title="[^"]*" sandbox src="([^"]+)"`).FindStringSubmatch(r.body)
	if frame == nil {
		t.Fatal("no HTML preview frame")
	}
	fr := b.get(html.UnescapeString(frame[1]))
	if fr.code != http.StatusOK || !strings.HasPrefix(fr.hdr.Get("Content-Security-Policy"), "sandbox") || !strings.Contains(fr.body, "Wir erstatten den Betrag.") {
		t.Errorf("HTML preview: %d %q", fr.code, fr.hdr.Get("Content-Security-Policy"))
	}
	b.get("/items/" + id)
	if r := b.post("/items/"+id+"/plan", url.Values{"customer_message": form["customer_message"], "due": {due}}); !strings.Contains(r.body, "Planned.") {
		t.Fatalf("plan: %d %s", r.code, regexp.MustCompile(`class="error" role="alert">[^<]*`).FindString(r.body))
	}
	var mail string
	defer func() {
		for _, m := range e.smtp.Messages() {
			t.Log("mail to", m.To, m.Subject())
		}
	}()
	testkit.Eventually(t, "the notifier's plan email", func() bool {
		for _, m := range e.smtp.To("hans@example.ch") {
			if strings.HasPrefix(m.Subject(), "Wir haben einen Plan") {
				mail = m.Text()
				if m.Subject() != subject {
					t.Errorf("subject sent %q, previewed %q", m.Subject(), subject)
				}
				return true
			}
		}
		return false
	})
	token := "tok" + strings.ReplaceAll(id, "-", "")
	if want := strings.ReplaceAll(text, "STATUS-TOKEN", token); strings.TrimSpace(mail) != strings.TrimSpace(want) {
		t.Errorf("email text differs from the preview:\n--- sent\n%s\n--- previewed\n%s", mail, want)
	}
	// The item's timeline shows what the customer read, as the notifier
	// recorded it: the email's subject and text, the token masked.
	var read string
	testkit.Eventually(t, "the sent plan email in the item's timeline", func() bool {
		page := b.get("/items/" + id).body
		if !strings.Contains(page, "<summary>What the customer read: “"+html.EscapeString(subject)+"”</summary>") {
			return false
		}
		read = textOf(t, page[strings.Index(page, "What the customer read: “"+html.EscapeString(subject)):], `<pre class="mailtext">`)
		return true
	})
	if strings.TrimSpace(read) != strings.TrimSpace(strings.ReplaceAll(mail, token, "STATUS-TOKEN")) {
		t.Errorf("the timeline's copy differs from the email sent (token masked):\n--- timeline\n%s\n--- sent\n%s", read, mail)
	}
	if strings.Contains(read, token) {
		t.Error("the timeline shows the customer's status token")
	}
	// No consent: the preview says no message will go.
	b.get("/items/" + noConsent)
	r = b.post("/items/"+noConsent+"/preview", url.Values{"for": {"decline"}, "customer_message": {"Not something we change"}})
	if !strings.Contains(r.body, "The customer will get <strong>no message</strong>: customer gave no contact consent") {
		t.Errorf("no-consent preview:\n%s", r.body)
	}
}

func textOf(t *testing.T, body, marker string) string {
	t.Helper()
	i := strings.Index(body, marker)
	if i < 0 {
		t.Fatalf("no %s in\n%s", marker, body)
	}
	rest := body[i+len(marker):]
	return html.UnescapeString(rest[:strings.Index(rest, "</")])
}

func TestKPIsShowTheRoutersStats(t *testing.T) {
	e := start(t)
	id := e.submit(fb{subject: "A", text: "one", topic: "billing"})
	e.submit(fb{subject: "B", text: "two", topic: "billing"})
	c := e.team("billing")
	if _, err := c.Acknowledge(c.ctx(), &feedloopv1.AcknowledgeRequest{FeedbackId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Resolve(c.ctx(), &feedloopv1.ResolveRequest{FeedbackId: id, CustomerMessage: "done"}); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.signIn("billing")
	var body string
	testkit.Eventually(t, "stats count the resolve", func() bool {
		body = b.get("/kpis").body
		return strings.Contains(body, `id="kpi-routed">2<`) && strings.Contains(body, "1 resolved")
	})
	today := time.Now().UTC().Format("2006-01-02")
	st, err := c.Stats(c.ctx(), &feedloopv1.StatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetRouted() != 2 || st.GetResolved() != 1 {
		t.Fatalf("router stats %v", st)
	}
	for _, want := range []string{`<svg class="chart"`, "<title id=\"chart-routed-and-closed-items-per-day-t\">", `id="kpi-days"`, "Last 7 days"} {
		if !strings.Contains(body, want) {
			t.Errorf("KPI page lacks %q", want)
		}
	}
	if r := b.get("/kpis?since=" + today + "&until=2000-01-01"); r.code != http.StatusBadRequest || !strings.Contains(r.body, "must end on or after") {
		t.Errorf("reversed period: %d", r.code)
	}
}

func TestLiveEventsBringNewItems(t *testing.T) {
	e := start(t)
	b := e.browser()
	b.signIn("billing")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url+"/events", nil)
	res, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	waitLine := func(prefix string) string {
		t.Helper()
		timeout := time.After(testkit.WaitTimeout)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("stream ended before %q", prefix)
				}
				if strings.HasPrefix(l, prefix) {
					return l
				}
			case <-timeout:
				t.Fatalf("no %q line", prefix)
			}
		}
	}
	waitLine("event: ready")
	id := e.submit(fb{subject: "Live one <b>bold</b>", text: "arrives live", topic: "billing"})
	waitLine("event: item")
	data := waitLine("data: ")
	if !strings.Contains(data, id) || strings.Contains(data, "<b>bold") || !strings.Contains(data, `\u0026lt;b\u0026gt;bold`) {
		t.Errorf("item event %s, want the row of %s with the subject escaped", data, id)
	}
}

func TestDevMailboxAndSignIn(t *testing.T) {
	e := start(t)
	id := e.submit(fb{subject: "Where is my refund", text: "Where is it?", topic: "billing", email: "mia@example.com"})
	b := e.browser()
	if r := b.get(strings.TrimPrefix(e.console.DevSignInURL("billing"), e.url)); r.url != "/" || !strings.Contains(r.body, "team <strong>billing</strong>") {
		t.Fatalf("dev sign-in: %s", r.url)
	}
	testkit.Eventually(t, "the received email", func() bool { return len(e.smtp.To("mia@example.com")) > 0 })
	r := b.get("/dev/mailbox")
	link := regexp.MustCompile(`href="/dev/mailbox/(\d+)"`).FindStringSubmatch(r.body)
	if link == nil || !strings.Contains(r.body, "mia@example.com") {
		t.Fatalf("mailbox:\n%s", r.body)
	}
	m := b.get("/dev/mailbox/" + link[1])
	if !strings.Contains(m.body, `<a href="`+statusBase+"/tok"+strings.ReplaceAll(id, "-", "")) {
		t.Errorf("the status link is not clickable:\n%s", m.body)
	}
}
