package redisx_test

import (
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/feedloop/feedloop/pkg/redisx"
	"github.com/feedloop/feedloop/pkg/testkit"
)

// Redis calls are traced, but the values they carry (feedback text,
// customer data) never reach a span.
func TestTracesWithoutValues(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	c, err := redisx.Connect(t.Context(), testkit.Redis(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Set(t.Context(), "item", "ada@example.com was charged twice", 0).Err(); err != nil {
		t.Fatal(err)
	}
	var set bool
	for _, s := range rec.Ended() {
		if s.Name() == "set" {
			set = true
		}
		for _, a := range s.Attributes() {
			if strings.Contains(a.Value.Emit(), "ada@example.com") {
				t.Fatalf("span %s carries the value in %s", s.Name(), a.Key)
			}
		}
	}
	if !set {
		t.Fatalf("no span for SET among %d spans", len(rec.Ended()))
	}
}
