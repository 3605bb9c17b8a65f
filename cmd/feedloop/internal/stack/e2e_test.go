package stack_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/feedloop/feedloop/cmd/feedloop/internal/stack"
	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/testkit"
	"github.com/feedloop/feedloop/pkg/testkit/smtptest"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/notifier/webhooksig"
)

const secret = "e2e-webhook-secret-0123456789"

// hook is a real HTTP server on loopback recording verified webhook calls.
type hook struct {
	*httptest.Server
	mu    sync.Mutex
	calls []hookCall
	bad   []string
}

type hookCall struct {
	path           string
	idempotencyKey string
	body           struct {
		Step       string `json:"step"`
		Audience   string `json:"audience"`
		FeedbackID string `json:"feedback_id"`
		Team       string `json:"team"`
		Text       string `json:"text"`
	}
}

func newHook(t *testing.T) *hook {
	h := &hook{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		// As a receiver checks: the signature and its timestamp (replays).
		err := webhooksig.Verify([]byte(secret), r.Header.Get(webhooksig.Header), raw)
		h.mu.Lock()
		defer h.mu.Unlock()
		if err != nil {
			h.bad = append(h.bad, "bad signature on "+r.URL.Path+": "+err.Error())
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		c := hookCall{path: r.URL.Path, idempotencyKey: r.Header.Get("Idempotency-Key")}
		if err := json.Unmarshal(raw, &c.body); err != nil {
			h.bad = append(h.bad, "bad json: "+err.Error())
		}
		h.calls = append(h.calls, c)
	}))
	t.Cleanup(h.Close)
	return h
}

// find returns the calls for feedback id fid and step.
func (h *hook) find(fid, step string) []hookCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hookCall
	for _, c := range h.calls {
		if c.body.FeedbackID == fid && c.body.Step == step {
			out = append(out, c)
		}
	}
	return out
}

type env struct {
	s        *stack.Stack
	customer *hook
	teams    *hook
	smtp     *smtptest.Server
	intake   feedloopv1.IntakeServiceClient
	// stop stops the stack and waits for Run to return.
	stop func()
}

func start(t *testing.T) *env {
	t.Helper()
	return startWith(t, nil)
}

// startWith starts the stack with mod applied to its configuration.
func startWith(t *testing.T, mod func(*stack.Config)) *env {
	t.Helper()
	e := &env{customer: newHook(t), teams: newHook(t), smtp: smtptest.Start(t, smtptest.Options{})}
	teamsFile := filepath.Join(t.TempDir(), "teams.yaml")
	if err := os.WriteFile(teamsFile, []byte("teams:\n  default:\n    - type: webhook\n      url: "+e.teams.URL+"/hooks\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := stack.DevConfig("../../../../deploy/examples", t.TempDir())
	cfg.RedisURL = testkit.Redis(t)
	cfg.Notifier.CustomerWebhookURL = e.customer.URL + "/customers"
	cfg.Notifier.WebhookSecret = secret
	cfg.Notifier.TeamsFile = teamsFile
	cfg.Notifier.SMTPAddr = e.smtp.Addr
	cfg.Notifier.SMTPFrom = "Acme Support <support@acme.example>"
	cfg.Notifier.ConsoleOutput = io.Discard
	if mod != nil {
		mod(&cfg)
	}

	s, err := stack.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	tracked(t, s)
	e.stop = testkit.Run(t, s.Run)
	e.s = s
	conn, err := grpc.NewClient(s.Intake.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	e.intake = feedloopv1.NewIntakeServiceClient(conn)
	return e
}

// events returns the events stored on FEEDBACK whose subject matches
// filter and that concern feedback id fid (all when fid is empty), by subject.
func (e *env) events(t *testing.T, filter, fid string) map[string][]*feedloopv1.Event {
	t.Helper()
	out := map[string][]*feedloopv1.Event{}
	for _, m := range testkit.Messages(t, e.s.Bus, bus.StreamFeedback, filter) {
		ev := &feedloopv1.Event{}
		if err := proto.Unmarshal(m.Data, ev); err != nil {
			t.Fatalf("undecodable event at %d: %v", m.Sequence, err)
		}
		if fid == "" || ev.GetFeedbackId() == fid {
			out[m.Subject] = append(out[m.Subject], ev)
		}
	}
	return out
}

// idle waits until every durable consumer has nothing pending or unacked.
func (e *env) idle(t *testing.T) {
	t.Helper()
	testkit.Eventually(t, "the pipeline to settle", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, d := range []string{"classifier", "router", "notifier"} {
			c, err := e.s.Bus.JetStream().Consumer(ctx, bus.StreamFeedback, d)
			if err != nil {
				return false
			}
			info, err := c.Info(ctx)
			if err != nil || info.NumPending > 0 || info.NumAckPending > 0 {
				return false
			}
		}
		return true
	})
}

func routedTeams(evs map[string][]*feedloopv1.Event) []string {
	var teams []string
	for subj, list := range evs {
		for _, ev := range list {
			if ev.GetRouted().GetAssignment().GetTeam() != bus.LastToken(subj) {
				return []string{"mismatch on " + subj}
			}
			teams = append(teams, bus.LastToken(subj))
		}
	}
	return teams
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		seen[x]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

func int32p(v int32) *int32 { return &v }

func TestEndToEnd(t *testing.T) {
	e := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// A detractor complaining about a late delivery: customer success and
	// logistics both own a part of it (fan-out).
	fb := &feedloopv1.Feedback{
		Source:     "survey-tool",
		ExternalId: "resp-1",
		Channel:    feedloopv1.Channel_CHANNEL_SURVEY,
		Customer: &feedloopv1.Customer{
			Id: "c-1", Name: "Ada", Email: "ada@example.com", Locale: "en",
			Consent: &feedloopv1.Consent{Contact: true},
		},
		Text: "My parcel arrived late again, the delivery took two weeks.",
		Nps:  int32p(2),
	}
	resp, err := e.intake.Submit(ctx, &feedloopv1.SubmitRequest{Feedback: fb})
	if err != nil {
		t.Fatal(err)
	}
	fid := resp.GetFeedbackId()

	t.Run("grpc submission is routed to every team that owns a part", func(t *testing.T) {
		testkit.Eventually(t, "two routed events", func() bool { return len(routedTeams(e.events(t, bus.AllRouted, fid))) >= 2 })
		if got := routedTeams(e.events(t, bus.AllRouted, fid)); !sameSet(got, []string{"customer-success", "logistics"}) {
			t.Fatalf("routed to %v, want customer-success and logistics", got)
		}
		for _, list := range e.events(t, bus.AllRouted, fid) {
			r := list[0].GetRouted()
			if r.GetFeedback().GetText() != fb.GetText() || r.GetClassification().GetNpsBand() != feedloopv1.NpsBand_NPS_BAND_DETRACTOR {
				t.Errorf("routed event lacks the item or its classification: %v", r)
			}
			if r.GetAssignment().GetAcknowledgeBy() == nil || r.GetAssignment().GetRoute() == "" {
				t.Errorf("assignment incomplete: %v", r.GetAssignment())
			}
		}
	})

	t.Run("customer gets one signed acknowledgement by webhook and by email", func(t *testing.T) {
		testkit.Eventually(t, "customer webhook", func() bool { return len(e.customer.find(fid, "received")) == 1 })
		testkit.Eventually(t, "customer email", func() bool { return len(e.smtp.To("ada@example.com")) == 1 })
		c := e.customer.find(fid, "received")[0]
		if c.body.Audience != "customer" || c.idempotencyKey == "" {
			t.Errorf("customer webhook = %+v", c)
		}
		mail := string(e.smtp.To("ada@example.com")[0].Data)
		if !strings.Contains(mail, fid) && !strings.Contains(strings.ToLower(mail), "feedback") {
			t.Errorf("email does not look like an acknowledgement:\n%s", mail)
		}
	})

	t.Run("each routed team is alerted", func(t *testing.T) {
		testkit.Eventually(t, "team alerts", func() bool { return len(e.teams.find(fid, "routed")) == 2 })
		var teams []string
		for _, c := range e.teams.find(fid, "routed") {
			teams = append(teams, c.body.Team)
		}
		if !sameSet(teams, []string{"customer-success", "logistics"}) {
			t.Fatalf("alerted %v", teams)
		}
	})

	t.Run("every delivery is recorded on feedback.notified", func(t *testing.T) {
		// customer: webhook + email; teams: two webhooks.
		testkit.Eventually(t, "notified events", func() bool { return len(e.events(t, bus.SubjectNotified, fid)[bus.SubjectNotified]) == 4 })
		steps := map[feedloopv1.Step]int{}
		for _, ev := range e.events(t, bus.SubjectNotified, fid)[bus.SubjectNotified] {
			steps[ev.GetNotified().GetStep()]++
		}
		if steps[feedloopv1.Step_STEP_RECEIVED] != 2 || steps[feedloopv1.Step_STEP_ROUTED] != 2 {
			t.Fatalf("notified steps = %v", steps)
		}
	})

	t.Run("resubmission returns the same id and notifies nobody again", func(t *testing.T) {
		again, err := e.intake.Submit(ctx, &feedloopv1.SubmitRequest{Feedback: fb})
		if err != nil {
			t.Fatal(err)
		}
		if again.GetFeedbackId() != fid || !again.GetDuplicate() {
			t.Fatalf("resubmission = %v, want id %s and duplicate", again, fid)
		}
		e.idle(t)
		if n := len(e.events(t, bus.SubjectReceived, fid)[bus.SubjectReceived]); n != 1 {
			t.Errorf("%d received events, want 1", n)
		}
		if n := len(e.customer.find(fid, "received")); n != 1 {
			t.Errorf("%d customer webhooks, want 1", n)
		}
		if n := len(e.smtp.To("ada@example.com")); n != 1 {
			t.Errorf("%d emails, want 1", n)
		}
	})

	t.Run("http submission flows to billing", func(t *testing.T) {
		body := `{"source":"helpdesk","externalId":"T-9","customer":{"email":"bob@example.com","consent":{"contact":true}},"text":"I was charged twice for my subscription."}`
		res, err := http.Post("http://"+e.s.Intake.HTTPAddr()+"/v1/feedback", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusAccepted {
			t.Fatalf("status %d: %s", res.StatusCode, raw)
		}
		var sr feedloopv1.SubmitResponse
		if err := protojson.Unmarshal(raw, &sr); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, "billing", func() bool {
			return sameSet(routedTeams(e.events(t, bus.AllRouted, sr.GetFeedbackId())), []string{"billing"})
		})
		testkit.Eventually(t, "customer email", func() bool { return len(e.smtp.To("bob@example.com")) == 1 })
	})

	t.Run("nats submission flows to the team", func(t *testing.T) {
		data, err := proto.Marshal(&feedloopv1.Feedback{
			ExternalId: "review-7",
			Channel:    feedloopv1.Channel_CHANNEL_APP_REVIEW,
			Text:       "The app crashes every time I open it on my iPhone.",
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.s.Bus.JetStream().Publish(ctx, bus.SubmitSubject("appstore"), data, jetstream.WithMsgID("appstore-review-7")); err != nil {
			t.Fatal(err)
		}
		// The id is derived from (source, external_id); find it through the received event.
		var fid2 string
		testkit.Eventually(t, "received", func() bool {
			for _, ev := range e.events(t, bus.SubjectReceived, "")[bus.SubjectReceived] {
				if f := ev.GetReceived().GetFeedback(); f.GetSource() == "appstore" && f.GetExternalId() == "review-7" {
					fid2 = ev.GetFeedbackId()
					return true
				}
			}
			return false
		})
		testkit.Eventually(t, "mobile", func() bool {
			return sameSet(routedTeams(e.events(t, bus.AllRouted, fid2)), []string{"mobile"})
		})
	})

	if len(e.customer.bad)+len(e.teams.bad) > 0 {
		t.Fatalf("webhook problems: %v %v", e.customer.bad, e.teams.bad)
	}
}
