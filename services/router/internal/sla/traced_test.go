package sla

import (
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/feedloop/feedloop/pkg/bus"
)

// A tick that finds nothing due starts no span; a firing is a span of its
// own with the escalated event's publish inside it, so QuietBackground
// (which drops root Redis calls) keeps the firing's work in one trace.
func TestFiringIsASpanIdleTickIsNot(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	e := newEnv(t, Config{WarnAt: 0})
	s := e.scheduler()
	e.emit(bus.RoutedSubject("billing"), routed("fb-1", "billing", 100, 0, nil))
	fires := func() []sdktrace.ReadOnlySpan {
		var out []sdktrace.ReadOnlySpan
		for _, sp := range rec.Ended() {
			if sp.Name() == "sla.fire" {
				out = append(out, sp)
			}
		}
		return out
	}
	e.fire(s, 50)
	if n := len(fires()); n != 0 {
		t.Fatalf("an idle tick started %d sla.fire spans", n)
	}
	e.fire(s, 100000)
	got := fires()
	if len(got) != 1 {
		t.Fatalf("%d sla.fire spans for one breach, want 1", len(got))
	}
	fire := got[0].SpanContext()
	var published bool
	for _, sp := range rec.Ended() {
		if sp.Parent().SpanID() == fire.SpanID() && sp.Name() == "send "+bus.EscalatedSubject("billing") {
			published = true
		}
	}
	if !published {
		t.Errorf("the escalated event's publish is not a child of sla.fire")
	}
}
