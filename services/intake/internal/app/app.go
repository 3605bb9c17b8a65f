// Package app is intake's one use case: take a feedback item from any
// transport, validate it, give it its deterministic id and publish
// feedback.received exactly once per (source, external_id).
package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/intake/internal/auth"
	"github.com/feedloop/feedloop/services/intake/internal/idem"
	"github.com/feedloop/feedloop/services/intake/internal/ratelimit"
	"github.com/feedloop/feedloop/services/intake/validate"
)

// Sentinels the ports map to status codes.
var (
	// ErrInvalid: the item breaks a rule; resending it cannot help.
	ErrInvalid = errors.New("invalid feedback")
	// ErrUnavailable: the bus or Redis failed; the same item may be resent.
	ErrUnavailable = errors.New("intake unavailable")
	// ErrForbidden: the caller's key may not submit for the item's source.
	ErrForbidden = errors.New("permission denied")
	// ErrLimited: the source used up its rate limit; resend after the delay.
	ErrLimited = errors.New("rate limit exceeded")
)

// ForbiddenError is a submission for a source the caller's key does not
// cover. It matches ErrForbidden and names the field at fault.
type ForbiddenError struct{ Violation validate.Violation }

func (e *ForbiddenError) Error() string        { return "permission denied: " + e.Violation.String() }
func (e *ForbiddenError) Is(target error) bool { return target == ErrForbidden }

// LimitedError is a refusal by the rate limiter. It matches ErrLimited.
type LimitedError struct {
	Source string
	// RetryAfter is when the same request would be allowed; 0 when it never
	// would, because it asks for more than the burst (N > Burst).
	RetryAfter time.Duration
	N, Burst   int
}

func (e *LimitedError) Error() string {
	if e.RetryAfter <= 0 {
		return fmt.Sprintf("rate limit exceeded: source %q may submit at most %d items at once (its burst), got %d: split the batch", e.Source, e.Burst, e.N)
	}
	return fmt.Sprintf("rate limit exceeded: source %q may submit again in %s", e.Source, e.RetryAfter.Round(time.Millisecond))
}
func (e *LimitedError) Is(target error) bool { return target == ErrLimited }

// RetryAfter returns the delay a LimitedError carries, if err is one.
func RetryAfter(err error) (time.Duration, bool) {
	var le *LimitedError
	if errors.As(err, &le) {
		return le.RetryAfter, true
	}
	return 0, false
}

// Forbidden returns the violation a ForbiddenError carries, if err is one.
func Forbidden(err error) (validate.Violation, bool) {
	var fe *ForbiddenError
	if errors.As(err, &fe) {
		return fe.Violation, true
	}
	return validate.Violation{}, false
}

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

// Limiter is the rate limit port: Allow takes n units of source's budget,
// or none and says how long until n would be allowed.
type Limiter interface {
	Allow(ctx context.Context, source string, n int) (ratelimit.Decision, error)
}

// LimitLookup is a Limiter that also answers Keys.Lookup of an item in
// the same round trip as its rate limit (one Redis pipeline), for
// AdmitSubmit. It must read the keys Keys writes.
type LimitLookup interface {
	Limiter
	// AllowLookup is Allow(budget, n) and the lookup of (source,
	// externalID); err is the limiter's, the lookup's is in the idem.Prefetch.
	AllowLookup(ctx context.Context, budget string, n int, source, externalID string) (ratelimit.Decision, idem.Prefetch, error)
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
	limiter Limiter
	// limiterDown is set while the limiter fails, so the log says so once
	// per outage rather than once per submission.
	limiterDown atomic.Bool
}

// Option configures an Acceptor.
type Option func(*Acceptor)

// WithMetrics counts submissions on m.
func WithMetrics(m *Metrics) Option { return func(a *Acceptor) { a.metrics = m } }

// WithLimiter applies l in Admit; without it Admit allows everything.
func WithLimiter(l Limiter) Option { return func(a *Acceptor) { a.limiter = l } }

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
// violations, see Violations), ErrForbidden (the authenticated caller's key
// is for another source, see Forbidden) or ErrUnavailable.
//
// Order matters so that no item is ever lost: look the key up, publish,
// then set the key. A key therefore never claims an item whose event was
// not stored; a crash between publish and set leaves only a republish,
// which JetStream reports as a duplicate.
func (a *Acceptor) Submit(ctx context.Context, fb *feedloopv1.Feedback) (res Result, err error) {
	return a.submit(ctx, fb, a.now(), nil)
}

// AdmitSubmit is Admit of one unit of fb's budget (see Budget), then
// Submit: what a single-item transport does. When the limiter can answer
// the idempotency lookup too (LimitLookup), both go in one round trip;
// the lookup's answer is used only once fb is admitted and valid, so the
// outcome is that of Admit then Submit.
func (a *Acceptor) AdmitSubmit(ctx context.Context, fb *feedloopv1.Feedback) (Result, error) {
	budget := Budget(ctx, fb.GetSource())
	ll, ok := a.limiter.(LimitLookup)
	// An item whose key cannot be looked up is refused by validation
	// before any lookup: it takes the plain path.
	if !ok || !a.limits(budget, 1) || !bus.ValidToken(fb.GetSource()) || fb.GetExternalId() == "" {
		if err := a.Admit(ctx, budget, 1); err != nil {
			return Result{}, err
		}
		return a.Submit(ctx, fb)
	}
	start := a.now()
	d, pre, err := ll.AllowLookup(ctx, budget, 1, fb.GetSource(), fb.GetExternalId())
	if err := a.decide(ctx, budget, 1, d, err); err != nil {
		return Result{}, err
	}
	return a.submit(ctx, fb, start, &pre)
}

// submit is Submit, with the lookup's answer taken from pre when it was
// made ahead; start is when the submission's handling began.
func (a *Acceptor) submit(ctx context.Context, fb *feedloopv1.Feedback, start time.Time, pre *idem.Prefetch) (res Result, err error) {
	defer func() { a.metrics.submitted(ctx, fb.GetSource(), res, err, start, a.now()) }()
	span := trace.SpanFromContext(ctx)
	now := a.now().UTC()
	if err := authorize(ctx, fb.GetSource()); err != nil {
		return Result{}, err
	}
	if vs := validate.Feedback(fb, now); len(vs) > 0 {
		return Result{}, Invalid(vs)
	}
	id := FeedbackID(fb.GetSource(), fb.GetExternalId())
	span.SetAttributes(
		attribute.String("feedloop.feedback_id", id),
		attribute.String("feedloop.source", fb.GetSource()),
		attribute.String("feedloop.external_id", fb.GetExternalId()))
	known, found, err := a.lookup(ctx, fb, pre)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if found {
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

func (a *Acceptor) lookup(ctx context.Context, fb *feedloopv1.Feedback, pre *idem.Prefetch) (string, bool, error) {
	if pre != nil {
		return pre.FeedbackID, pre.Found, pre.Err
	}
	return a.keys.Lookup(ctx, fb.GetSource(), fb.GetExternalId())
}

// authorize refuses an item whose source is not the authenticated caller's.
// An empty source is left to validation ("is required").
func authorize(ctx context.Context, source string) error {
	c, ok := auth.CallerFrom(ctx)
	if !ok || source == "" || source == c.Source {
		return nil
	}
	return &ForbiddenError{Violation: validate.Violation{
		Field:       validate.Prefix + ".source",
		Description: fmt.Sprintf("the API key %q may only submit for source %q, got %q", c.Key, c.Source, clip(source)),
	}}
}

// Budget is the source whose rate limit a submission of an item from
// source uses: the authenticated caller's own (so a key never spends
// another source's budget, whatever it claims), else the item's.
func Budget(ctx context.Context, source string) string {
	if c, ok := auth.CallerFrom(ctx); ok {
		return c.Source
	}
	return source
}

// Admit takes n units of source's rate limit, or refuses with a
// LimitedError (ErrLimited) carrying the delay after which the same request
// would pass. A source that is not a valid name is admitted: validation
// refuses the item, and the limiter keys stay bounded to real sources.
//
// When the limiter itself fails (Redis unreachable), Admit fails open:
// limits protect the pipeline, they are not worth losing feedback for. The
// failure is counted (result rate_limit_error) and logged once per outage.
func (a *Acceptor) Admit(ctx context.Context, source string, n int) error {
	if !a.limits(source, n) {
		return nil
	}
	d, err := a.limiter.Allow(ctx, source, n)
	return a.decide(ctx, source, n, d, err)
}

// limits reports whether Admit asks the limiter about n of source.
func (a *Acceptor) limits(source string, n int) bool {
	return a.limiter != nil && n > 0 && bus.ValidToken(source)
}

// decide is Admit's answer to the limiter's d and err.
func (a *Acceptor) decide(ctx context.Context, source string, n int, d ratelimit.Decision, err error) error {
	switch {
	case err != nil:
		a.metrics.count(ctx, source, ResultLimitError, n)
		if !a.limiterDown.Swap(true) {
			a.log.WarnContext(ctx, "intake: rate limiter unavailable; admitting submissions without limit until it is back", "err", err)
		}
		return nil
	case a.limiterDown.Swap(false):
		a.log.InfoContext(ctx, "intake: rate limiter back")
	}
	if !d.Allowed {
		a.metrics.count(ctx, source, ResultLimited, n)
		le := &LimitedError{Source: source, RetryAfter: d.RetryAfter, N: n, Burst: d.Burst}
		if n > d.Burst {
			le.RetryAfter = 0
		}
		return le
	}
	return nil
}

func clip(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
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
