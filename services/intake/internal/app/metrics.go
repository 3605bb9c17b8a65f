package app

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Results of a submission, the result label of
// feedloop_intake_submissions_total.
const (
	ResultAccepted    = "accepted"    // new: feedback.received published
	ResultDuplicate   = "duplicate"   // accepted before: nothing new published
	ResultInvalid     = "invalid"     // rejected with violations
	ResultUnavailable = "unavailable" // bus or Redis down: the caller may resend
	ResultForbidden   = "forbidden"   // the key may not submit for the item's source
	// ResultUnauthenticated: no, an unknown, expired or revoked key. The
	// source label is empty: the caller is unknown.
	ResultUnauthenticated = "unauthenticated"
	ResultLimited         = "rate_limited" // refused by the source's rate limit
	// ResultLimitError: the limiter failed (Redis) and the submission was
	// admitted without a limit; the submission's own result is counted too.
	ResultLimitError = "rate_limit_error"
)

// Metrics are intake's instruments:
//
//	feedloop_intake_submissions_total{source,result}
//	feedloop_intake_submit_duration_seconds{result}
type Metrics struct {
	submissions metric.Int64Counter
	took        metric.Float64Histogram
}

// NewMetrics creates the instruments on mp.
func NewMetrics(mp metric.MeterProvider) *Metrics {
	m := mp.Meter("github.com/feedloop/feedloop/services/intake")
	s, err := m.Int64Counter("feedloop.intake.submissions", metric.WithUnit("{submission}"),
		metric.WithDescription("Feedback submissions over any transport, by source and result."))
	if err != nil {
		otel.Handle(err)
	}
	d, err := m.Float64Histogram("feedloop.intake.submit.duration", metric.WithUnit("s"),
		metric.WithDescription("Time to validate, deduplicate and publish one submission."),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	if err != nil {
		otel.Handle(err)
	}
	return &Metrics{submissions: s, took: d}
}

func (m *Metrics) submitted(ctx context.Context, source string, res Result, err error, start, end time.Time) {
	if m == nil {
		return
	}
	result := ResultAccepted
	switch {
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrForbidden):
		result = ResultInvalid
		if errors.Is(err, ErrForbidden) {
			result = ResultForbidden
		}
		// An invalid source is whatever the caller typed: keep the label set bounded.
		source = ""
	case err != nil:
		result = ResultUnavailable
	case res.Duplicate:
		result = ResultDuplicate
	}
	r := attribute.String("result", result)
	m.submissions.Add(ctx, 1, metric.WithAttributes(attribute.String("source", source), r))
	m.took.Record(ctx, end.Sub(start).Seconds(), metric.WithAttributes(r))
}

// count adds n submissions of source with result, for outcomes decided
// before Submit (rate limits).
func (m *Metrics) count(ctx context.Context, source, result string, n int) {
	if m == nil {
		return
	}
	m.submissions.Add(ctx, int64(n), metric.WithAttributes(attribute.String("source", source), attribute.String("result", result)))
}

// Unauthenticated counts a submission refused for its key, for the auth
// middleware.
func (m *Metrics) Unauthenticated(ctx context.Context) { m.count(ctx, "", ResultUnauthenticated, 1) }
