package bus_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/feedloop/feedloop/pkg/bus"
)

// benchProviders are an SDK tracer provider that samples and records every
// span (as in the services, minus the exporter) and an SDK meter provider.
func benchProviders(b *testing.B) (*sdktrace.TracerProvider, *sdkmetric.MeterProvider) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()); _ = mp.Shutdown(context.Background()) })
	return tp, mp
}

func benchMsg(tp *sdktrace.TracerProvider) *bus.Msg {
	ctx, span := tp.Tracer("pub").Start(context.Background(), "publish")
	defer span.End()
	h := nats.Header{}
	propagation.TraceContext{}.Inject(ctx, bus.HeaderCarrier(h))
	h.Set(nats.MsgIdHdr, "ev-1")
	h.Set(bus.HeaderFeedbackID, "fb-1")
	return &bus.Msg{Subject: bus.SubjectClassified, Header: h, NumDelivered: 1}
}

func noop(context.Context, *bus.Msg) error { return nil }

// BenchmarkTracingMiddleware is the consumer span of one delivery.
func BenchmarkTracingMiddleware(b *testing.B) {
	// No recorder: it would keep every span; only the middleware is timed.
	tp := sdktrace.NewTracerProvider()
	h := bus.Tracing(tp.Tracer("t"), propagation.TraceContext{}, "router")(noop)
	m := benchMsg(tp)
	b.ReportAllocs()
	for b.Loop() {
		_ = h(context.Background(), m)
	}
}

// BenchmarkMetricsMiddleware is the counter and histogram of one delivery.
func BenchmarkMetricsMiddleware(b *testing.B) {
	tp, mp := benchProviders(b)
	h := bus.Metrics(mp.Meter("t"), "router")(noop)
	m := benchMsg(tp)
	b.ReportAllocs()
	for b.Loop() {
		_ = h(context.Background(), m)
	}
}
