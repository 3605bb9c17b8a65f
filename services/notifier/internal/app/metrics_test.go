package app_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/services/notifier/internal/app"
)

// A message sent once and a redelivery that sends nothing are counted as
// sent and duplicate, and the duplicate is an event on the handler's span.
func TestNotificationResultsAreCountedAndMarkedOnTheSpan(t *testing.T) {
	f := newFixture(t)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	f.h.Metrics = app.NewMetrics(mp)
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))

	fid := bus.NewID()
	for i := 0; i < 2; i++ {
		ctx, span := tp.Tracer("t").Start(context.Background(), "process feedback.received")
		if err := f.h.Handle(ctx, receivedMsg(t, "ev-1", fid)); err != nil {
			t.Fatal(err)
		}
		span.End()
	}
	if n := f.hits.Load(); n != 1 {
		t.Fatalf("webhook got %d requests, want 1", n)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	var sends uint64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					got[p.Attributes.Encoded(attribute.DefaultEncoder())] = p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					sends += p.Count
				}
			}
		}
	}
	for _, result := range []string{app.ResultSent, app.ResultDuplicate} {
		if k := "audience=customer,channel=webhook,result=" + result + ",step=received"; got[k] != 1 {
			t.Errorf("%s = %d, want 1 (all: %v)", k, got[k], got)
		}
	}
	if sends != 1 {
		t.Errorf("send durations recorded: %d, want 1", sends)
	}
	var ended []sdktrace.ReadOnlySpan // the handler spans (the webhook's HTTP client spans aside)
	for _, s := range spans.Ended() {
		if s.Name() == "process feedback.received" {
			ended = append(ended, s)
		}
	}
	if len(ended) != 2 {
		t.Fatalf("%d handler spans", len(ended))
	}
	has := func(s sdktrace.ReadOnlySpan, name string) bool {
		for _, e := range s.Events() {
			if e.Name == name {
				return true
			}
		}
		return false
	}
	if !has(ended[0], "notification sent") || !has(ended[1], "notification duplicate") {
		t.Errorf("span events: first %v, second %v", ended[0].Events(), ended[1].Events())
	}
}
