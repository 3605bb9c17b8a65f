package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// Header keys feedloop sets besides Nats-Msg-Id and the trace context.
const (
	HeaderPayloadType = "Feedloop-Payload-Type"
	HeaderFeedbackID  = "Feedloop-Feedback-Id"
	HeaderDLQError    = "Feedloop-Dlq-Error"
	HeaderDLQSubject  = "Feedloop-Dlq-Subject"
	HeaderDLQStream   = "Feedloop-Dlq-Stream"
	HeaderDLQSequence = "Feedloop-Dlq-Sequence"
	HeaderDLQDeliver  = "Feedloop-Dlq-Deliveries"
)

// ErrNotStored is returned when the server did not confirm a publish.
var ErrNotStored = errors.New("bus: message not stored")

// Bus publishes and consumes feedloop messages on one JetStream context.
type Bus struct {
	nc         *nats.Conn
	js         jetstream.JetStream
	log        *slog.Logger
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
	meter      metric.Meter
	metrics    *busMetrics
}

// Option configures a Bus.
type Option func(*Bus)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(b *Bus) { b.log = l } }

// WithMeterProvider sets where the bus's metrics go (default: the global
// meter provider, which telemetry.Setup installs).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(b *Bus) { b.meter = mp.Meter(instrumentationName) }
}

// instrumentationName names the bus's tracer and meter.
const instrumentationName = "github.com/feedloop/feedloop/pkg/bus"

// Connect dials NATS at url with reconnects that never give up: a service
// outlives a restart of its server. opts add to (and may override) these,
// e.g. credentials and TLS (lifecycle.Common.NATSOptions).
func Connect(url, name string, opts ...nats.Option) (*nats.Conn, error) {
	nc, err := nats.Connect(url, append([]nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
	}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("bus: connect %s: %w", url, err)
	}
	return nc, nil
}

// New returns a Bus on nc. It uses the global OpenTelemetry tracer and meter
// providers and propagator, so telemetry set-up must run first.
func New(nc *nats.Conn, opts ...Option) (*Bus, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("bus: jetstream: %w", err)
	}
	b := &Bus{
		nc:         nc,
		js:         js,
		log:        slog.Default(),
		tracer:     otel.Tracer(instrumentationName),
		propagator: otel.GetTextMapPropagator(),
		meter:      otel.Meter(instrumentationName),
	}
	for _, o := range opts {
		o(b)
	}
	b.metrics = newBusMetrics(b.meter, nc)
	return b, nil
}

// Conn returns the underlying connection.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// JetStream returns the underlying JetStream context.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Publish publishes ev on subject and waits for the stream to store it.
// Nats-Msg-Id is the event id, so publishing the same event twice within the
// duplicate window stores it once (the PubAck then reports Duplicate).
func (b *Bus) Publish(ctx context.Context, subject string, ev *feedloopv1.Event) (*jetstream.PubAck, error) {
	if ev.GetId() == "" {
		return nil, fmt.Errorf("bus: publish %s: event has no id", subject)
	}
	data, err := proto.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("bus: marshal event %s: %w", ev.GetId(), err)
	}
	h := nats.Header{}
	h.Set(HeaderPayloadType, PayloadType(ev))
	if ev.GetFeedbackId() != "" {
		h.Set(HeaderFeedbackID, ev.GetFeedbackId())
	}
	return b.PublishData(ctx, subject, ev.GetId(), data, h)
}

// PublishData publishes raw data with msgID as Nats-Msg-Id and extra headers,
// injecting the trace context of ctx, and waits for the PubAck.
func (b *Bus) PublishData(ctx context.Context, subject, msgID string, data []byte, h nats.Header) (*jetstream.PubAck, error) {
	ctx, span := b.tracer.Start(ctx, "send "+subject,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			messagingSystemNATS,
			semconv.MessagingDestinationName(subject),
			semconv.MessagingOperationTypeSend,
			semconv.MessagingMessageID(msgID),
		))
	defer span.End()
	if h == nil {
		h = nats.Header{}
	}
	b.propagator.Inject(ctx, HeaderCarrier(h))
	msg := &nats.Msg{Subject: subject, Data: data, Header: h}
	ack, err := b.publish(ctx, msg, msgID)
	b.metrics.countPublish(ctx, subject, ack, err)
	if err != nil {
		span.RecordError(err)
		return nil, fmt.Errorf("%w: %s: %w", ErrNotStored, subject, err)
	}
	if ack.Duplicate {
		span.AddEvent("duplicate dropped by stream", trace.WithAttributes(attribute.String("messaging.message.id", msgID)))
	}
	return ack, nil
}

// PublishAttemptTimeout bounds one publish attempt. A stream leader that
// died takes its in-flight acks with it; waiting for them until the
// caller's deadline would stall the handler while a new leader is already
// serving, so the publish is retried under the same Nats-Msg-Id instead
// (the duplicate window makes a retry of a stored message a no-op).
var PublishAttemptTimeout = 5 * time.Second

func (b *Bus) publish(ctx context.Context, msg *nats.Msg, msgID string) (*jetstream.PubAck, error) {
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, PublishAttemptTimeout)
		ack, err := b.js.PublishMsg(actx, msg, jetstream.WithMsgID(msgID))
		cancel()
		if err != nil {
			if denied := b.denied(msg.Subject); denied != nil {
				return nil, denied
			}
		}
		if err == nil || ctx.Err() != nil || !retryable(err) {
			return ack, err
		}
		trace.SpanFromContext(ctx).AddEvent("publish retried", trace.WithAttributes(
			attribute.Int("attempt", attempt), attribute.String("error", err.Error())))
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(min(time.Duration(attempt)*100*time.Millisecond, time.Second)):
		}
	}
}

// retryable tells failures a new attempt can cure (an ack lost with a dead
// leader, a slow cluster) from ones it cannot (no stream stores the subject,
// a closed connection). No responders is not among them: nats.go already
// retries it briefly, and it mostly means the subject is not stored at all.
func retryable(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)
}

// ErrPermissionDenied is returned when the server refused a publish: the
// connection's user may not publish on the subject. No retry can cure it.
var ErrPermissionDenied = errors.New("bus: not permitted")

// denied reports the server's refusal of a publish on subject. The server
// drops such a message and says so asynchronously, so a JetStream publish
// only sees a timeout; the connection's last error tells them apart.
func (b *Bus) denied(subject string) error {
	le := b.nc.LastError()
	if le != nil && errors.Is(le, nats.ErrPermissionViolation) && strings.Contains(le.Error(), `"`+subject+`"`) {
		return Permanent(fmt.Errorf("%w: publish to %s: %w", ErrPermissionDenied, subject, le))
	}
	return nil
}

// PayloadType names the payload of ev, e.g. "feedloop.v1.Routed".
func PayloadType(ev *feedloopv1.Event) string {
	m := ev.ProtoReflect()
	od := m.Descriptor().Oneofs().ByName("payload")
	if fd := m.WhichOneof(od); fd != nil {
		return string(fd.Message().FullName())
	}
	return ""
}
