package classifier_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/classifier"
)

const deadline = 10 * time.Second

const rulesV1 = `
version: test-1
topics:
  - id: money
    topic: billing
    keywords: [charged twice, refund]
  - id: crashes
    topic: product
    keywords: ["crash*"]
urgency:
  high: {keywords: [charged twice, "crash*"]}
sentiment:
  negative: [bad]
  positive: [great]
`

// rulesV2 sends refunds to a returns topic instead.
const rulesV2 = `
version: test-2
topics:
  - id: returns
    topic: returns
    keywords: [refund]
`

// harness is a running classifier on real NATS and Redis.
type harness struct {
	svc       *classifier.Service
	bus       *bus.Bus
	rulesPath string
	logs      *logRecorder
}

func start(t *testing.T, rules string) *harness {
	t.Helper()
	return startWith(t, rules, nil)
}

// startWith starts a classifier whose configuration modify may change.
func startWith(t *testing.T, rules string, modify func(*classifier.Config)) *harness {
	t.Helper()
	b := testkit.Bus(t)
	rdb := testkit.RedisClient(t)
	dir := t.TempDir()
	h := &harness{bus: b, rulesPath: filepath.Join(dir, "rules.yaml"), logs: &logRecorder{}}
	writeFile(t, h.rulesPath, rules)

	cfg := classifier.DefaultConfig()
	cfg.RulesFile = h.rulesPath
	cfg.RulesPollInterval = 100 * time.Millisecond // the shortest Validate allows
	cfg.Concurrency = 2
	cfg.Languages = []string{"en", "de", "fr"}
	if modify != nil {
		modify(&cfg)
	}
	svc, err := classifier.New(cfg, &lifecycle.Infra{Bus: b, Redis: rdb, Log: slog.New(h.logs)})
	if err != nil {
		t.Fatal(err)
	}
	h.svc = svc
	testkit.Run(t, svc.Run)
	return h
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// replaceFile writes content the way editors save: a new file renamed over
// the old one.
func replaceFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	t.Cleanup(cancel)
	return ctx
}

func receivedEvent(text string) *feedloopv1.Event {
	fbID := bus.NewID()
	return &feedloopv1.Event{
		Id:         bus.NewID(),
		FeedbackId: fbID,
		OccurredAt: timestamppb.Now(),
		Payload: &feedloopv1.Event_Received{Received: &feedloopv1.Received{Feedback: &feedloopv1.Feedback{
			Id:         fbID,
			Source:     "test",
			ExternalId: "ext-" + fbID,
			Text:       text,
			Customer:   &feedloopv1.Customer{Id: "c-1", Locale: "en-US"},
		}}},
	}
}

func (h *harness) publish(t *testing.T, ev *feedloopv1.Event) *jetstream.PubAck {
	t.Helper()
	ack, err := h.bus.Publish(ctxT(t), bus.SubjectReceived, ev)
	if err != nil {
		t.Fatal(err)
	}
	return ack
}

// messages returns every message stored on subject in stream, in order.
func (h *harness) messages(t *testing.T, stream, subject string) []*jetstream.RawStreamMsg {
	t.Helper()
	return testkit.Messages(t, h.bus, stream, subject)
}

// classified waits for the feedback.classified event derived from in.
func (h *harness) classified(t *testing.T, in *feedloopv1.Event) (*feedloopv1.Event, *jetstream.RawStreamMsg) {
	t.Helper()
	want := bus.DeriveID(in.GetId(), "classified")
	var found *jetstream.RawStreamMsg
	testkit.Eventually(t, "classified event "+want, func() bool {
		for _, m := range h.messages(t, bus.StreamFeedback, bus.SubjectClassified) {
			if m.Header.Get(jetstream.MsgIDHeader) == want {
				found = m
				return true
			}
		}
		return false
	})
	ev := &feedloopv1.Event{}
	if err := proto.Unmarshal(found.Data, ev); err != nil {
		t.Fatal(err)
	}
	if ev.GetId() != want {
		t.Fatalf("event id %s under Nats-Msg-Id %s", ev.GetId(), want)
	}
	return ev, found
}

func topics(cls *feedloopv1.Classification) []string {
	var out []string
	for _, ts := range cls.GetTopics() {
		out = append(out, ts.GetTopic())
	}
	return out
}

func TestClassifiesReceivedFeedback(t *testing.T) {
	h := start(t, rulesV1)
	in := receivedEvent("I was charged twice and the app crashes. Write to jane.doe@example.com please.")
	in.GetReceived().GetFeedback().Nps = proto.Int32(3)
	h.publish(t, in)

	out, raw := h.classified(t, in)
	if out.GetFeedbackId() != in.GetFeedbackId() {
		t.Errorf("feedback_id = %s, want %s", out.GetFeedbackId(), in.GetFeedbackId())
	}
	if got := raw.Header.Get(bus.HeaderPayloadType); got != "feedloop.v1.Classified" {
		t.Errorf("payload type header = %q", got)
	}
	c := out.GetClassified()
	if !proto.Equal(c.GetFeedback(), in.GetReceived().GetFeedback()) {
		t.Errorf("feedback changed on the way:\n got %v\nwant %v", c.GetFeedback(), in.GetReceived().GetFeedback())
	}
	cls := c.GetClassification()
	if got := topics(cls); !slices.Equal(got, []string{"billing", "product"}) {
		t.Errorf("topics = %q, want billing and product", got)
	}
	if !slices.Equal(cls.GetRuleIds(), []string{"money", "crashes"}) {
		t.Errorf("rule_ids = %q", cls.GetRuleIds())
	}
	if cls.GetUrgency() != feedloopv1.Urgency_URGENCY_HIGH {
		t.Errorf("urgency = %v, want high", cls.GetUrgency())
	}
	if cls.GetSentiment() != feedloopv1.Sentiment_SENTIMENT_NEGATIVE || cls.GetSentimentConfidence() != 1 {
		t.Errorf("sentiment = %v (%v), want negative from the NPS detractor answer", cls.GetSentiment(), cls.GetSentimentConfidence())
	}
	if cls.GetNpsBand() != feedloopv1.NpsBand_NPS_BAND_DETRACTOR {
		t.Errorf("nps_band = %v", cls.GetNpsBand())
	}
	if cls.GetLanguage() != "en" {
		t.Errorf("language = %q, want en", cls.GetLanguage())
	}
	if cls.GetModelVersion() != "rules:test-1" {
		t.Errorf("model_version = %q", cls.GetModelVersion())
	}
	if want := "I was charged twice and the app crashes. Write to [email] please."; cls.GetRedactedText() != want {
		t.Errorf("redacted_text = %q, want %q", cls.GetRedactedText(), want)
	}
	if !maps.Equal(cls.GetRedactions(), map[string]int32{"email": 1}) {
		t.Errorf("redactions = %v", cls.GetRedactions())
	}
}

func TestUnmatchedFeedbackIsUnknown(t *testing.T) {
	h := start(t, rulesV1)
	in := receivedEvent("Bonjour, je voudrais changer mon adresse de livraison, merci beaucoup.")
	h.publish(t, in)
	out, _ := h.classified(t, in)
	cls := out.GetClassified().GetClassification()
	if len(cls.GetTopics()) != 1 || cls.GetTopics()[0].GetTopic() != "unknown" || cls.GetTopics()[0].GetConfidence() != 0 {
		t.Errorf("topics = %v, want unknown with confidence 0", cls.GetTopics())
	}
	if len(cls.GetRuleIds()) != 0 || cls.GetUrgency() != feedloopv1.Urgency_URGENCY_NORMAL ||
		cls.GetSentiment() != feedloopv1.Sentiment_SENTIMENT_NEUTRAL || cls.GetLanguage() != "fr" {
		t.Errorf("classification = %v", cls)
	}
}

func TestRedeliveredInputPublishesOneClassifiedEvent(t *testing.T) {
	h := start(t, rulesV1)
	in := receivedEvent("refund please")
	h.publish(t, in)
	out, _ := h.classified(t, in)

	// The same event again is dropped by the stream before the classifier.
	if ack := h.publish(t, in); !ack.Duplicate {
		t.Error("republished Received event was not a duplicate")
	}
	// A redelivery the stream cannot drop (another message id, same event)
	// reaches the classifier, which derives the same output id again.
	data, err := proto.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	redelivered, err := h.bus.PublishData(ctxT(t), bus.SubjectReceived, "redelivery-"+in.GetId(), data, nil)
	if err != nil {
		t.Fatal(err)
	}
	next := receivedEvent("another refund")
	h.publish(t, next)
	h.classified(t, next)
	// Wait until the classifier has acknowledged the redelivery, i.e. handled
	// it successfully (its publish was a duplicate, not an error).
	testkit.Eventually(t, "redelivery acknowledged", func() bool {
		c, err := h.bus.JetStream().Consumer(ctxT(t), bus.StreamFeedback, classifier.Durable)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(ctxT(t))
		return err == nil && info.AckFloor.Stream >= redelivered.Sequence
	})

	count := 0
	for _, m := range h.messages(t, bus.StreamFeedback, bus.SubjectClassified) {
		if m.Header.Get(jetstream.MsgIDHeader) == out.GetId() {
			count++
		}
	}
	if count != 1 {
		t.Errorf("%d classified events with id %s, want exactly 1", count, out.GetId())
	}
	if n := len(h.messages(t, bus.StreamFeedback, bus.SubjectClassified)); n != 2 {
		t.Errorf("%d classified events in the stream, want 2", n)
	}
}

func TestPoisonMessagesAreDeadLettered(t *testing.T) {
	h := start(t, rulesV1)
	garbage := []byte("\xff\x00 definitely not protobuf \xfe")
	if _, err := h.bus.PublishData(ctxT(t), bus.SubjectReceived, "poison-1", garbage, nil); err != nil {
		t.Fatal(err)
	}
	wrongPayload := &feedloopv1.Event{Id: bus.NewID(), FeedbackId: "fb-x",
		Payload: &feedloopv1.Event_Notified{Notified: &feedloopv1.Notified{Step: feedloopv1.Step_STEP_RECEIVED}}}
	h.publish(t, wrongPayload)

	dlq := bus.DLQSubject(classifier.Durable)
	var dead []*jetstream.RawStreamMsg
	testkit.Eventually(t, "two dead letters on "+dlq, func() bool {
		dead = h.messages(t, bus.StreamDLQ, dlq)
		return len(dead) == 2
	})
	byData := map[string]*jetstream.RawStreamMsg{}
	for _, m := range dead {
		byData[string(m.Data)] = m
		if m.Header.Get(bus.HeaderDLQSubject) != bus.SubjectReceived {
			t.Errorf("dead letter from %q, want %s", m.Header.Get(bus.HeaderDLQSubject), bus.SubjectReceived)
		}
		// Permanent failures are dead-lettered at the first delivery, not
		// after retries.
		if got := m.Header.Get(bus.HeaderDLQDeliver); got != "1" {
			t.Errorf("dead-lettered after %s deliveries, want 1", got)
		}
	}
	if m := byData[string(garbage)]; m == nil || !strings.Contains(m.Header.Get(bus.HeaderDLQError), "decode event") {
		t.Errorf("garbage not dead-lettered with a decode error: %v", m)
	}
	wrongData, _ := proto.Marshal(wrongPayload)
	if m := byData[string(wrongData)]; m == nil || !strings.Contains(m.Header.Get(bus.HeaderDLQError), "not a Received") {
		t.Errorf("wrong payload not dead-lettered as not a Received: %v", m)
	}

	good := receivedEvent("the app crashed")
	h.publish(t, good)
	out, _ := h.classified(t, good)
	if got := topics(out.GetClassified().GetClassification()); !slices.Equal(got, []string{"product"}) {
		t.Errorf("topics after poison = %q", got)
	}
}

func TestRulesReload(t *testing.T) {
	h := start(t, rulesV1)
	classify := func(text string) *feedloopv1.Classification {
		in := receivedEvent(text)
		h.publish(t, in)
		out, _ := h.classified(t, in)
		return out.GetClassified().GetClassification()
	}
	if cls := classify("I want a refund"); !slices.Equal(topics(cls), []string{"billing"}) || cls.GetModelVersion() != "rules:test-1" {
		t.Fatalf("before reload: topics %q, model %q", topics(cls), cls.GetModelVersion())
	}

	replaceFile(t, h.rulesPath, rulesV2)
	testkit.Eventually(t, "rules test-2 in force", func() bool { return h.svc.RulesVersion() == "test-2" })
	if cls := classify("I want a refund"); !slices.Equal(topics(cls), []string{"returns"}) || cls.GetModelVersion() != "rules:test-2" {
		t.Errorf("after reload: topics %q, model %q", topics(cls), cls.GetModelVersion())
	}

	// A broken file is logged and the rules in force stay.
	writeFile(t, h.rulesPath, strings.Replace(rulesV2, "keywords: [refund]", "patterns: ['(refund']", 1))
	testkit.Eventually(t, "reload failure logged", func() bool {
		return h.logs.contains("rules reload failed", "topics[0].patterns[0]: invalid regexp")
	})
	if v := h.svc.RulesVersion(); v != "test-2" {
		t.Errorf("rules version after a bad file = %q, want test-2 kept", v)
	}
	if cls := classify("another refund"); !slices.Equal(topics(cls), []string{"returns"}) || cls.GetModelVersion() != "rules:test-2" {
		t.Errorf("after bad file: topics %q, model %q", topics(cls), cls.GetModelVersion())
	}
}

func TestNewRejectsBadRulesFile(t *testing.T) {
	infra := &lifecycle.Infra{Bus: testkit.Bus(t)}
	cfg := classifier.DefaultConfig()
	cfg.Languages = nil

	cfg.RulesFile = filepath.Join(t.TempDir(), "missing.yaml")
	if _, err := classifier.New(cfg, infra); err == nil || !strings.Contains(err.Error(), "CLASSIFIER_RULES_FILE") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	cfg.RulesFile = filepath.Join(t.TempDir(), "rules.yaml")
	writeFile(t, cfg.RulesFile, "version: v\ntopics: [{id: a, topic: t, patterns: ['[']}]\n")
	_, err := classifier.New(cfg, infra)
	if err == nil || !strings.Contains(err.Error(), cfg.RulesFile) || !strings.Contains(err.Error(), "topics[0].patterns[0]: invalid regexp") {
		t.Errorf("invalid rules: %v", err)
	}
	cfg.Concurrency = 0
	if _, err := classifier.New(cfg, infra); err == nil || !strings.Contains(err.Error(), "CLASSIFIER_CONCURRENCY") {
		t.Errorf("invalid config: %v", err)
	}
}

// logRecorder is a slog.Handler that keeps every record as text.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	r.mu.Lock()
	r.lines = append(r.lines, b.String())
	r.mu.Unlock()
	return nil
}

func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

// contains reports whether one record contains every part.
func (r *logRecorder) contains(parts ...string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.lines {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			return true
		}
	}
	return false
}
