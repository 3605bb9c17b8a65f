package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/feedloop/feedloop/pkg/bus"
)

// Flow is what one item costs the bus in a phase: the events stored on
// FEEDBACK, the deliveries to durable consumers (redeliveries included) and
// the mean stored event size. It tells a ceiling whose event flow differs
// from the pipeline's from one that matches it.
type Flow struct {
	WritesPerItem     float64 `json:"writes_per_item"`
	DeliveriesPerItem float64 `json:"deliveries_per_item"`
	EventBytes        float64 `json:"event_bytes"`
}

// measureFlow reads the stream and the durables' delivery counters after
// items items went through a fresh stream.
func measureFlow(ctx context.Context, b *bus.Bus, durables []string, items int) Flow {
	var f Flow
	st, err := b.JetStream().Stream(ctx, bus.StreamFeedback)
	if err != nil {
		return f
	}
	info, err := st.Info(ctx)
	if err != nil || info.State.Msgs == 0 || items == 0 {
		return f
	}
	f.WritesPerItem = float64(info.State.Msgs) / float64(items)
	f.EventBytes = float64(info.State.Bytes) / float64(info.State.Msgs)
	var delivered uint64
	for _, d := range durables {
		c, err := b.JetStream().Consumer(ctx, bus.StreamFeedback, d)
		if err != nil {
			continue
		}
		if ci, err := c.Info(ctx); err == nil {
			delivered += ci.Delivered.Consumer
		}
	}
	f.DeliveriesPerItem = float64(delivered) / float64(items)
	return f
}

// settle waits until no durable consumer of durables has a message pending
// or unacked: the backlog a phase left (the projector folds every event)
// must not be measured by the next one.
func settle(ctx context.Context, b *bus.Bus, durables []string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		busy := ""
		for _, d := range durables {
			c, err := b.JetStream().Consumer(ctx, bus.StreamFeedback, d)
			if err != nil {
				busy = d
				break
			}
			info, err := c.Info(ctx)
			if err != nil || info.NumPending > 0 || info.NumAckPending > 0 {
				busy = d
				break
			}
		}
		if busy == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bench: consumer %s still busy after %s", busy, timeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
