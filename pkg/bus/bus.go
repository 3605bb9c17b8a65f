package bus

import (
	"cmp"
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
	// sendShapes are the publish spans' names and static attributes.
	sendShapes perSubject[spanShape]
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

// WithTracerProvider sets where the bus's spans go, publish and consume
// (default: the global tracer provider): a process running several
// services gives each service's bus that service's provider.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(b *Bus) { b.tracer = tp.Tracer(instrumentationName) }
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
// providers (unless options say otherwise) and propagator, so telemetry
// set-up must run first.
func New(nc *nats.Conn, opts ...Option) (*Bus, error) {
	// An async publish (PublishAll) whose ack is lost fails after one
	// attempt's time, as a sync one does, and is then retried.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(PublishAttemptTimeout))
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
	b.sendShapes.build = func(subject string) *spanShape {
		return newSpanShape("send "+subject, trace.SpanKindProducer,
			messagingSystemNATS, semconv.MessagingDestinationName(subject), semconv.MessagingOperationTypeSend)
	}
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
	data, h, err := encode(subject, ev)
	if err != nil {
		return nil, err
	}
	return b.PublishData(ctx, subject, ev.GetId(), data, h)
}

// encode is ev's payload and headers.
func encode(subject string, ev *feedloopv1.Event) ([]byte, nats.Header, error) {
	if ev.GetId() == "" {
		return nil, nil, fmt.Errorf("bus: publish %s: event has no id", subject)
	}
	data, err := proto.Marshal(ev)
	if err != nil {
		return nil, nil, fmt.Errorf("bus: marshal event %s: %w", ev.GetId(), err)
	}
	// Sized for the headers set here, the msg id and the trace context.
	h := make(nats.Header, 5)
	h.Set(HeaderPayloadType, PayloadType(ev))
	if ev.GetFeedbackId() != "" {
		h.Set(HeaderFeedbackID, ev.GetFeedbackId())
	}
	return data, h, nil
}

// PublishData publishes raw data with msgID as Nats-Msg-Id and extra headers,
// injecting the trace context of ctx, and waits for the PubAck.
func (b *Bus) PublishData(ctx context.Context, subject, msgID string, data []byte, h nats.Header) (*jetstream.PubAck, error) {
	ctx, span, msg := b.startSend(ctx, subject, msgID, data, h)
	defer span.End()
	ack, err := b.publish(ctx, msg, msgID)
	return b.sent(ctx, span, msg, msgID, ack, err)
}

// startSend starts the producer span of one message and injects its
// context into the message's headers.
func (b *Bus) startSend(ctx context.Context, subject, msgID string, data []byte, h nats.Header) (context.Context, trace.Span, *nats.Msg) {
	shape := b.sendShapes.get(subject)
	ctx, span := b.tracer.Start(ctx, shape.name, shape.opts...)
	if span.IsRecording() {
		span.SetAttributes(semconv.MessagingMessageID(msgID))
	}
	if h == nil {
		h = nats.Header{}
	}
	b.propagator.Inject(ctx, HeaderCarrier(h))
	return ctx, span, &nats.Msg{Subject: subject, Data: data, Header: h}
}

// sent counts and records the outcome of publishing msg.
func (b *Bus) sent(ctx context.Context, span trace.Span, msg *nats.Msg, msgID string, ack *jetstream.PubAck, err error) (*jetstream.PubAck, error) {
	b.metrics.countPublish(ctx, msg.Subject, ack, err)
	if err != nil {
		span.RecordError(err)
		return nil, fmt.Errorf("%w: %s: %w", ErrNotStored, msg.Subject, err)
	}
	if ack.Duplicate {
		span.AddEvent("duplicate dropped by stream", trace.WithAttributes(attribute.String("messaging.message.id", msgID)))
	}
	return ack, nil
}

// Outgoing is one event of PublishAll.
type Outgoing struct {
	Subject string
	Event   *feedloopv1.Event
}

// MaxInFlight bounds the publishes of one PublishAll awaiting their acks.
const MaxInFlight = 64

// PublishAll publishes every event as Publish does (same ids, headers,
// spans and metrics), with up to MaxInFlight of them awaiting their acks at
// once instead of one after the other, and returns once all are stored, or
// with the first error once every publish has settled. A publish whose ack
// is lost or times out is retried synchronously under the same id, as
// Publish retries; after an error the caller may publish all again, the
// stored ones are dropped as duplicates.
func (b *Bus) PublishAll(ctx context.Context, evs []Outgoing) ([]*jetstream.PubAck, error) {
	acks := make([]*jetstream.PubAck, len(evs))
	if len(evs) == 1 {
		ack, err := b.Publish(ctx, evs[0].Subject, evs[0].Event)
		acks[0] = ack
		return acks, err
	}
	type inFlight struct {
		i    int
		ctx  context.Context
		span trace.Span
		msg  *nats.Msg
		id   string
		f    jetstream.PubAckFuture
	}
	var (
		first   error
		pending = make([]inFlight, 0, min(len(evs), MaxInFlight))
	)
	settle := func(p inFlight) {
		ack, err := b.await(p.ctx, p.f, p.msg, p.id)
		acks[p.i], err = b.sent(p.ctx, p.span, p.msg, p.id, ack, err)
		p.span.End()
		if err != nil && first == nil {
			first = err
		}
	}
	for i, o := range evs {
		data, h, err := encode(o.Subject, o.Event)
		if err != nil {
			first = cmp.Or(first, err)
			break
		}
		if len(pending) == cap(pending) {
			settle(pending[0])
			pending = pending[1:]
		}
		p := inFlight{i: i, id: o.Event.GetId()}
		p.ctx, p.span, p.msg = b.startSend(ctx, o.Subject, p.id, data, h)
		// An error here (the connection is closed, too many publishes
		// stalled) leaves f nil: await then publishes synchronously.
		p.f, _ = b.js.PublishMsgAsync(p.msg, jetstream.WithMsgID(p.id))
		pending = append(pending, p)
	}
	for _, p := range pending {
		settle(p)
	}
	return acks, first
}

// await waits for the ack of an async publish. A publish that failed in a
// way a new attempt can cure (an ack lost or late, a stall) is made again
// synchronously, with Publish's retries, under the same id.
func (b *Bus) await(ctx context.Context, f jetstream.PubAckFuture, msg *nats.Msg, msgID string) (*jetstream.PubAck, error) {
	if f != nil {
		select {
		case ack := <-f.Ok():
			return ack, nil
		case err := <-f.Err():
			if denied := b.denied(msg.Subject); denied != nil {
				return nil, denied
			}
			if !errors.Is(err, jetstream.ErrAsyncPublishTimeout) && !retryable(err) {
				return nil, err
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return b.publish(ctx, msg, msgID)
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
