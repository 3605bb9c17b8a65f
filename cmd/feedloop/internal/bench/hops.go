package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/feedloop/feedloop/pkg/bus"
)

// Hops of an item's path in the latency phase, in order: each ends when
// the stage's event was stored on FEEDBACK (the server's timestamp), the
// last when the team webhook received the item.
const (
	HopIntake     = "intake"     // due at intake → feedback.received stored
	HopClassifier = "classifier" // received → feedback.classified stored
	HopRouter     = "router"     // classified → feedback.routed.<team> stored
	HopNotifier   = "notifier"   // routed → team webhook received
)

var hopOrder = []string{HopIntake, HopClassifier, HopRouter, HopNotifier}

// Percentiles of one hop, in ms.
type Percentiles struct {
	P50Ms float64 `json:"p50_ms"`
	P90Ms float64 `json:"p90_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}

// hopLatencies splits the path of every item t saw go all the way into
// its hops, from the stream's timestamps of the events from sequence
// from on, and returns each hop's percentiles: where a tail comes from.
func hopLatencies(ctx context.Context, b *bus.Bus, from uint64, t *tracker) (map[string]Percentiles, error) {
	ends := t.ends()
	if len(ends) == 0 {
		return nil, nil
	}
	stored, err := storedTimes(ctx, b, from)
	if err != nil {
		return nil, err
	}
	hists := map[string]*hdrhistogram.Histogram{}
	for _, h := range hopOrder {
		hists[h] = hdrhistogram.New(1, int64(5*time.Minute/time.Microsecond), 3)
	}
	for id, e := range ends {
		s, ok := stored[id]
		if !ok || s[0].IsZero() || s[1].IsZero() || s[2].IsZero() {
			continue
		}
		marks := []time.Time{e.sent, s[0], s[1], s[2], e.arrived}
		for i, h := range hopOrder {
			_ = hists[h].RecordValue(max(int64(marks[i+1].Sub(marks[i])/time.Microsecond), 1))
		}
	}
	out := map[string]Percentiles{}
	for h, hist := range hists {
		if hist.TotalCount() == 0 {
			continue
		}
		out[h] = Percentiles{
			P50Ms: usToMs(hist.ValueAtQuantile(50)), P90Ms: usToMs(hist.ValueAtQuantile(90)),
			P99Ms: usToMs(hist.ValueAtQuantile(99)), MaxMs: usToMs(hist.Max()),
		}
	}
	return out, nil
}

// feedbackStream is the FEEDBACK stream and its state now.
func feedbackStream(ctx context.Context, b *bus.Bus) (jetstream.Stream, jetstream.StreamState, error) {
	st, err := b.JetStream().Stream(ctx, bus.StreamFeedback)
	if err != nil {
		return nil, jetstream.StreamState{}, fmt.Errorf("bench: %w", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, jetstream.StreamState{}, fmt.Errorf("bench: %w", err)
	}
	return st, info.State, nil
}

// lastSeq is FEEDBACK's last sequence.
func lastSeq(ctx context.Context, b *bus.Bus) (uint64, error) {
	_, state, err := feedbackStream(ctx, b)
	return state.LastSeq, err
}

// storedTimes reads the received, classified and first routed event of
// every item from sequence from to the end of FEEDBACK, and returns when
// the server stored each, by feedback id.
func storedTimes(ctx context.Context, b *bus.Bus, from uint64) (map[string][3]time.Time, error) {
	st, state, err := feedbackStream(ctx, b)
	if err != nil {
		return nil, err
	}
	end := state.LastSeq
	if end < from {
		return nil, nil
	}
	c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{bus.SubjectReceived, bus.SubjectClassified, bus.AllRouted},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    from,
	})
	if err != nil {
		return nil, fmt.Errorf("bench: read the stream: %w", err)
	}
	out := map[string][3]time.Time{}
	for {
		batch, err := c.FetchNoWait(1000)
		if err != nil {
			return nil, fmt.Errorf("bench: read the stream: %w", err)
		}
		n := 0
		var seq uint64
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				return nil, fmt.Errorf("bench: read the stream: %w", err)
			}
			seq = md.Sequence.Stream
			id := m.Headers().Get(bus.HeaderFeedbackID)
			s := out[id]
			i := 2 // the consumer's filter leaves only feedback.routed.<team>
			switch m.Subject() {
			case bus.SubjectReceived:
				i = 0
			case bus.SubjectClassified:
				i = 1
			}
			if s[i].IsZero() || md.Timestamp.Before(s[i]) {
				s[i] = md.Timestamp
			}
			out[id] = s
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("bench: read the stream: %w", err)
		}
		// The filter skips the other subjects, so the end is the last
		// sequence seen at or past the stream's end, or an empty fetch.
		if n == 0 || seq >= end {
			return out, nil
		}
	}
}
