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
