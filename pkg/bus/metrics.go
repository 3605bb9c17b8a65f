package bus

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Outcomes of a delivery, the outcome label of feedloop_messages_processed_total.
const (
	OutcomeOK         = "ok"          // handled and acked
	OutcomeRetry      = "retry"       // failed; redelivered after a backoff
	OutcomeDeadLetter = "dead_letter" // copied to feedback.dlq.<consumer> and terminated
)

// Metrics counts every delivery a consumer handles by subject and outcome
// and times the handler, so the pipeline's throughput, errors, dead letters
// and latency per stage come from one place. It runs inside the consumer
// span, so the measurements carry that span's trace id as exemplar.
//
//	feedloop_messages_processed_total{consumer,subject,outcome}
//	feedloop_message_handling_duration_seconds{consumer,outcome}
func Metrics(meter metric.Meter, consumer string) Middleware {
	processed, err := meter.Int64Counter("feedloop.messages.processed",
		metric.WithUnit("{message}"),
		metric.WithDescription("Messages handled by a consumer, by outcome: ok, retry or dead_letter."))
	if err != nil {
		otel.Handle(err)
	}
	took, err := meter.Float64Histogram("feedloop.message.handling.duration",
		metric.WithUnit("s"),
		metric.WithDescription("Time one delivery spent in its consumer's handler."),
		metric.WithExplicitBucketBoundaries(handlingBuckets...))
	if err != nil {
		otel.Handle(err)
	}
	// The attribute sets are built once per consumer, subject and outcome:
	// recording then allocates nothing.
	// (The option slices are made ahead too, else each call's variadic
	// slice escapes to the heap.)
	var took3 [numOutcomes][]metric.RecordOption
	for o := range took3 {
		took3[o] = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(
			attribute.String("consumer", consumer), attribute.String("outcome", outcomes[o])))}
	}
	bySubject := perSubject[[numOutcomes][]metric.AddOption]{build: func(subject string) *[numOutcomes][]metric.AddOption {
		var opts [numOutcomes][]metric.AddOption
		for o := range opts {
			opts[o] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(
				attribute.String("consumer", consumer), attribute.String("subject", subject), attribute.String("outcome", outcomes[o])))}
		}
		return &opts
	}}
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Msg) error {
			start := time.Now()
			err := next(ctx, m)
			outcome := outcomeOK
			switch {
			case errors.Is(err, errDeadLettered):
				outcome = outcomeDeadLetter
			case err != nil:
				outcome = outcomeRetry
			}
			processed.Add(ctx, 1, bySubject.get(m.Subject)[outcome]...)
			took.Record(ctx, time.Since(start).Seconds(), took3[outcome]...)
			return err
		}
	}
}

// Indexes of the outcomes, for the attribute sets built ahead.
const (
	outcomeOK = iota
	outcomeRetry
	outcomeDeadLetter
	numOutcomes
)

var outcomes = [numOutcomes]string{OutcomeOK, OutcomeRetry, OutcomeDeadLetter}

// perSubject caches what is built once per subject (attribute sets, span
// options). The map is copied on write, so looking up a known subject takes
// no lock and allocates nothing; subjects are few (one per stage, team or
// source), and past maxCachedSubjects a value is built per call instead of
// growing the cache without bound.
type perSubject[T any] struct {
	m     atomic.Pointer[map[string]*T]
	mu    sync.Mutex
	build func(subject string) *T
}

const maxCachedSubjects = 1024

func (c *perSubject[T]) get(subject string) *T {
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[subject]; ok {
			return v
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var old map[string]*T
	if p := c.m.Load(); p != nil {
		old = *p
	}
	if v, ok := old[subject]; ok {
		return v
	}
	v := c.build(subject)
	if len(old) >= maxCachedSubjects {
		return v
	}
	next := make(map[string]*T, len(old)+1)
	for k, e := range old {
		next[k] = e
	}
	next[subject] = v
	c.m.Store(&next)
	return v
}

// handlingBuckets are telemetry.HandlingBuckets; pkg/bus does not import
// telemetry (telemetry is set up by whoever owns the process).
var handlingBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}

// busMetrics are the bus's own instruments: publishes, and gauges observed
// at collection time (consumer lag, connection health).
type busMetrics struct {
	published metric.Int64Counter
	// publishedBy holds the attribute sets of published, by subject and result.
	publishedBy perSubject[[numPublishResults][]metric.AddOption]

	mu        sync.Mutex
	consumers map[string]*watched // by stream/durable, while Consume runs
}

// watched is a consumer whose lag is reported, and how many Consume calls
// of this process run it (replicas in one process share the figures).
type watched struct {
	c    jetstream.Consumer
	runs int
}

// Results of a publish, the result label of feedloop_messages_published_total.
const (
	publishStored    = "stored"
	publishDuplicate = "duplicate" // the stream's duplicate window dropped it
	publishFailed    = "error"
)

// Indexes of the publish results, for the attribute sets built ahead.
const (
	resultStored = iota
	resultDuplicate
	resultFailed
	numPublishResults
)

var publishResults = [numPublishResults]string{publishStored, publishDuplicate, publishFailed}

// newBusMetrics registers the bus's instruments on meter:
//
//	feedloop_messages_published_total{subject,result}
//	feedloop_consumer_pending{stream,consumer}      messages not yet delivered
//	feedloop_consumer_ack_pending{stream,consumer}  delivered, not yet acked
//	feedloop_consumer_redelivered{stream,consumer}  redelivered, not yet acked
//	feedloop_nats_connected                         1 while connected
//	feedloop_nats_reconnects_total
//
// Every replica sharing a durable reports the same lag (it is the server's
// view), so dashboards take max over instances.
func newBusMetrics(meter metric.Meter, nc *nats.Conn) *busMetrics {
	bm := &busMetrics{consumers: map[string]*watched{}}
	bm.publishedBy.build = func(subject string) *[numPublishResults][]metric.AddOption {
		var opts [numPublishResults][]metric.AddOption
		for r := range opts {
			opts[r] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(
				attribute.String("subject", subject), attribute.String("result", publishResults[r])))}
		}
		return &opts
	}
	var err error
	bm.published, err = meter.Int64Counter("feedloop.messages.published",
		metric.WithUnit("{message}"),
		metric.WithDescription("Messages published, by result: stored, duplicate (dropped by the stream's duplicate window) or error."))
	if err != nil {
		otel.Handle(err)
	}
	pending, err := meter.Int64ObservableGauge("feedloop.consumer.pending",
		metric.WithUnit("{message}"), metric.WithDescription("Messages of a durable consumer's stream not yet delivered to it."))
	if err != nil {
		otel.Handle(err)
	}
	ackPending, err := meter.Int64ObservableGauge("feedloop.consumer.ack_pending",
		metric.WithUnit("{message}"), metric.WithDescription("Messages delivered to a durable consumer and not yet acknowledged."))
	if err != nil {
		otel.Handle(err)
	}
	redelivered, err := meter.Int64ObservableGauge("feedloop.consumer.redelivered",
		metric.WithUnit("{message}"), metric.WithDescription("Messages redelivered to a durable consumer and not yet acknowledged."))
	if err != nil {
		otel.Handle(err)
	}
	connected, err := meter.Int64ObservableGauge("feedloop.nats.connected",
		metric.WithDescription("1 while the NATS connection is up, else 0."))
	if err != nil {
		otel.Handle(err)
	}
	reconnects, err := meter.Int64ObservableCounter("feedloop.nats.reconnects",
		metric.WithUnit("{reconnect}"), metric.WithDescription("Times the NATS connection was re-established."))
	if err != nil {
		otel.Handle(err)
	}
	_, err = meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		if nc.IsClosed() {
			return nil // a closed bus of this process reports nothing
		}
		up := int64(0)
		if nc.Status() == nats.CONNECTED {
			up = 1
		}
		o.ObserveInt64(connected, up)
		o.ObserveInt64(reconnects, int64(nc.Stats().Reconnects))
		bm.mu.Lock()
		cons := make([]jetstream.Consumer, 0, len(bm.consumers))
		for _, w := range bm.consumers {
			cons = append(cons, w.c)
		}
		bm.mu.Unlock()
		for _, c := range cons {
			ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
			info, err := c.Info(ictx)
			cancel()
			if err != nil {
				continue // no figure beats a stale one; the scrape goes on
			}
			attrs := metric.WithAttributes(attribute.String("stream", info.Stream), attribute.String("consumer", info.Name))
			o.ObserveInt64(pending, int64(info.NumPending), attrs)
			o.ObserveInt64(ackPending, int64(info.NumAckPending), attrs)
			o.ObserveInt64(redelivered, int64(info.NumRedelivered), attrs)
		}
		return nil
	}, pending, ackPending, redelivered, connected, reconnects)
	if err != nil {
		otel.Handle(err)
	}
	return bm
}

// watch reports c's lag until the returned func is called.
func (bm *busMetrics) watch(stream, durable string, c jetstream.Consumer) (unwatch func()) {
	key := stream + "/" + durable
	bm.mu.Lock()
	w := bm.consumers[key]
	if w == nil {
		w = &watched{c: c}
		bm.consumers[key] = w
	}
	w.runs++
	bm.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			bm.mu.Lock()
			defer bm.mu.Unlock()
			if w.runs--; w.runs == 0 {
				delete(bm.consumers, key)
			}
		})
	}
}

func (bm *busMetrics) countPublish(ctx context.Context, subject string, ack *jetstream.PubAck, err error) {
	result := resultStored
	switch {
	case err != nil:
		result = resultFailed
	case ack != nil && ack.Duplicate:
		result = resultDuplicate
	}
	bm.published.Add(ctx, 1, bm.publishedBy.get(subject)[result]...)
}
