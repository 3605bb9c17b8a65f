package bus

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
)

// Tracing extracts the W3C trace context the publisher injected and runs the
// handler inside a consumer span that continues that trace, so every stage
// of one feedback item lands in one trace.
func Tracing(tracer trace.Tracer, prop propagation.TextMapPropagator, consumer string) Middleware {
	// The span's name and the attributes that do not change from one
	// message to the next are built once per subject.
	group := semconv.MessagingConsumerGroupName(consumer)
	shapes := perSubject[spanShape]{build: func(subject string) *spanShape {
		return newSpanShape("process "+subject, trace.SpanKindConsumer,
			messagingSystemNATS, semconv.MessagingDestinationName(subject), semconv.MessagingOperationTypeProcess, group)
	}}
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Msg) error {
			ctx = prop.Extract(ctx, HeaderCarrier(m.Header))
			shape := shapes.get(m.Subject)
			ctx, span := tracer.Start(ctx, shape.name, shape.opts...)
			defer span.End()
			if span.IsRecording() {
				span.SetAttributes(
					semconv.MessagingMessageID(m.MsgID()),
					attribute.Int64("messaging.nats.delivered", int64(m.NumDelivered)),
					attribute.String("feedloop.feedback_id", m.Header.Get(HeaderFeedbackID)))
			}
			err := next(ctx, m)
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, err.Error())
			}
			return err
		}
	}
}

// spanShape is what the spans of one subject share: name, kind and static
// attributes, as ready-made start options.
type spanShape struct {
	name string
	opts []trace.SpanStartOption
}

func newSpanShape(name string, kind trace.SpanKind, attrs ...attribute.KeyValue) *spanShape {
	return &spanShape{name: name, opts: []trace.SpanStartOption{trace.WithSpanKind(kind), trace.WithAttributes(attrs...)}}
}

// messagingSystemNATS is messaging.system for NATS, which semconv has no constant for.
var messagingSystemNATS = semconv.MessagingSystemKey.String("nats")
