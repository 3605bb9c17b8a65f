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
