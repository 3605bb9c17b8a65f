package bus_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/protobuf/proto"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

func fanOut(n int) []bus.Outgoing {
	evs := make([]bus.Outgoing, n)
	for i := range evs {
		evs[i] = bus.Outgoing{Subject: bus.RoutedSubject(fmt.Sprint("team", i)), Event: receivedEvent(fmt.Sprint("fan-", i))}
	}
	return evs
}

// PublishAll stores every event as Publish would: the event id as
// Nats-Msg-Id, the headers, the caller's trace, and again as duplicates.
func TestPublishAllStoresEveryEventAsPublish(t *testing.T) {
	b, reader := meteredBus(t)
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("test").Start(ctxT(t), "root")
	defer span.End()

	// More than MaxInFlight: the window slides.
	evs := fanOut(bus.MaxInFlight + 6)
	acks, err := b.PublishAll(ctx, evs)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range evs {
		if acks[i] == nil || acks[i].Duplicate || acks[i].Stream != bus.StreamFeedback {
			t.Fatalf("ack %d = %+v, want stored", i, acks[i])
		}
		m := lastMsg(t, b, bus.StreamFeedback, o.Subject)
		if m.Header.Get("Nats-Msg-Id") != o.Event.GetId() || m.Header.Get(bus.HeaderPayloadType) != "feedloop.v1.Received" ||
			m.Header.Get(bus.HeaderFeedbackID) != o.Event.GetFeedbackId() {
			t.Fatalf("headers of %d = %v", i, m.Header)
		}
		back := propagation.TraceContext{}.Extract(context.Background(), bus.HeaderCarrier(m.Header))
		if got, want := spanContextTraceID(back), span.SpanContext().TraceID().String(); got != want {
			t.Fatalf("event %d in trace %s, want the caller's %s", i, got, want)
		}
		var got feedloopv1.Event
		if err := proto.Unmarshal(m.Data, &got); err != nil || !proto.Equal(&got, o.Event) {
			t.Fatalf("stored event %d differs: %v", i, err)
		}
	}

	// A redelivered input publishes the same ids: all dropped.
	acks, err = b.PublishAll(ctx, evs)
	if err != nil {
		t.Fatal(err)
	}
	for i, ack := range acks {
		if !ack.Duplicate {
			t.Fatalf("republished %d = %+v, want a duplicate", i, ack)
		}
	}
	got := points(t, reader, "feedloop.messages.published")
	if n := got["result=stored,subject="+evs[0].Subject]; n != 1 {
		t.Fatalf("stored count of %s = %d, want 1: %v", evs[0].Subject, n, got)
	}
	if n := got["result=duplicate,subject="+evs[len(evs)-1].Subject]; n != 1 {
		t.Fatalf("duplicate count = %d, want 1: %v", n, got)
	}
}

// One event no stream stores: PublishAll fails (the caller retries the
// input), the others are stored and acked, and the failure is counted.
func TestPublishAllFailsIfAnyIsNotStored(t *testing.T) {
	b, reader := meteredBus(t)
	evs := fanOut(3)
	evs[1].Subject = "nowhere.stored"
	acks, err := b.PublishAll(ctxT(t), evs)
	if !errors.Is(err, bus.ErrNotStored) {
		t.Fatalf("err = %v, want ErrNotStored", err)
	}
	if acks[0] == nil || acks[1] != nil || acks[2] == nil {
		t.Fatalf("acks = %v, want the stored ones only", acks)
	}
	if n := points(t, reader, "feedloop.messages.published")["result=error,subject=nowhere.stored"]; n != 1 {
		t.Fatalf("error count = %d, want 1", n)
	}
	// An event without an id is refused, nothing of it sent.
	if _, err := b.PublishAll(ctxT(t), []bus.Outgoing{evs[0], {Subject: evs[2].Subject, Event: &feedloopv1.Event{}}}); err == nil {
		t.Fatal("an event without id was published")
	}
}

// A closed connection fails every publish, without hanging.
func TestPublishAllOnAClosedConnection(t *testing.T) {
	b := testkit.Bus(t)
	b.Conn().Close()
	acks, err := b.PublishAll(ctxT(t), fanOut(2))
	if !errors.Is(err, bus.ErrNotStored) || acks[0] != nil || acks[1] != nil {
		t.Fatalf("PublishAll on a closed connection = %v, %v; want ErrNotStored", acks, err)
	}
}
