package router_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router"
)

const routesYAML = `
route:
  team: triage
  sla: {acknowledge: 8h, resolve: 120h}
  routes:
    - name: customer-success
      team: customer-success
      matchers: ['nps_band="detractor"', 'channel="survey"']
      priority: high
      sla: {acknowledge: 4h}
      continue: true
    - name: billing
      team: billing
      matchers: ['topic="billing"']
      sla: {resolve: 72h}
      routes:
        - name: refunds
          matchers: ['attr.kind="refund"']
          priority: high
    - name: logistics
      team: logistics
      matchers: ['topic="delivery"']
`

const wait = 10 * time.Second

// occurred is the classified events' time: the base of every SLA deadline.
var occurred = time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)

type harness struct {
	t      *testing.T
	bus    *bus.Bus
	js     jetstream.JetStream
	infra  *lifecycle.Infra
	routes string
	tokens string
	logs   *testkit.SyncBuffer
	svc    *router.Service
	stop   func()
}

// start runs the router on a fresh embedded NATS and a real Redis.
func start(t *testing.T) *harness {
	t.Helper()
	b := testkit.Bus(t)
	logs := &testkit.SyncBuffer{}
	h := &harness{
		t:      t,
		bus:    b,
		js:     b.JetStream(),
		routes: filepath.Join(t.TempDir(), "routes.yaml"),
		tokens: filepath.Join(t.TempDir(), "tokens.yaml"),
		logs:   logs,
		infra: &lifecycle.Infra{
			Bus:   b,
			Redis: testkit.RedisClient(t),
			Log:   slog.New(slog.NewTextHandler(io.MultiWriter(logs, testWriter{t}), nil)),
		},
	}
	h.writeRoutes(routesYAML)
	writeTokens(t, h.tokens)
	h.run()
	t.Cleanup(func() { h.stop() })
	return h
}

// run starts a service instance; stop cancels it and checks Run returns nil.
// testConfig is the default configuration on free loopback ports with the
// given routes and tokens files.
func testConfig(routes, tokens string) router.Config {
	cfg := router.DefaultConfig()
	cfg.RoutesFile, cfg.TeamTokensFile = routes, tokens
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	return cfg
}

func (h *harness) run() {
	t := h.t
	cfg := testConfig(h.routes, h.tokens)
	cfg.Concurrency, cfg.ReloadInterval, cfg.SLATick, cfg.SLAWarnAt = 2, 100*time.Millisecond, 50*time.Millisecond, 0.5
	svc, err := router.New(cfg, h.infra)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.svc = svc
	h.stop = testkit.Run(t, svc.Run)
}

func (h *harness) writeRoutes(content string) {
	h.t.Helper()
	tmp := h.routes + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Rename(tmp, h.routes); err != nil {
		h.t.Fatal(err)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// item is a classified feedback item for the test tree.
type item struct {
	id      string
	topics  []string
	nps     feedloopv1.NpsBand
	channel feedloopv1.Channel
	attrs   map[string]string
	// olderClassifier: submit's classified event does not carry the rest
	// of the received event (Classified.received), as a classifier from
	// before that field sent it.
	olderClassifier bool
}

func (it item) event() *feedloopv1.Event {
	c := &feedloopv1.Classification{NpsBand: it.nps, Sentiment: feedloopv1.Sentiment_SENTIMENT_NEGATIVE}
	for _, tp := range it.topics {
		c.Topics = append(c.Topics, &feedloopv1.TopicScore{Topic: tp, Confidence: 0.9})
	}
	return &feedloopv1.Event{
		Id:         "classified-" + it.id,
		FeedbackId: it.id,
		OccurredAt: timestamppb.New(occurred),
		Payload: &feedloopv1.Event_Classified{Classified: &feedloopv1.Classified{
			Feedback:       &feedloopv1.Feedback{Id: it.id, Source: "helpdesk", Channel: it.channel, Text: "text of " + it.id, Attributes: it.attrs},
			Classification: c,
		}},
	}
}

// publish puts ev on feedback.classified and returns its stream sequence.
func (h *harness) publish(ev *feedloopv1.Event) uint64 {
	h.t.Helper()
	ack, err := h.bus.Publish(context.Background(), bus.SubjectClassified, ev)
	if err != nil {
		h.t.Fatalf("publish: %v", err)
	}
	return ack.Sequence
}

// publishRaw puts data on feedback.classified under msgID.
func (h *harness) publishRaw(msgID string, data []byte) uint64 {
	h.t.Helper()
	ack, err := h.bus.PublishData(context.Background(), bus.SubjectClassified, msgID, data, nil)
	if err != nil {
		h.t.Fatalf("publish: %v", err)
	}
	if ack.Duplicate {
		h.t.Fatalf("publish %s: dropped as duplicate", msgID)
	}
	return ack.Sequence
}

// waitHandled waits until the router's consumer has settled (acked or
// dead-lettered) every message up to stream sequence seq.
func (h *harness) waitHandled(seq uint64) {
	h.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(wait)
	for {
		if cons, err := h.js.Consumer(ctx, bus.StreamFeedback, "router"); err == nil {
			if info, err := cons.Info(ctx); err == nil && info.AckFloor.Stream >= seq {
				return
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("router did not handle stream sequence %d in %s", seq, wait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type routed struct {
	subject string
	msgID   string
	ev      *feedloopv1.Event
}

// routedFor reads every feedback.routed.* message of feedbackID from the stream.
func (h *harness) routedFor(feedbackID string) []routed {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cons, err := h.js.OrderedConsumer(ctx, bus.StreamFeedback, jetstream.OrderedConsumerConfig{FilterSubjects: []string{bus.AllRouted}})
	if err != nil {
		h.t.Fatal(err)
	}
	batch, err := cons.FetchNoWait(10000)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []routed
	for m := range batch.Messages() {
		ev := &feedloopv1.Event{}
		if err := proto.Unmarshal(m.Data(), ev); err != nil {
			h.t.Fatalf("routed message on %s does not decode: %v", m.Subject(), err)
		}
		if ev.GetFeedbackId() == feedbackID {
			out = append(out, routed{m.Subject(), m.Headers().Get(jetstream.MsgIDHeader), ev})
		}
	}
	if err := batch.Error(); err != nil {
		h.t.Fatal(err)
	}
	return out
}

// subjectCounts counts the stream's messages per subject under filter.
func (h *harness) subjectCounts(stream, filter string) map[string]uint64 {
	h.t.Helper()
	s, err := h.js.Stream(context.Background(), stream)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(filter))
	if err != nil {
		h.t.Fatal(err)
	}
	return info.State.Subjects
}

func teams(rs []routed) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.ev.GetRouted().GetAssignment().GetTeam())
	}
	slices.Sort(out)
	return out
}

func TestRoutesEachTeamOnItsSubject(t *testing.T) {
	h := start(t)
	in := item{id: "fb-refund", topics: []string{"billing"}, attrs: map[string]string{"kind": "refund"}}.event()
	h.waitHandled(h.publish(in))

	rs := h.routedFor("fb-refund")
	if len(rs) != 1 {
		t.Fatalf("got %d routed events, want 1: %v", len(rs), rs)
	}
	r := rs[0]
	if r.subject != "feedback.routed.billing" {
		t.Errorf("subject = %s, want feedback.routed.billing", r.subject)
	}
	wantID := bus.DeriveID(in.GetId(), "routed", "billing")
	if r.ev.GetId() != wantID || r.msgID != wantID {
		t.Errorf("event id %s, Nats-Msg-Id %s; want both %s", r.ev.GetId(), r.msgID, wantID)
	}
	if !r.ev.GetOccurredAt().AsTime().Equal(occurred) {
		t.Errorf("occurred_at = %v, want the classified event's %v", r.ev.GetOccurredAt().AsTime(), occurred)
	}
	rt := r.ev.GetRouted()
	if !proto.Equal(rt.GetFeedback(), in.GetClassified().GetFeedback()) || !proto.Equal(rt.GetClassification(), in.GetClassified().GetClassification()) {
		t.Error("routed event does not carry the feedback and its classification")
	}
	a := rt.GetAssignment()
	if a.GetTeam() != "billing" || a.GetRoute() != "root/billing/refunds" || a.GetPriority() != feedloopv1.Priority_PRIORITY_HIGH {
		t.Errorf("assignment = %v, want billing root/billing/refunds high", a)
	}
	if got, want := a.GetAcknowledgeBy().AsTime(), occurred.Add(8*time.Hour); !got.Equal(want) {
		t.Errorf("acknowledge_by = %v, want %v (inherited from the root)", got, want)
	}
	if got, want := a.GetResolveBy().AsTime(), occurred.Add(72*time.Hour); !got.Equal(want) {
		t.Errorf("resolve_by = %v, want %v (from billing)", got, want)
	}

	// Nothing matches: the default team.
	h.waitHandled(h.publish(item{id: "fb-other", topics: []string{"account"}}.event()))
	if got := teams(h.routedFor("fb-other")); !slices.Equal(got, []string{"triage"}) {
		t.Errorf("unmatched item went to %v, want [triage]", got)
	}
}

func TestFanOutReachesTwoTeams(t *testing.T) {
	h := start(t)
	in := item{id: "fb-detractor", topics: []string{"delivery"}, nps: feedloopv1.NpsBand_NPS_BAND_DETRACTOR, channel: feedloopv1.Channel_CHANNEL_SURVEY}.event()
	h.waitHandled(h.publish(in))

	rs := h.routedFor("fb-detractor")
	if got := teams(rs); !slices.Equal(got, []string{"customer-success", "logistics"}) {
		t.Fatalf("routed to %v, want customer-success and logistics", got)
	}
	for _, r := range rs {
		a := r.ev.GetRouted().GetAssignment()
		if r.subject != bus.RoutedSubject(a.GetTeam()) || r.ev.GetId() != bus.DeriveID(in.GetId(), "routed", a.GetTeam()) {
			t.Errorf("%s: subject %s id %s", a.GetTeam(), r.subject, r.ev.GetId())
		}
		switch a.GetTeam() {
		case "customer-success":
			if a.GetRoute() != "root/customer-success" || a.GetPriority() != feedloopv1.Priority_PRIORITY_HIGH || !a.GetAcknowledgeBy().AsTime().Equal(occurred.Add(4*time.Hour)) {
				t.Errorf("customer-success assignment = %v", a)
			}
		case "logistics":
			if a.GetRoute() != "root/logistics" || a.GetPriority() != feedloopv1.Priority_PRIORITY_NORMAL || !a.GetResolveBy().AsTime().Equal(occurred.Add(120*time.Hour)) {
				t.Errorf("logistics assignment = %v", a)
			}
		}
	}
}

func TestRedeliveryAddsNothing(t *testing.T) {
	h := start(t)
	in := item{id: "fb-twice", topics: []string{"delivery"}, nps: feedloopv1.NpsBand_NPS_BAND_DETRACTOR, channel: feedloopv1.Channel_CHANNEL_SURVEY}.event()
	h.waitHandled(h.publish(in))
	before := h.subjectCounts(bus.StreamFeedback, bus.AllRouted)
	if before["feedback.routed.customer-success"] != 1 || before["feedback.routed.logistics"] != 1 {
		t.Fatalf("first delivery: routed counts %v", before)
	}

	// The same event again under another Nats-Msg-Id (as a replay from a
	// dead-letter queue or after the duplicate window would deliver it):
	// the router handles it a second time.
	data, err := proto.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	h.waitHandled(h.publishRaw("replay-of-"+in.GetId(), data))
	if after := h.subjectCounts(bus.StreamFeedback, bus.AllRouted); !equalCounts(after, before) {
		t.Errorf("replayed event added routed messages: before %v, after %v", before, after)
	}

	// A genuine redelivery of every message: a router that lost its
	// consumer starts over from the beginning of the stream.
	h.stop()
	if err := h.js.DeleteConsumer(context.Background(), bus.StreamFeedback, "router"); err != nil {
		t.Fatal(err)
	}
	h.run()
	last := h.publish(item{id: "fb-after-restart", topics: []string{"billing"}}.event())
	h.waitHandled(last)
	after := h.subjectCounts(bus.StreamFeedback, bus.AllRouted)
	before["feedback.routed.billing"]++ // the one new item
	if !equalCounts(after, before) {
		t.Errorf("re-consuming the stream added routed messages: want %v, got %v", before, after)
	}
	if n := len(h.routedFor("fb-twice")); n != 2 {
		t.Errorf("fb-twice has %d routed events, want 2", n)
	}
}

func equalCounts(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestPoisonMessagesAreDeadLettered(t *testing.T) {
	h := start(t)
	dlq := bus.DLQSubject("router")

	// Bytes that are no Event.
	h.waitHandled(h.publishRaw("poison-1", []byte("\xff\xfenot protobuf")))
	// A well-formed event whose payload is not Classified.
	wrong := &feedloopv1.Event{Id: "received-1", FeedbackId: "fb-wrong", OccurredAt: timestamppb.New(occurred),
		Payload: &feedloopv1.Event_Received{Received: &feedloopv1.Received{Feedback: &feedloopv1.Feedback{Id: "fb-wrong"}}}}
	h.waitHandled(h.publish(wrong))

	if got := h.subjectCounts(bus.StreamDLQ, dlq)[dlq]; got != 2 {
		t.Fatalf("%s holds %d messages, want 2", dlq, got)
	}
	// The projector folds every event and dead-letters the undecodable one
	// too, under its own subject; the router's letters are in order.
	letters := testkit.Messages(t, h.bus, bus.StreamDLQ, dlq)
	for i, want := range []string{"decode event", "payload is not Classified"} {
		m, seq := letters[i], i+1
		if m.Header.Get(bus.HeaderDLQSubject) != bus.SubjectClassified || !strings.Contains(m.Header.Get(bus.HeaderDLQError), want) {
			t.Errorf("dead letter %d: subject %q error %q; want %s and %q", seq,
				m.Header.Get(bus.HeaderDLQSubject), m.Header.Get(bus.HeaderDLQError), bus.SubjectClassified, want)
		}
	}
	if rs := h.routedFor("fb-wrong"); len(rs) != 0 {
		t.Errorf("non-Classified payload was routed: %v", rs)
	}

	// The stream is not blocked: the next good event flows.
	h.waitHandled(h.publish(item{id: "fb-good", topics: []string{"billing"}}.event()))
	if got := teams(h.routedFor("fb-good")); !slices.Equal(got, []string{"billing"}) {
		t.Errorf("good event after poison routed to %v, want [billing]", got)
	}
}

func TestReloadsRoutesFile(t *testing.T) {
	h := start(t)
	h.writeRoutes(strings.Replace(routesYAML, "team: billing", "team: finance", 1))
	deadline := time.Now().Add(wait)
	for !slices.Contains(h.svc.Tree().Teams(), "finance") {
		if time.Now().After(deadline) {
			t.Fatal("new routes file not picked up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.waitHandled(h.publish(item{id: "fb-1", topics: []string{"billing"}}.event()))
	if got := teams(h.routedFor("fb-1")); !slices.Equal(got, []string{"finance"}) {
		t.Fatalf("after reload billing item went to %v, want [finance]", got)
	}

	// A broken file is reported with its path and the bad node, and the
	// last good tree stays in force.
	h.writeRoutes(strings.Replace(routesYAML, "team: billing", "team: Billing!", 1))
	for !strings.Contains(h.logs.String(), "routes file invalid") {
		if time.Now().After(deadline) {
			t.Fatal("broken routes file not reported")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if l := h.logs.String(); !strings.Contains(l, h.routes) || !strings.Contains(l, `route.routes[1]: team \"Billing!\"`) {
		t.Errorf("log does not name the file and the bad node:\n%s", l)
	}
	h.waitHandled(h.publish(item{id: "fb-2", topics: []string{"billing"}}.event()))
	if got := teams(h.routedFor("fb-2")); !slices.Equal(got, []string{"finance"}) {
		t.Errorf("after a broken file billing item went to %v, want [finance] from the last good tree", got)
	}
}

func TestGRPCHealth(t *testing.T) {
	h := start(t)
	conn, err := grpc.NewClient(h.svc.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health = %v, want SERVING", resp.GetStatus())
	}
}
