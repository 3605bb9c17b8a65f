package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

func receivedEvent(id string) *feedloopv1.Event {
	return &feedloopv1.Event{
		Id:         id,
		FeedbackId: "fb-" + id,
		OccurredAt: timestamppb.Now(),
		Payload: &feedloopv1.Event_Received{Received: &feedloopv1.Received{
			Feedback: &feedloopv1.Feedback{Id: "fb-" + id, Source: "test", ExternalId: id, Text: "hello"},
		}},
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func lastMsg(t *testing.T, b *bus.Bus, stream, subject string) *jetstream.RawStreamMsg {
	t.Helper()
	s, err := b.JetStream().Stream(ctxT(t), stream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(ctxT(t), subject)
	if err != nil {
		t.Fatalf("no message on %s: %v", subject, err)
	}
	return m
}

func subjectCount(t *testing.T, b *bus.Bus, stream, subject string) uint64 {
	t.Helper()
	s, err := b.JetStream().Stream(ctxT(t), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctxT(t), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[subject]
}

func TestPublishHeadersAndTraceContext(t *testing.T) {
	b := testkit.Bus(t)
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("test").Start(ctxT(t), "root")
	defer span.End()

	ev := receivedEvent("e1")
	ack, err := b.Publish(ctx, bus.SubjectReceived, ev)
	if err != nil {
		t.Fatal(err)
	}
	if ack.Stream != bus.StreamFeedback || ack.Duplicate {
		t.Fatalf("ack = %+v, want stored in FEEDBACK", ack)
	}
	m := lastMsg(t, b, bus.StreamFeedback, bus.SubjectReceived)
	if got := m.Header.Get("Nats-Msg-Id"); got != "e1" {
		t.Errorf("Nats-Msg-Id = %q, want e1", got)
	}
	if got := m.Header.Get(bus.HeaderPayloadType); got != "feedloop.v1.Received" {
		t.Errorf("payload type = %q", got)
	}
	if got := m.Header.Get(bus.HeaderFeedbackID); got != "fb-e1" {
		t.Errorf("feedback id header = %q", got)
	}
	tp0, ok := m.Header["traceparent"]
	if !ok || len(tp0) != 1 {
		t.Fatalf("no lowercase traceparent header: %v", m.Header)
	}
	back := propagation.TraceContext{}.Extract(context.Background(), bus.HeaderCarrier(m.Header))
	if got, want := spanContextTraceID(back), span.SpanContext().TraceID().String(); got != want {
		t.Errorf("published trace id %s, want the caller's %s", got, want)
	}
	var got feedloopv1.Event
	if err := proto.Unmarshal(m.Data, &got); err != nil || !proto.Equal(&got, ev) {
		t.Fatalf("stored event differs: %v", err)
	}
}

func TestCarrierKeepsLowercaseKeys(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("test").Start(context.Background(), "root")
	defer span.End()
	h := bus.HeaderCarrier{}
	propagation.TraceContext{}.Inject(ctx, h)
	if _, ok := h["traceparent"]; !ok {
		t.Fatalf("traceparent not set with a lowercase key: %v", h)
	}
	if _, ok := h["Traceparent"]; ok {
		t.Fatalf("key was canonicalised: %v", h)
	}
	back := propagation.TraceContext{}.Extract(context.Background(), h)
	if got := spanContextTraceID(back); got != span.SpanContext().TraceID().String() {
		t.Fatalf("extracted trace id %s, want %s", got, span.SpanContext().TraceID())
	}
}

func TestPublishSameIDIsStoredOnce(t *testing.T) {
	b := testkit.Bus(t)
	for i := 0; i < 3; i++ {
		ack, err := b.Publish(ctxT(t), bus.SubjectReceived, receivedEvent("same"))
		if err != nil {
			t.Fatal(err)
		}
		if want := i > 0; ack.Duplicate != want {
			t.Fatalf("publish %d: duplicate = %v, want %v", i, ack.Duplicate, want)
		}
	}
	if n := subjectCount(t, b, bus.StreamFeedback, bus.SubjectReceived); n != 1 {
		t.Fatalf("stored %d messages, want 1", n)
	}
}

func TestPublishWithoutStreamFails(t *testing.T) {
	b := testkit.Bus(t)
	_, err := b.Publish(ctxT(t), "nowhere.subject", receivedEvent("x"))
	if err == nil {
		t.Fatal("publish to a subject no stream stores succeeded")
	}
	if _, err := b.Publish(ctxT(t), bus.SubjectReceived, &feedloopv1.Event{}); err == nil {
		t.Fatal("publish of an event without id succeeded")
	}
}

func TestEnsureStreamsIsIdempotentAndUpdates(t *testing.T) {
	b := testkit.Bus(t) // created once with defaults
	cfg := bus.StreamsConfig{DuplicateWindow: time.Minute, MaxAge: 48 * time.Hour}
	for i := 0; i < 2; i++ {
		if err := b.EnsureStreams(ctxT(t), cfg); err != nil {
			t.Fatalf("ensure #%d: %v", i, err)
		}
	}
	s, err := b.JetStream().Stream(ctxT(t), bus.StreamFeedback)
	if err != nil {
		t.Fatal(err)
	}
	info := s.CachedInfo()
	if info.Config.Duplicates != time.Minute || info.Config.MaxAge != 48*time.Hour || info.Config.Storage != jetstream.FileStorage {
		t.Fatalf("FEEDBACK config not updated: %+v", info.Config)
	}
	sub, err := b.JetStream().Stream(ctxT(t), bus.StreamSubmit)
	if err != nil {
		t.Fatal(err)
	}
	if sub.CachedInfo().Config.Retention != jetstream.WorkQueuePolicy {
		t.Fatalf("submit stream is not a work queue")
	}
}

func TestDeriveID(t *testing.T) {
	a := bus.DeriveID("parent", "routed", "billing")
	if a != bus.DeriveID("parent", "routed", "billing") {
		t.Fatal("DeriveID is not deterministic")
	}
	for _, other := range []string{
		bus.DeriveID("parent", "routed", "logistics"),
		bus.DeriveID("parent2", "routed", "billing"),
		bus.DeriveID("parent", "routedbilling"),
	} {
		if other == a {
			t.Fatalf("different inputs gave the same id %s", a)
		}
	}
	if bus.NewID() == bus.NewID() {
		t.Fatal("NewID repeated")
	}
}
