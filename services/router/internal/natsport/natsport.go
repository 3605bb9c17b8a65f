// Package natsport is the router's NATS port: it takes feedback.classified
// messages from the bus and publishes the routed events the routing tree
// calls for.
package natsport

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/feedloop/feedloop/pkg/bus"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router/internal/assign"
	"github.com/feedloop/feedloop/services/router/routing"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Durable is the router's consumer name; its dead letters go to
// feedback.dlq.router.
const Durable = bus.ConsumerRouter

// Config is the durable consumer of feedback.classified.
func Config(concurrency int) bus.ConsumerConfig {
	return bus.ConsumerConfig{
		Stream:         bus.StreamFeedback,
		Durable:        Durable,
		FilterSubjects: []string{bus.SubjectClassified},
		Concurrency:    concurrency,
	}
}

// Answers takes a classified event that answers an earlier item (in_reply_to)
// and reports whether it did; nil routes every event.
type Answers func(ctx context.Context, in *feedloopv1.Event) (bool, error)

// Applied is told of every routed event once it is stored, so the read model
// shows the item to its teams at once; nil skips that.
type Applied func(ctx context.Context, ev *feedloopv1.Event)

// Handler routes one classified event with the tree current at the time.
// A message that is not a well-formed Classified event is dead-lettered at
// once; a failed publish is retried, and the events stored before it are
// published again under the same ids, which the stream drops as duplicates.
func Handler(b *bus.Bus, tree func() *routing.Tree, answers Answers, applied Applied, log *slog.Logger) bus.Handler {
	return func(ctx context.Context, m *bus.Msg) error {
		in, err := m.Event()
		if err != nil {
			return err // permanent already
		}
		if answers != nil && in.GetClassified().GetFeedback().GetInReplyTo() != "" {
			done, err := answers(ctx, in)
			if err != nil {
				return err
			}
			if done {
				return nil
			}
		}
		outs, err := assign.Route(in, tree())
		if err != nil {
			return bus.Permanent(err)
		}
		// All at once, acked before the input is: a fan-out waits for one
		// round of acks, not one per team.
		evs := make([]bus.Outgoing, len(outs))
		for i, o := range outs {
			evs[i] = bus.Outgoing{Subject: o.Subject, Event: o.Event}
		}
		if acks, err := b.PublishAll(ctx, evs); err != nil {
			for i, ack := range acks {
				if ack == nil {
					return fmt.Errorf("route %s to %s: %w", in.GetFeedbackId(), outs[i].Match.Team, err)
				}
			}
			return fmt.Errorf("route %s: %w", in.GetFeedbackId(), err)
		}
		if applied != nil {
			for _, o := range outs {
				applied(ctx, o.Event)
			}
		}
		teams := make([]string, len(outs))
		routes := make([]string, len(outs))
		for i, o := range outs {
			teams[i], routes[i] = o.Match.Team, o.Match.Route
		}
		trace.SpanFromContext(ctx).SetAttributes(
			attribute.String("feedloop.feedback_id", in.GetFeedbackId()),
			attribute.StringSlice("feedloop.teams", teams),
			attribute.StringSlice("feedloop.routes", routes))
		log.InfoContext(ctx, "feedback routed", "feedback_id", in.GetFeedbackId(), "event_id", in.GetId(), "teams", teams, "routes", routes)
		return nil
	}
}
