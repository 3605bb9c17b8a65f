// Package tracelink links the trace of a team action, or of a customer's
// answer, to the trace of the feedback item it acts on. Such work starts
// its own trace (it is caused by a person, not by the item's pipeline), and
// the span link lets ops jump from one to the other in Tempo.
package tracelink

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Traces finds the traceparent of an item's trace; readmodel.Store is one.
type Traces interface {
	Trace(ctx context.Context, feedbackID string) (string, error)
}

// Item adds to the span of ctx a link to the trace of item feedbackID and
// tags the span with the item's id. It is best effort: an unknown trace
// (or a failing lookup) adds no link.
func Item(ctx context.Context, traces Traces, feedbackID string) {
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(attribute.String("feedloop.feedback_id", feedbackID))
	if traces == nil || !span.IsRecording() {
		return
	}
	tp, err := traces.Trace(ctx, feedbackID)
	if err != nil || tp == "" {
		return
	}
	if sc := SpanContext(tp); sc.IsValid() {
		span.AddLink(trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{
			attribute.String("feedloop.feedback_id", feedbackID),
			attribute.String("feedloop.link", "item"),
		}})
	}
}

// SpanContext parses a W3C traceparent; invalid input gives an invalid one.
func SpanContext(traceparent string) trace.SpanContext {
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": traceparent})
	return trace.SpanContextFromContext(ctx)
}
