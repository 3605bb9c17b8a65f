package rebuild_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/feedloop/feedloop/pkg/rebuild"
	"github.com/feedloop/feedloop/pkg/testkit"
)

// A rebuild runs inside a span of its own, so its Redis calls are its
// children (QuietBackground drops root Redis calls); a replica that finds
// the lock taken starts none.
func TestRebuildIsASpanBusyReplicaIsNot(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	g := gate(t, testkit.RedisClient(t), time.Second)
	ctx := context.Background()
	var inside trace.SpanContext
	err := g.Rebuild(ctx, func(ctx context.Context, _ rebuild.Guard) error {
		inside = trace.SpanContextFromContext(ctx)
		if err := g.Rebuild(ctx, func(context.Context, rebuild.Guard) error { return nil }); !errors.Is(err, rebuild.ErrBusy) {
			t.Errorf("second Rebuild = %v, want ErrBusy", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var runs []sdktrace.ReadOnlySpan
	for _, sp := range rec.Ended() {
		if sp.Name() == "rebuild.run" {
			runs = append(runs, sp)
		}
	}
	if len(runs) != 1 {
		t.Fatalf("%d rebuild.run spans, want 1 (the busy attempt starts none)", len(runs))
	}
	if runs[0].SpanContext().SpanID() != inside.SpanID() {
		t.Errorf("the rebuild func does not run inside the rebuild.run span")
	}
}

// A gate given a tracer provider starts its rebuild.run spans there, not
// in the global one: each service of `feedloop dev` has its own.
func TestRebuildSpanGoesToConfiguredProvider(t *testing.T) {
	global, own := tracetest.NewSpanRecorder(), tracetest.NewSpanRecorder()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(global)))
	t.Cleanup(func() { otel.SetTracerProvider(prev) })
	g, err := rebuild.New(testkit.RedisClient(t), rebuild.Config{Name: "test state", Prefix: "test:rebuild:",
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(own))})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Rebuild(context.Background(), func(context.Context, rebuild.Guard) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if got := own.Ended(); len(got) != 1 || got[0].Name() != "rebuild.run" {
		t.Errorf("configured provider's spans %v, want one rebuild.run", got)
	}
	for _, sp := range global.Ended() {
		if sp.Name() == "rebuild.run" {
			t.Error("rebuild.run went to the global provider")
		}
	}
}
