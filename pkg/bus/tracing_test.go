package bus_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/testkit"
)

func TestTracingContinuesPublishersTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prop := propagation.TraceContext{}

	pubCtx, pub := tp.Tracer("t").Start(context.Background(), "publish")
	h := nats.Header{}
	prop.Inject(pubCtx, bus.HeaderCarrier(h))
	h.Set(nats.MsgIdHdr, "ev-1")
	pub.End()

	var inHandler trace.SpanContext
	mw := bus.Tracing(tp.Tracer("t"), prop, "router")
	err := mw(func(ctx context.Context, m *bus.Msg) error {
		inHandler = trace.SpanContextFromContext(ctx)
		return nil
	})(context.Background(), &bus.Msg{Subject: bus.SubjectClassified, Header: h, NumDelivered: 1})
	if err != nil {
		t.Fatal(err)
	}
	if inHandler.TraceID() != pub.SpanContext().TraceID() {
		t.Fatalf("handler trace %s, want publisher's %s", inHandler.TraceID(), pub.SpanContext().TraceID())
	}
	spans := rec.Ended()
	consumer := spans[len(spans)-1]
	if consumer.Parent().SpanID() != pub.SpanContext().SpanID() || consumer.SpanKind() != trace.SpanKindConsumer {
		t.Fatalf("consumer span parent %s kind %s", consumer.Parent().SpanID(), consumer.SpanKind())
	}
	attrs := map[attribute.Key]string{}
	for _, a := range consumer.Attributes() {
		attrs[a.Key] = a.Value.Emit()
	}
	for k, want := range map[attribute.Key]string{
		"messaging.system":              "nats",
		"messaging.destination.name":    bus.SubjectClassified,
		"messaging.operation.type":      "process",
		"messaging.message.id":          "ev-1",
		"messaging.consumer.group.name": "router",
	} {
		if attrs[k] != want {
			t.Errorf("%s = %q, want %q", k, attrs[k], want)
		}
	}
}

// Two services in one process, one connection: each bus's spans go to its
// own provider (the publisher's producer span to one, the consumer's span
// to the other), still one trace through the message's headers.
func TestBusSpansGoToItsTracerProvider(t *testing.T) {
	pubRec, conRec := tracetest.NewSpanRecorder(), tracetest.NewSpanRecorder()
	pubTP := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(pubRec))
	conTP := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(conRec))
	shared := testkit.Bus(t)
	pub, err := bus.New(shared.Conn(), bus.WithTracerProvider(pubTP))
	if err != nil {
		t.Fatal(err)
	}
	con, err := bus.New(shared.Conn(), bus.WithTracerProvider(conTP))
	if err != nil {
		t.Fatal(err)
	}
	handled := make(chan trace.SpanContext, 1)
	runConsumer(t, con, fastConsumer("own-provider"), func(ctx context.Context, _ *bus.Msg) error {
		handled <- trace.SpanContextFromContext(ctx)
		return nil
	})
	if _, err := pub.Publish(ctxT(t), bus.SubjectReceived, receivedEvent("own-tp")); err != nil {
		t.Fatal(err)
	}
	var in trace.SpanContext
	select {
	case in = <-handled:
	case <-ctxT(t).Done():
		t.Fatal("message not handled")
	}
	sent := pubRec.Ended()
	if len(sent) != 1 || sent[0].SpanKind() != trace.SpanKindProducer {
		t.Fatalf("publisher's provider got %d spans, want its one producer span", len(sent))
	}
	for _, s := range conRec.Ended() {
		if s.SpanKind() == trace.SpanKindProducer {
			t.Errorf("consumer's provider got the producer span %q", s.Name())
		}
	}
	if in.TraceID() != sent[0].SpanContext().TraceID() {
		t.Errorf("handler in trace %s, want the publisher's %s", in.TraceID(), sent[0].SpanContext().TraceID())
	}
	// The consumer span ends after the handler returns.
	testkit.Eventually(t, "the consumer span", func() bool {
		for _, s := range conRec.Ended() {
			if s.SpanKind() == trace.SpanKindConsumer && s.SpanContext().SpanID() == in.SpanID() {
				return true
			}
		}
		return false
	})
	for _, s := range pubRec.Ended() {
		if s.SpanKind() == trace.SpanKindConsumer {
			t.Errorf("publisher's provider got the consumer span %q", s.Name())
		}
	}
}
