// Package app holds the router's use cases, each one input to its effects
// whatever transport carried it: routing a classified event (Routing), a
// customer's answer to an item (Answers) and a team's action on an item
// (Team). The ports (natsport, grpcport, httpport) decode their input and
// call these; the rules themselves are the concepts' (assign, workflow).
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/feedloop/feedloop/pkg/bus"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router/internal/assign"
	"github.com/feedloop/feedloop/services/router/internal/projection"
	"github.com/feedloop/feedloop/services/router/routing"
)

// ErrUnroutable marks an event no retry can route: not a well-formed
// Classified event.
var ErrUnroutable = errors.New("unroutable event")

// Routing is the use case of a classified event: it becomes one routed
// event per team the routing tree gives it to, or, when it answers an
// earlier item, goes to Answers instead.
type Routing struct {
	Bus *bus.Bus
	// Tree is the routing tree in force at the time.
	Tree func() *routing.Tree
	// Answers takes events that answer an earlier item (in_reply_to); nil
	// routes every event.
	Answers *Answers
	// Applied is told of every routed event once it is stored, so the read
	// model shows the item to its teams at once, and first of the
	// classified event routed (stored too: it came off the stream) and of
	// the received event it came from (projection.ReceivedOf), so all are
	// folded into the item in one read and one write, and the projector's
	// own deliveries of those two find nothing left to do but the received
	// event's trace; nil skips that.
	Applied func(ctx context.Context, ev *feedloopv1.Event)
	Log     *slog.Logger
}

// Route routes one classified event with the tree current at the time. An
// event that is not a well-formed Classified event is an ErrUnroutable
// error; a failed publish is an error to retry on: the events stored before
// it are published again under the same ids, which the stream drops as
// duplicates.
func (r *Routing) Route(ctx context.Context, in *feedloopv1.Event) error {
	if r.Answers != nil && in.GetClassified().GetFeedback().GetInReplyTo() != "" {
		done, err := r.Answers.Answer(ctx, in)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
	outs, err := assign.Route(in, r.Tree())
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnroutable, err)
	}
	// All at once, acked before the input is: a fan-out waits for one
	// round of acks, not one per team.
	evs := make([]bus.Outgoing, len(outs))
	for i, o := range outs {
		evs[i] = bus.Outgoing{Subject: o.Subject, Event: o.Event}
	}
	if acks, err := r.Bus.PublishAll(ctx, evs); err != nil {
		for i, ack := range acks {
			if ack == nil {
				return fmt.Errorf("route %s to %s: %w", in.GetFeedbackId(), outs[i].Match.Team, err)
			}
		}
		return fmt.Errorf("route %s: %w", in.GetFeedbackId(), err)
	}
	if r.Applied != nil {
		if rc := projection.ReceivedOf(in); rc != nil {
			r.Applied(ctx, rc)
		}
		r.Applied(ctx, in)
		for _, o := range outs {
			r.Applied(ctx, o.Event)
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
	r.Log.InfoContext(ctx, "feedback routed", "feedback_id", in.GetFeedbackId(), "event_id", in.GetId(), "teams", teams, "routes", routes)
	return nil
}
