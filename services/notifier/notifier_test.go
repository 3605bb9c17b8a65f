package notifier_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/pkg/testkit"
	"github.com/feedloop/feedloop/pkg/testkit/smtptest"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/notifier"
	"github.com/feedloop/feedloop/services/notifier/internal/channel/webhook"
	"github.com/feedloop/feedloop/services/notifier/internal/steps"
	"github.com/feedloop/feedloop/services/notifier/preview"
	"github.com/feedloop/feedloop/services/notifier/webhooksig"
)

const (
	secret   = "component-test-webhook-secret"
	deadline = 10 * time.Second
)

var examplesDir = filepath.Join("..", "..", "deploy", "examples")

// hook is one request a webhook receiver got.
type hook struct {
	path     string
	header   http.Header
	body     []byte
	payload  webhook.Payload
	signedOK bool
}

// hooks is a real HTTP receiver on loopback that checks signatures. A path
// may be given answer codes to use in turn (the last repeats); 200 otherwise.
type hooks struct {
	srv   *httptest.Server
	mu    sync.Mutex
	got   []hook
	codes map[string][]int
}

func newHooks(t *testing.T) *hooks {
	h := &hooks{codes: map[string][]int{}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec := hook{path: r.URL.Path, header: r.Header.Clone(), body: body}
		rec.signedOK = webhooksig.Verify([]byte(secret), r.Header.Get(webhooksig.Header), body) == nil
		_ = json.Unmarshal(body, &rec.payload)
		h.mu.Lock()
		h.got = append(h.got, rec)
		code := http.StatusOK
		if cs := h.codes[r.URL.Path]; len(cs) > 0 {
			code = cs[0]
			if len(cs) > 1 {
				h.codes[r.URL.Path] = cs[1:]
			}
		}
		h.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hooks) url(path string) string { return h.srv.URL + path }

func (h *hooks) answer(path string, codes ...int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.codes[path] = codes
}

// at returns the requests to path for feedback fid.
func (h *hooks) at(path, fid string) []hook {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hook
	for _, r := range h.got {
		if r.path == path && r.payload.FeedbackID == fid {
			out = append(out, r)
		}
	}
	return out
}

func (h *hooks) all() []hook {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hook(nil), h.got...)
}

// env is a notifier's world: real NATS, Redis, webhook receiver, SMTP server.
type env struct {
	t     *testing.T
	bus   *bus.Bus
	rdb   *redis.Client
	hooks *hooks
	smtp  *smtptest.Server
	cfg   notifier.Config
	opts  []notifier.Option
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, bus: testkit.Bus(t), rdb: testkit.RedisClient(t), hooks: newHooks(t)}
	e.smtp = smtptest.Start(t, smtptest.Options{})
	teamsFile := filepath.Join(t.TempDir(), "teams.yaml")
	writeFile(t, teamsFile, fmt.Sprintf(`
teams:
  billing:
    - type: webhook
      name: billing-alerts
      url: %s
  default:
    - type: webhook
      url: %s
`, e.hooks.url("/team/billing"), e.hooks.url("/team/default")))
	e.cfg = notifier.DefaultConfig()
	e.cfg.TemplatesDir = filepath.Join(examplesDir, "templates")
	e.cfg.TeamsFile = teamsFile
	e.cfg.CustomerWebhookURL, e.cfg.WebhookSecret = e.hooks.url("/customer"), secret
	e.cfg.SMTPAddr, e.cfg.SMTPFrom = e.smtp.Addr, "Acme Support <support@acme.example>"
	e.cfg.StatusURL = "https://status.acme.example/feedback"
	e.cfg.CustomerDailyCap = 0 // tests walk one customer through every step; TestDailyCapDigest sets one
	e.opts = []notifier.Option{notifier.WithInFlightGrace(100 * time.Millisecond)}
	return e
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// start runs one replica of the notifier until the test ends.
func (e *env) start() {
	e.t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	svc, err := notifier.New(e.cfg, &lifecycle.Infra{Bus: e.bus, Redis: e.rdb, Log: log}, e.opts...)
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	testkit.Run(e.t, svc.Run)
}

func (e *env) publish(subject string, ev *feedloopv1.Event) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if _, err := e.bus.Publish(ctx, subject, ev); err != nil {
		e.t.Fatalf("publish: %v", err)
	}
}

// redeliver publishes ev's exact bytes under another Nats-Msg-Id: what the
// notifier sees when an event is delivered again (a replay, a republish
// after the duplicate window).
func (e *env) redeliver(subject string, ev *feedloopv1.Event, msgID string) {
	e.t.Helper()
	data, err := proto.Marshal(ev)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if _, err := e.bus.PublishData(ctx, subject, msgID, data, nats.Header{}); err != nil {
		e.t.Fatalf("publish: %v", err)
	}
}

// eventually polls cond until it holds.
func (e *env) eventually(what string, cond func() bool) {
	e.t.Helper()
	testkit.Eventually(e.t, what, cond)
}

// idle waits until the notifier consumer has handled and acknowledged every
// message published so far.
func (e *env) idle() {
	e.t.Helper()
	ctx := context.Background()
	e.eventually("the notifier to handle every message", func() bool {
		c, err := e.bus.JetStream().Consumer(ctx, bus.StreamFeedback, notifier.Durable)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
}

// messages returns the messages stored on subject in stream.
func (e *env) messages(stream, subject string) []*jetstream.RawStreamMsg {
	e.t.Helper()
	return testkit.Messages(e.t, e.bus, stream, subject)
}

// notified returns the feedback.notified events about fid.
func (e *env) notified(fid string) []*feedloopv1.Event {
	e.t.Helper()
	var out []*feedloopv1.Event
	for _, m := range e.messages(bus.StreamFeedback, bus.SubjectNotified) {
		ev := &feedloopv1.Event{}
		if err := proto.Unmarshal(m.Data, ev); err != nil {
			e.t.Fatalf("notified event does not decode: %v", err)
		}
		if ev.GetFeedbackId() == fid {
			out = append(out, ev)
		}
	}
	return out
}

func customerFeedback(fid string, consent bool) *feedloopv1.Feedback {
	return &feedloopv1.Feedback{
		Id: fid, Source: "zendesk", ExternalId: "zd-" + fid, Channel: feedloopv1.Channel_CHANNEL_EMAIL,
		Subject: "Charged twice",
		Text:    "My card 4111 1111 1111 1111 was charged twice. Call me on +41 79 123 45 67.",
		Customer: &feedloopv1.Customer{
			Id: "cus_42", Email: "ada@example.com", Name: "Ada Lovelace", Locale: "de-CH",
			Consent: &feedloopv1.Consent{Contact: consent},
		},
		ReceivedAt: timestamppb.Now(),
	}
}

func receivedEvent(fid string, consent bool) *feedloopv1.Event {
	return &feedloopv1.Event{
		Id: bus.NewID(), FeedbackId: fid, OccurredAt: timestamppb.Now(),
		Payload: &feedloopv1.Event_Received{Received: &feedloopv1.Received{Feedback: customerFeedback(fid, consent), StatusToken: tokenOf(fid)}},
	}
}

const redacted = "My card [CARD] was charged twice. Call me on [PHONE]."

// tokenOf is the status token of item fid in these tests: random in
// production, derived here so tests can predict links.
func tokenOf(fid string) string { return strings.ReplaceAll(bus.DeriveID(fid, "token"), "-", "") }

func routedEvent(fid, team string) *feedloopv1.Event {
	return &feedloopv1.Event{
		Id: bus.NewID(), FeedbackId: fid, OccurredAt: timestamppb.Now(),
		Payload: &feedloopv1.Event_Routed{Routed: &feedloopv1.Routed{
			Feedback: customerFeedback(fid, true),
			Classification: &feedloopv1.Classification{
				Topics:       []*feedloopv1.TopicScore{{Topic: "billing", Confidence: 0.93}},
				Sentiment:    feedloopv1.Sentiment_SENTIMENT_NEGATIVE,
				Urgency:      feedloopv1.Urgency_URGENCY_HIGH,
				Language:     "en",
				RedactedText: redacted,
			},
			Assignment: &feedloopv1.Assignment{
				Team: team, Route: "root/" + team, Priority: feedloopv1.Priority_PRIORITY_HIGH,
				AcknowledgeBy: timestamppb.New(time.Now().Add(4 * time.Hour)),
				ResolveBy:     timestamppb.New(time.Now().Add(72 * time.Hour)),
			},
		}},
	}
}

func decodeSubject(t *testing.T, data []byte) (mail.Header, string) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("email does not parse: %v", err)
	}
	var dec mime.WordDecoder
	s, err := dec.DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	return m.Header, s
}

func TestCustomerAcknowledgedExactlyOnce(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.start() // a second replica on the same durable consumer

	fid := bus.NewID()
	ev := receivedEvent(fid, true)
	e.publish(bus.SubjectReceived, ev)

	e.eventually("one customer webhook, one email and two notified events", func() bool {
		return len(e.hooks.at("/customer", fid)) == 1 && len(e.smtp.To("ada@example.com")) == 1 && len(e.notified(fid)) == 2
	})

	// The webhook: signed, keyed, with the documented body.
	h := e.hooks.at("/customer", fid)[0]
	if !h.signedOK {
		t.Errorf("customer webhook signature %q does not verify", h.header.Get(webhook.HeaderSignature))
	}
	wantKey := steps.Delivery{FeedbackID: fid, Step: "received", Channel: "webhook", Recipient: "customer-webhook"}.IdempotencyKey()
	if got := h.header.Get("Idempotency-Key"); got != wantKey {
		t.Errorf("Idempotency-Key = %q, want %q", got, wantKey)
	}
	p := h.payload
	if p.Step != "received" || p.Audience != "customer" || p.Customer.Email != "ada@example.com" || p.Customer.ID != "cus_42" || p.Customer.Locale != "de-CH" {
		t.Errorf("payload = %+v", p)
	}
	if p.StatusURL != "https://status.acme.example/feedback/"+tokenOf(fid) {
		t.Errorf("status_url = %q", p.StatusURL)
	}
	if !strings.HasPrefix(p.Message.Subject, "Wir haben Ihr Feedback erhalten") {
		t.Errorf("de-CH customer got subject %q, want the German template", p.Message.Subject)
	}

	// The email: German subject, from the configured sender, keyed Message-ID.
	m := e.smtp.To("ada@example.com")[0]
	header, subject := decodeSubject(t, m.Data)
	if !strings.HasPrefix(subject, "Wir haben Ihr Feedback erhalten: Charged twice") {
		t.Errorf("email subject = %q", subject)
	}
	if !strings.Contains(m.Text(), "4111 1111 1111 1111") {
		t.Errorf("the customer's acknowledgement does not quote their own words:\n%s", m.Text())
	}
	if m.From != "support@acme.example" {
		t.Errorf("envelope from = %q", m.From)
	}
	emailKey := steps.Delivery{FeedbackID: fid, Step: "received", Channel: "email", Recipient: "ada@example.com"}.IdempotencyKey()
	if got := header.Get("Message-ID"); got != "<"+emailKey+"@acme.example>" {
		t.Errorf("Message-ID = %q", got)
	}

	// The records.
	byChannel := map[string]*feedloopv1.Event{}
	for _, n := range e.notified(fid) {
		byChannel[n.GetNotified().GetChannel()] = n
	}
	for channel, recipient := range map[string]string{"email": "ada@example.com", "webhook": "customer-webhook"} {
		n := byChannel[channel]
		if n == nil {
			t.Fatalf("no notified event for channel %s", channel)
		}
		got := n.GetNotified()
		if got.GetStep() != feedloopv1.Step_STEP_RECEIVED || got.GetAudience() != "customer" || got.GetRecipient() != recipient || got.GetCauseEventId() != ev.GetId() || got.GetTeam() != "" {
			t.Errorf("notified %s = %v", channel, got)
		}
		if want := bus.DeriveID(ev.GetId(), "notified", "received", channel, recipient); n.GetId() != want {
			t.Errorf("notified %s id = %s, want %s", channel, n.GetId(), want)
		}
		// What the customer read, for the teams: the email's subject and
		// text, the status link's token masked.
		if got.GetSubject() != subject {
			t.Errorf("notified %s subject = %q, want the email's %q", channel, got.GetSubject(), subject)
		}
		masked := "https://status.acme.example/feedback/" + preview.MaskedToken
		if !strings.Contains(got.GetText(), masked) || !strings.Contains(got.GetText(), "Charged twice") {
			t.Errorf("notified %s text lacks the status link with its token masked (%s):\n%s", channel, masked, got.GetText())
		}
		if strings.Contains(got.GetText(), tokenOf(fid)) {
			t.Errorf("notified %s text holds the customer's status token:\n%s", channel, got.GetText())
		}
		// The acknowledgement quotes the customer's words unredacted; teams
		// read them only redacted, on the item.
		if !strings.Contains(got.GetText(), steps.OwnWordsStandIn) || strings.Contains(got.GetText(), "4111") || strings.Contains(got.GetText(), "+41 79") {
			t.Errorf("notified %s text does not stand in for the customer's unredacted words:\n%s", channel, got.GetText())
		}
	}

	// Redeliveries of the same event, and another event asking for the same
	// step of the same feedback, send nothing more and record nothing new.
	e.redeliver(bus.SubjectReceived, ev, "replay-1")
	e.redeliver(bus.SubjectReceived, ev, "replay-2")
	e.publish(bus.SubjectReceived, ev) // same id: the stream drops it
	other := receivedEvent(fid, true)
	e.publish(bus.SubjectReceived, other)
	e.idle()

	if n := len(e.hooks.at("/customer", fid)); n != 1 {
		t.Errorf("customer webhook got %d deliveries, want 1", n)
	}
	if n := len(e.smtp.To("ada@example.com")); n != 1 {
		t.Errorf("customer got %d emails, want 1", n)
	}
	if n := len(e.notified(fid)); n != 2 {
		t.Errorf("%d notified events, want 2", n)
	}
	if n := len(e.hooks.at("/team/default", fid)) + len(e.hooks.at("/team/billing", fid)); n != 0 {
		t.Errorf("teams got %d alerts for a received event", n)
	}
}

func TestTeamAlerts(t *testing.T) {
	e := newEnv(t)
	e.start()

	fid := bus.NewID()
	billing := routedEvent(fid, "billing")
	e.publish(bus.RoutedSubject("billing"), billing)
	// Two teams on the default entry's one webhook: one alert each.
	e.publish(bus.RoutedSubject("logistics"), routedEvent(fid, "logistics"))
	e.publish(bus.RoutedSubject("product"), routedEvent(fid, "product"))

	e.eventually("three team alerts", func() bool {
		return len(e.hooks.at("/team/billing", fid)) == 1 && len(e.hooks.at("/team/default", fid)) == 2 && len(e.notified(fid)) == 3
	})
	h := e.hooks.at("/team/billing", fid)[0]
	if !h.signedOK {
		t.Error("team webhook signature does not verify")
	}
	p := h.payload
	if p.Step != "routed" || p.Audience != "team" || p.Team != "billing" || p.Text != redacted {
		t.Errorf("payload = %+v", p)
	}
	if strings.Contains(string(h.body), "4111") || strings.Contains(string(h.body), "+41 79") {
		t.Errorf("team alert leaks unredacted text: %s", h.body)
	}
	if p.Classification == nil || p.Classification.Urgency != "high" || p.Assignment == nil || p.Assignment.Priority != "high" {
		t.Errorf("classification/assignment = %+v / %+v", p.Classification, p.Assignment)
	}
	if !strings.HasPrefix(p.Message.Subject, "[billing] [high] New feedback") {
		t.Errorf("subject = %q", p.Message.Subject)
	}
	teamsAlerted := map[string]bool{}
	for _, r := range e.hooks.at("/team/default", fid) {
		teamsAlerted[r.payload.Team] = true
	}
	if !teamsAlerted["logistics"] || !teamsAlerted["product"] {
		t.Errorf("default webhook alerted %v, want logistics and product", teamsAlerted)
	}

	var found bool
	for _, n := range e.notified(fid) {
		got := n.GetNotified()
		if got.GetTeam() == "billing" {
			found = true
			if got.GetStep() != feedloopv1.Step_STEP_ROUTED || got.GetAudience() != "team" || got.GetChannel() != "webhook" || got.GetRecipient() != "billing-alerts" || got.GetCauseEventId() != billing.GetId() {
				t.Errorf("notified = %v", got)
			}
			if got.GetSubject() != "" || got.GetText() != "" {
				t.Errorf("a team alert's record carries its message: %q %q", got.GetSubject(), got.GetText())
			}
		}
	}
	if !found {
		t.Error("no notified event for billing")
	}
	if len(e.hooks.at("/customer", fid)) != 0 || len(e.smtp.Messages()) != 0 {
		t.Error("the customer was messaged about a routing")
	}
}

func TestNoConsentNoCustomerMessage(t *testing.T) {
	e := newEnv(t)
	e.start()
	fid := bus.NewID()
	e.publish(bus.SubjectReceived, receivedEvent(fid, false))
	// A consenting customer's item after it proves the first was handled.
	marker := bus.NewID()
	e.publish(bus.SubjectReceived, receivedEvent(marker, true))
	e.eventually("the marker item's acknowledgement", func() bool { return len(e.notified(marker)) == 2 })
	e.idle()

	if n := len(e.hooks.at("/customer", fid)); n != 0 {
		t.Errorf("customer webhook got %d messages without consent", n)
	}
	if n := len(e.smtp.To("ada@example.com")); n != 1 { // the marker's only
		t.Errorf("customer got %d emails, want 1 (the marker's)", n)
	}
	if n := len(e.notified(fid)); n != 0 {
		t.Errorf("%d notified events without consent", n)
	}
}

func TestPoisonMessagesAreDeadLettered(t *testing.T) {
	e := newEnv(t)
	e.start()
	ctx := context.Background()
	if _, err := e.bus.PublishData(ctx, bus.SubjectReceived, "poison-1", []byte("\xff\xfe not protobuf"), nats.Header{}); err != nil {
		t.Fatal(err)
	}
	invalid := receivedEvent(bus.NewID(), true)
	invalid.GetReceived().Feedback = nil // decodes, but can never be handled
	e.publish(bus.SubjectReceived, invalid)

	dlq := bus.DLQSubject(notifier.Durable)
	e.eventually("two dead letters", func() bool { return len(e.messages(bus.StreamDLQ, dlq)) == 2 })
	for _, m := range e.messages(bus.StreamDLQ, dlq) {
		if m.Header.Get(bus.HeaderDLQSubject) != bus.SubjectReceived || m.Header.Get(bus.HeaderDLQError) == "" {
			t.Errorf("dead letter headers = %v", m.Header)
		}
	}
	// The consumer goes on with the next message.
	fid := bus.NewID()
	e.publish(bus.SubjectReceived, receivedEvent(fid, true))
	e.eventually("delivery after the poison", func() bool { return len(e.notified(fid)) == 2 })
	e.idle()
	if n := len(e.hooks.all()); n != 1 {
		t.Errorf("webhook got %d requests, want 1 (poison sends nothing)", n)
	}
}

func TestTransientFailureIsRetriedWithoutResendingOthers(t *testing.T) {
	e := newEnv(t)
	e.cfg.WebhookAttempts = 1 // fail the handling at the first 503
	e.hooks.answer("/customer", 503, 200)
	e.start()

	fid := bus.NewID()
	e.publish(bus.SubjectReceived, receivedEvent(fid, true))
	e.eventually("the customer webhook to succeed after a 503", func() bool {
		return len(e.hooks.at("/customer", fid)) == 2 && len(e.notified(fid)) == 2
	})
	e.idle()
	reqs := e.hooks.at("/customer", fid)
	for _, r := range reqs[1:] {
		if r.header.Get("Idempotency-Key") != reqs[0].header.Get("Idempotency-Key") {
			t.Error("a retry changed the Idempotency-Key")
		}
	}
	// The email went out on the first handling and was not repeated by the retries.
	if n := len(e.smtp.To("ada@example.com")); n != 1 {
		t.Errorf("customer got %d emails, want 1", n)
	}
}

func TestRejectedWebhookDeadLettersButKeepsOtherDeliveries(t *testing.T) {
	e := newEnv(t)
	e.hooks.answer("/customer", 400)
	e.start()

	fid := bus.NewID()
	e.publish(bus.SubjectReceived, receivedEvent(fid, true))
	dlq := bus.DLQSubject(notifier.Durable)
	e.eventually("a dead letter", func() bool { return len(e.messages(bus.StreamDLQ, dlq)) == 1 })
	e.idle()
	if n := len(e.hooks.at("/customer", fid)); n != 1 {
		t.Errorf("rejecting webhook got %d requests, want 1 (no retry)", n)
	}
	if n := len(e.smtp.To("ada@example.com")); n != 1 {
		t.Errorf("customer got %d emails, want 1", n)
	}
	ns := e.notified(fid)
	if len(ns) != 1 || ns[0].GetNotified().GetChannel() != "email" {
		t.Errorf("notified = %v, want the email only", ns)
	}
}

func TestConsoleWhenNothingIsConfigured(t *testing.T) {
	e := newEnv(t)
	out := &testkit.SyncBuffer{}
	cfg := notifier.DefaultConfig()
	cfg.TemplatesDir, cfg.ConsoleOutput, cfg.CustomerDailyCap = e.cfg.TemplatesDir, out, 0
	e.cfg = cfg
	e.start()
	fid := bus.NewID()
	e.publish(bus.SubjectReceived, receivedEvent(fid, true))
	e.publish(bus.RoutedSubject("billing"), routedEvent(fid, "billing"))
	e.eventually("two console lines", func() bool { return len(e.notified(fid)) == 2 })

	lines := out.String()
	for _, want := range []string{
		`→ customer ada@example.com [received] "Wir haben Ihr Feedback erhalten: Charged twice"`,
		`→ team billing [routed] "[billing] [high] New feedback: Charged twice"`,
	} {
		if !strings.Contains(lines, want) {
			t.Errorf("console output lacks %q:\n%s", want, lines)
		}
	}
	for _, n := range e.notified(fid) {
		if n.GetNotified().GetChannel() != "console" {
			t.Errorf("notified channel = %q, want console", n.GetNotified().GetChannel())
		}
	}
	if len(e.hooks.all()) != 0 || len(e.smtp.Messages()) != 0 {
		t.Error("console mode sent real messages")
	}
}
