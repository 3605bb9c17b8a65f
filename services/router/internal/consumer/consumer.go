// Package consumer is the router's event port: it handles
// feedback.classified messages from the bus and publishes the routed
// events the routing tree calls for.
package consumer

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/services/router/internal/assign"
	"github.com/feedloop/feedloop/services/router/routing"
)

// Durable is the router's consumer name; its dead letters go to
// feedback.dlq.router.
const Durable = "router"

// Config is the durable consumer of feedback.classified.
func Config(concurrency int) bus.ConsumerConfig {
	return bus.ConsumerConfig{
		Stream:         bus.StreamFeedback,
		Durable:        Durable,
		FilterSubjects: []string{bus.SubjectClassified},
		Concurrency:    concurrency,
	}
}

// Handler routes one classified event with the tree current at the time.
// A message that is not a well-formed Classified event is dead-lettered at
// once; a failed publish is retried, and the events published before it are
// published again under the same ids, which the stream drops as duplicates.
func Handler(b *bus.Bus, tree func() *routing.Tree, log *slog.Logger) bus.Handler {
	return func(ctx context.Context, m *bus.Msg) error {
		in, err := m.Event()
		if err != nil {
			return err // permanent already
		}
		outs, err := assign.Route(in, tree())
		if err != nil {
			return bus.Permanent(err)
		}
		for _, o := range outs {
			if _, err := b.Publish(ctx, o.Subject, o.Event); err != nil {
				return fmt.Errorf("route %s to %s: %w", in.GetFeedbackId(), o.Match.Team, err)
			}
		}
		teams := make([]string, len(outs))
		routes := make([]string, len(outs))
		for i, o := range outs {
			teams[i], routes[i] = o.Match.Team, o.Match.Route
		}
		log.InfoContext(ctx, "feedback routed", "feedback_id", in.GetFeedbackId(), "event_id", in.GetId(), "teams", teams, "routes", routes)
		return nil
	}
}
