package console_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/apikey"
	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/pkg/testkit"
	"github.com/feedloop/feedloop/pkg/testkit/smtptest"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/console"
	"github.com/feedloop/feedloop/services/notifier"
	"github.com/feedloop/feedloop/services/router"
)

const routesYAML = `
route:
  team: triage
  sla: {acknowledge: 8h, resolve: 120h}
  routes:
    - name: billing
      team: billing
      matchers: ['topic="billing"']
      sla: {acknowledge: 4h, resolve: 72h}
    - name: logistics
      team: logistics
      matchers: ['topic="delivery"']
`

// Tokens of the test teams.
var tokens = map[string]string{"billing": "tok-billing-0123456789", "logistics": "tok-logistics-0123456789", "triage": "tok-triage-0123456789"}

var templatesDir = filepath.Join("..", "..", "deploy", "examples", "templates")

const statusBase = "https://status.example/status"

// env is a real pipeline's tail: an embedded NATS, a real Redis, the router,
// the notifier (mailing a test SMTP server) and the console.
type env struct {
	t       *testing.T
	bus     *bus.Bus
	router  *router.Service
	console *console.Service
	smtp    *smtptest.Server
	tokens  string
	url     string
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func writeTokens(t *testing.T, path string, extra string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("tokens:\n")
	for team, tok := range tokens {
		fmt.Fprintf(&b, "  - {team: %s, name: %s-lead, sha256: %s%s}\n", team, team, apikey.Hash(tok), map[bool]string{true: extra}[team == "billing"])
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func start(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, bus: testkit.Bus(t)}
	log := slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dir := t.TempDir()
	routes := filepath.Join(dir, "routes.yaml")
	if err := os.WriteFile(routes, []byte(routesYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	e.tokens = filepath.Join(dir, "tokens.yaml")
	writeTokens(t, e.tokens, "")
	rdb := testkit.RedisClient(t)
	infra := &lifecycle.Infra{Bus: e.bus, Redis: rdb, Log: log}
	rc := router.DefaultConfig()
	rc.RoutesFile, rc.TeamTokensFile = routes, e.tokens
	rc.GRPCAddr, rc.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	rc.Concurrency, rc.ReloadInterval, rc.SLATick = 2, 100*time.Millisecond, 50*time.Millisecond
	rc.SLAWarnAt = 0 // no warning events besides what the tests do
	rt, err := router.New(rc, infra)
	if err != nil {
		t.Fatalf("router.New: %v", err)
	}
	e.router = rt
	testkit.Run(t, rt.Run)

	e.smtp = smtptest.Start(t, smtptest.Options{})
	nc := notifier.DefaultConfig()
	nc.TemplatesDir, nc.StatusURL = templatesDir, statusBase
	nc.SMTPAddr, nc.SMTPFrom = e.smtp.Addr, "Acme Support <support@acme.example>"
	nc.CustomerDailyCap = 0 // one customer goes through every step
	nt, err := notifier.New(nc, infra)
	if err != nil {
		t.Fatalf("notifier.New: %v", err)
	}
	testkit.Run(t, nt.Run)

	cc := testConfig(rt.GRPCAddr(), templatesDir)
	cc.StatusURL = statusBase
	cc.Dev = &console.Dev{Tokens: tokens, Mailbox: smtpMailbox{e.smtp}}
	cs, err := console.New(cc, log)
	if err != nil {
		t.Fatalf("console.New: %v", err)
	}
	e.console, e.url = cs, cs.URL()
	testkit.Run(t, cs.Run)
	return e
}

// smtpMailbox shows what the test SMTP server caught as the dev mailbox.
type smtpMailbox struct{ s *smtptest.Server }

func (m smtpMailbox) Messages() []console.Mail {
	var out []console.Mail
	for i, msg := range m.s.Messages() {
		out = append(out, console.Mail{ID: fmt.Sprint(i), At: time.Unix(int64(i), 0), From: msg.From, To: msg.To, Subject: msg.Subject(), Text: msg.Text()})
	}
	return out
}

// fb is a feedback item to submit.
type fb struct {
	id, subject, text, topic, email, locale string
	name                                    string // the customer's; default Ada Lovelace
	occurred                                time.Time
	noConsent                               bool
	nps                                     *int32
}

// submit publishes the item as intake and the classifier would
// (feedback.received, then feedback.classified) and waits until the
// router's read model lists it for the team.
func (e *env) submit(f fb) string {
	e.t.Helper()
	if f.id == "" {
		f.id = bus.NewID()
	}
	if f.occurred.IsZero() {
		f.occurred = time.Now()
	}
	if f.email == "" {
		f.email = "ada@example.com"
	}
	if f.name == "" {
		f.name = "Ada Lovelace"
	}
	feedback := &feedloopv1.Feedback{Id: f.id, Source: "helpdesk", ExternalId: f.id, Channel: feedloopv1.Channel_CHANNEL_EMAIL, Subject: f.subject, Text: f.text,
		Customer:   &feedloopv1.Customer{Id: "cust-" + f.email, Email: f.email, Name: f.name, Locale: f.locale, Consent: &feedloopv1.Consent{Contact: !f.noConsent, Survey: !f.noConsent}},
		ReceivedAt: timestamppb.New(f.occurred), Nps: f.nps}
	ctx := context.Background()
	if _, err := e.bus.Publish(ctx, bus.SubjectReceived, &feedloopv1.Event{Id: "received-" + f.id, FeedbackId: f.id, OccurredAt: timestamppb.New(f.occurred),
		Payload: &feedloopv1.Event_Received{Received: &feedloopv1.Received{Feedback: feedback, StatusToken: "tok" + strings.ReplaceAll(f.id, "-", "")}}}); err != nil {
		e.t.Fatal(err)
	}
	cls := &feedloopv1.Classification{Topics: []*feedloopv1.TopicScore{{Topic: f.topic, Confidence: 0.92}}, Sentiment: feedloopv1.Sentiment_SENTIMENT_NEGATIVE,
		RedactedText: f.text, TopicSource: feedloopv1.TopicSource_TOPIC_SOURCE_MODEL, ModelVersion: "m1",
		Explanation: []*feedloopv1.Evidence{{Feature: "charged twice", Weight: 1.25}, {Feature: "(meaning of the whole text)", Weight: 0.5}}}
	if f.nps != nil {
		cls.NpsBand = feedloopv1.NpsBand_NPS_BAND_DETRACTOR
	}
	if _, err := e.bus.Publish(ctx, bus.SubjectClassified, &feedloopv1.Event{Id: "classified-" + f.id, FeedbackId: f.id, OccurredAt: timestamppb.New(f.occurred),
		Payload: &feedloopv1.Event_Classified{Classified: &feedloopv1.Classified{Feedback: feedback, Classification: cls}}}); err != nil {
		e.t.Fatal(err)
	}
	team := map[string]string{"billing": "billing", "delivery": "logistics"}[f.topic]
	if team == "" {
		team = "triage"
	}
	c := e.team(team)
	testkit.Eventually(e.t, "item "+f.id+" listed for "+team, func() bool {
		res, err := c.Get(c.ctx(), &feedloopv1.GetRequest{FeedbackId: f.id})
		return err == nil && res.GetItem().GetFeedbackId() == f.id
	})
	return f.id
}

// teamClient calls TeamService directly as a team, to check what the
// console shows against the router.
type teamClient struct {
	feedloopv1.TeamServiceClient
	t   *testing.T
	tok string
}

func (c teamClient) ctx() context.Context {
	return metadata.AppendToOutgoingContext(c.t.Context(), "authorization", "Bearer "+c.tok)
}

func (e *env) team(name string) teamClient {
	cc, err := grpc.NewClient(e.router.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { cc.Close() })
	return teamClient{feedloopv1.NewTeamServiceClient(cc), e.t, tokens[name]}
}

// browser is an HTTP client with a cookie jar: one person's browser.
type browser struct {
	t    *testing.T
	e    *env
	c    *http.Client
	last string // body of the last page
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: e.t, e: e, c: &http.Client{Jar: jar, Timeout: 20 * time.Second}}
}

type resp struct {
	code int
	body string
	hdr  http.Header
	url  string
}

func (b *browser) do(req *http.Request) resp {
	b.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	b.last = string(body)
	return resp{res.StatusCode, string(body), res.Header, res.Request.URL.Path}
}

func (b *browser) get(path string) resp {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.e.url+path, nil)
	return b.do(req)
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// csrf is the token of the last page's forms.
func (b *browser) csrf() string {
	b.t.Helper()
	m := csrfRE.FindStringSubmatch(b.last)
	if m == nil {
		b.t.Fatalf("no CSRF token on the last page:\n%s", b.last)
	}
	return m[1]
}

// post sends a form as a browser would, with the CSRF token of the last page
// unless the form sets csrf_token itself.
func (b *browser) post(path string, form url.Values) resp {
	b.t.Helper()
	if _, set := form["csrf_token"]; !set {
		form.Set("csrf_token", b.csrf())
	}
	req, _ := http.NewRequest(http.MethodPost, b.e.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func (b *browser) signIn(team string) {
	b.t.Helper()
	b.get("/signin")
	r := b.post("/signin", url.Values{"token": {tokens[team]}})
	if r.code != http.StatusOK || r.url != "/" || !strings.Contains(r.body, "team <strong>"+team+"</strong>") {
		b.t.Fatalf("sign in as %s: %d at %s:\n%s", team, r.code, r.url, r.body)
	}
}
