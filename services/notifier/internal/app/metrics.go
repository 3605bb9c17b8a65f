package app

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/feedloop/feedloop/services/notifier/internal/steps"
)

// Results of one planned notification, the result label of
// feedloop_notifications_total.
const (
	ResultSent      = "sent"      // delivered now
	ResultDuplicate = "duplicate" // sent before for this step: not repeated
	ResultHeld      = "held"      // customer over the daily cap: goes in the digest
	ResultFailed    = "failed"    // the channel failed; retried
	ResultRejected  = "rejected"  // the channel refused it for good
	ResultSkipped   = "skipped"   // not sent at all (consent, no address, …)
)

// Metrics are the notifier's instruments:
//
//	feedloop_notifications_total{step,audience,channel,result}
//	feedloop_notification_send_duration_seconds{channel}
type Metrics struct {
	notifications metric.Int64Counter
	send          metric.Float64Histogram
}

// NewMetrics creates the instruments on mp.
func NewMetrics(mp metric.MeterProvider) *Metrics {
	m := mp.Meter("github.com/feedloop/feedloop/services/notifier")
	n, err := m.Int64Counter("feedloop.notifications", metric.WithUnit("{notification}"),
		metric.WithDescription("Notifications planned for a customer or team, by result."))
	if err != nil {
		otel.Handle(err)
	}
	s, err := m.Float64Histogram("feedloop.notification.send.duration", metric.WithUnit("s"),
		metric.WithDescription("Time a channel took to send one message (SMTP, webhook)."),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
	if err != nil {
		otel.Handle(err)
	}
	return &Metrics{notifications: n, send: s}
}

// count records one result and marks it on the handler's span, so "where
// did my message go" is answered from the trace.
func (m *Metrics) count(ctx context.Context, step string, audience steps.Audience, channel, result string, extra ...attribute.KeyValue) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		attrs := []attribute.KeyValue{
			attribute.String("feedloop.step", step),
			attribute.String("feedloop.audience", string(audience)),
			attribute.String("feedloop.channel", channel),
		}
		span.AddEvent("notification "+result, trace.WithAttributes(append(attrs, extra...)...))
	}
	if m == nil {
		return
	}
	m.notifications.Add(ctx, 1, metric.WithAttributeSet(cachedSet(resultKey{step: step, audience: string(audience), channel: channel, result: result})))
}

func (m *Metrics) sent(ctx context.Context, channel string, took time.Duration) {
	if m != nil {
		m.send.Record(ctx, took.Seconds(), metric.WithAttributeSet(cachedSet(resultKey{channel: channel, sendOnly: true})))
	}
}

// resultKey names one attribute set of the instruments; every part comes
// from a small fixed set (steps, audiences, channels, results), so the
// cache stays small.
type resultKey struct {
	step, audience, channel, result string
	// sendOnly: the set of the send histogram, the channel alone.
	sendOnly bool
}

// sets caches the attribute sets by resultKey: building one sorts and
// hashes its attributes, on every message otherwise.
var sets sync.Map

func cachedSet(k resultKey) attribute.Set {
	if s, ok := sets.Load(k); ok {
		return s.(attribute.Set)
	}
	var s attribute.Set
	if k.sendOnly {
		s = attribute.NewSet(attribute.String("channel", k.channel))
	} else {
		s = attribute.NewSet(attribute.String("step", k.step), attribute.String("audience", k.audience),
			attribute.String("channel", k.channel), attribute.String("result", k.result))
	}
	sets.Store(k, s)
	return s
}
