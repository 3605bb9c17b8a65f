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
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Msg) error {
			ctx = prop.Extract(ctx, HeaderCarrier(m.Header))
			ctx, span := tracer.Start(ctx, "process "+m.Subject,
				trace.WithSpanKind(trace.SpanKindConsumer),
				trace.WithAttributes(
					messagingSystemNATS,
					semconv.MessagingDestinationName(m.Subject),
					semconv.MessagingOperationTypeProcess,
					semconv.MessagingMessageID(m.MsgID()),
					semconv.MessagingConsumerGroupName(consumer),
					attribute.Int64("messaging.nats.delivered", int64(m.NumDelivered)),
					attribute.String("feedloop.feedback_id", m.Header.Get(HeaderFeedbackID)),
				))
			defer span.End()
			err := next(ctx, m)
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, err.Error())
			}
			return err
		}
	}
}

// messagingSystemNATS is messaging.system for NATS, which semconv has no constant for.
var messagingSystemNATS = semconv.MessagingSystemKey.String("nats")
