// Package accept is intake's one use case: take a feedback item from any
// transport, validate it, give it its deterministic id and publish
// feedback.received exactly once per (source, external_id).
package accept

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/intake/internal/validate"
)

// Sentinels the ports map to status codes.
var (
	// ErrInvalid: the item breaks a rule; resending it cannot help.
	ErrInvalid = errors.New("invalid feedback")
	// ErrUnavailable: the bus or Redis failed; the same item may be resent.
	ErrUnavailable = errors.New("intake unavailable")
)

// InvalidError carries the violations of a rejected item. It matches
// ErrInvalid with errors.Is.
type InvalidError struct{ Violations []validate.Violation }

// Invalid returns an InvalidError for vs.
func Invalid(vs []validate.Violation) error { return &InvalidError{Violations: vs} }

func (e *InvalidError) Error() string        { return "invalid feedback: " + validate.Join(e.Violations) }
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// Violations returns the violations err carries, if it is an InvalidError.
func Violations(err error) []validate.Violation {
	var ie *InvalidError
	if errors.As(err, &ie) {
		return ie.Violations
	}
	return nil
}

// Keys is the idempotency port: which (source, external_id) were accepted.
type Keys interface {
	Lookup(ctx context.Context, source, externalID string) (feedbackID string, found bool, err error)
	Remember(ctx context.Context, source, externalID, feedbackID string) error
}

// Publisher is the bus port.
type Publisher interface {
	Publish(ctx context.Context, subject string, ev *feedloopv1.Event) (*jetstream.PubAck, error)
}

// Result is the outcome of an accepted submission.
type Result struct {
	FeedbackID string
	// Duplicate is true when the item had been accepted before and nothing
	// new was published.
	Duplicate bool
}

// Acceptor accepts feedback.
type Acceptor struct {
	keys    Keys
	pub     Publisher
	log     *slog.Logger
	now     func() time.Time
	metrics *Metrics
}

// Option configures an Acceptor.
type Option func(*Acceptor)

// WithMetrics counts submissions on m.
func WithMetrics(m *Metrics) Option { return func(a *Acceptor) { a.metrics = m } }

// New returns an Acceptor. now is the clock (time.Now in production).
func New(keys Keys, pub Publisher, log *slog.Logger, now func() time.Time, opts ...Option) *Acceptor {
	a := &Acceptor{keys: keys, pub: pub, log: log, now: now}
	for _, o := range opts {
		o(a)
	}
	return a
}

// FeedbackID is the id of (source, externalID): deterministic, so every
// resubmission and every replica agrees on it without coordination.
func FeedbackID(source, externalID string) string {
	return bus.DeriveID("feedback", source, externalID)
}

// ReceivedEventID is the id of the feedback.received event of feedbackID:
// derived, so a republish is dropped by JetStream's duplicate window.
func ReceivedEventID(feedbackID string) string { return bus.DeriveID(feedbackID, "received") }

// Submit validates fb and publishes it as feedback.received unless it was
// accepted before. fb is not modified. Errors match ErrInvalid (with
// violations, see Violations) or ErrUnavailable.
//
// Order matters so that no item is ever lost: look the key up, publish,
// then set the key. A key therefore never claims an item whose event was
// not stored; a crash between publish and set leaves only a republish,
// which JetStream reports as a duplicate.
func (a *Acceptor) Submit(ctx context.Context, fb *feedloopv1.Feedback) (res Result, err error) {
	start := a.now()
	defer func() { a.metrics.submitted(ctx, fb.GetSource(), res, err, start, a.now()) }()
	span := trace.SpanFromContext(ctx)
	now := a.now().UTC()
	if vs := validate.Feedback(fb, now); len(vs) > 0 {
		return Result{}, Invalid(vs)
	}
	id := FeedbackID(fb.GetSource(), fb.GetExternalId())
	span.SetAttributes(
		attribute.String("feedloop.feedback_id", id),
		attribute.String("feedloop.source", fb.GetSource()),
		attribute.String("feedloop.external_id", fb.GetExternalId()))
	if known, found, err := a.keys.Lookup(ctx, fb.GetSource(), fb.GetExternalId()); err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	} else if found {
		// The answer to "why did my second submission not show up".
		span.AddEvent("resubmission ignored", trace.WithAttributes(attribute.String("feedloop.feedback_id", known)))
		if known != id {
			// Only a key written by another version of intake could differ;
			// the stored id is what the submitter was told.
			a.log.WarnContext(ctx, "intake: idempotency key holds another id", "source", fb.GetSource(), "external_id", fb.GetExternalId(), "stored", known, "derived", id)
		}
		a.log.InfoContext(ctx, "intake: duplicate submission", "feedback_id", known, "source", fb.GetSource(), "external_id", fb.GetExternalId())
		return Result{FeedbackID: known, Duplicate: true}, nil
	}

	out := proto.CloneOf(fb)
	out.Id = id
	out.ReceivedAt = timestamppb.New(now)
	if out.OccurredAt == nil {
		out.OccurredAt = out.ReceivedAt
	}
	ev := &feedloopv1.Event{
		Id:         ReceivedEventID(id),
		FeedbackId: id,
		OccurredAt: out.ReceivedAt,
		Payload: &feedloopv1.Event_Received{Received: &feedloopv1.Received{
			Feedback:    out,
			StatusToken: NewStatusToken(),
		}},
	}
	ack, err := a.pub.Publish(ctx, bus.SubjectReceived, ev)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err := a.keys.Remember(ctx, fb.GetSource(), fb.GetExternalId(), id); err != nil {
		// The event is stored, which is what counts; without the key a
		// resubmission within the duplicate window is still caught by
		// JetStream, later it republishes the same event id.
		a.log.WarnContext(ctx, "intake: event stored but idempotency key not set", "feedback_id", id, "err", err)
	}
	a.log.InfoContext(ctx, "intake: feedback accepted", "feedback_id", id, "source", fb.GetSource(), "external_id", fb.GetExternalId(), "duplicate", ack.Duplicate, "seq", ack.Sequence)
	return Result{FeedbackID: id, Duplicate: ack.Duplicate}, nil
}

// NewStatusToken returns the token of a customer's status page: 128 random
// bits, so a link cannot be guessed from a feedback id or another link. A
// republished event carries a different token, but it has the same event id
// and only the first one stored counts.
func NewStatusToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return hex.EncodeToString(b)
}
