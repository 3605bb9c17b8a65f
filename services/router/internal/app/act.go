package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/feedloop/feedloop/pkg/bus"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router/internal/itemlock"
	"github.com/feedloop/feedloop/services/router/internal/tracelink"
	"github.com/feedloop/feedloop/services/router/internal/workflow"
)

// ErrNotFound is the error of an action on an item the read model does not
// know.
var ErrNotFound = errors.New("item not found")

// RefusedError is workflow.Decide's refusal of an action (a field error, an
// illegal transition, a team the item is not assigned to): the caller's to
// correct, not to retry.
type RefusedError struct{ Err error }

func (e *RefusedError) Error() string { return e.Err.Error() }
func (e *RefusedError) Unwrap() error { return e.Err }

// Team is the use case of a team's action on an item (acknowledge, plan,
// resolve, decline, reroute, comment): under the item's lock, package
// workflow decides on the item as the read model has it, the resulting
// events are published and folded into the read model at once, so the
// caller reads its own write.
type Team struct {
	Store Store
	// NotFound reports whether a Store error means the item does not exist.
	NotFound func(error) bool
	Lock     *itemlock.Locker
	Bus      *bus.Bus
	// Teams are the teams that exist (the routing tree's).
	Teams func() []string
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	Log *slog.Logger
	// Traces finds items' traces, so an action's trace links to its
	// item's; nil links nothing.
	Traces tracelink.Traces
	// SLA is told of every event an action publishes at once, so an
	// acknowledgement just before the deadline stops the timer even while
	// the projector lags; nil leaves it to the projector.
	SLA interface {
		Apply(ctx context.Context, ev *feedloopv1.Event) error
	}
}

// Acted is what an action did.
type Acted struct {
	// Events are the events published, in order.
	Events []workflow.Out
	// Assignment is the team's share of the item as it now is.
	Assignment *feedloopv1.AssignmentState
}

// Act runs cmd, whose Team and Actor the caller has authenticated, on item
// id. Its errors: itemlock.ErrBusy while another action holds the item,
// ErrNotFound, a *RefusedError from the workflow; any other is the read
// model's or the bus's, worth a retry.
func (t *Team) Act(ctx context.Context, id string, cmd workflow.Command) (Acted, error) {
	unlock, err := t.Lock.Lock(ctx, id)
	if err != nil {
		return Acted{}, err
	}
	// The lock is what keeps two actions from passing the same state check:
	// the work under it must end before it expires, and if the read model
	// could not be told of the new state, the lock is left to expire so no
	// action decides on the stale state meanwhile.
	release := true
	defer func() {
		if release {
			unlock()
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, max(t.Lock.TTL()-2*time.Second, t.Lock.TTL()/2))
	defer cancel()
	tracelink.Item(ctx, t.Traces, id)
	item, err := t.Store.Item(ctx, id)
	switch {
	case err == nil:
	case t.NotFound(err):
		return Acted{}, fmt.Errorf("feedback %s: %w", id, ErrNotFound)
	default:
		return Acted{}, err
	}
	now := time.Now
	if t.Now != nil {
		now = t.Now
	}
	cmd.Now, cmd.EventID = now(), bus.NewID()
	outs, err := workflow.Decide(item, cmd, t.known)
	if err != nil {
		return Acted{}, &RefusedError{err}
	}
	for _, o := range outs {
		if err := t.publish(ctx, o); err != nil {
			return Acted{}, err
		}
	}
	// The events are stored: tell the read model (and the SLA timers) even
	// if the caller has gone. The projector applies the same events from the
	// stream; applying here makes the change visible to the caller at once.
	actx := context.WithoutCancel(ctx)
	for _, o := range outs {
		if _, err := t.Store.Apply(actx, o.Event); err != nil {
			release = false
			t.Log.WarnContext(ctx, "team action: read model not updated; the item stays locked until the projector has caught up", "event_id", o.Event.GetId(), "err", err)
		}
		if t.SLA != nil {
			if err := t.SLA.Apply(actx, o.Event); err != nil {
				t.Log.WarnContext(ctx, "team action: SLA timers not updated; the projector will catch up", "event_id", o.Event.GetId(), "err", err)
			}
		}
	}
	t.Log.InfoContext(ctx, "team action", "action", cmd.Action.String(), "feedback_id", id, "team", cmd.Team, "actor", cmd.Actor, "events", len(outs))
	item, err = t.Store.Item(ctx, id)
	if err != nil {
		return Acted{Events: outs}, err
	}
	return Acted{Events: outs, Assignment: assignment(item, cmd.Team)}, nil
}

// publish retries briefly: the events of one action belong together, and a
// client retry after a partial publish would be refused by the new state.
func (t *Team) publish(ctx context.Context, o workflow.Out) error {
	var err error
	for attempt := range 3 {
		if _, err = t.Bus.Publish(ctx, o.Subject, o.Event); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(50<<attempt) * time.Millisecond):
		}
	}
	return err
}

func (t *Team) known(team string) bool { return slices.Contains(t.Teams(), team) }

// assignment is team's share of item; nil when it has none.
func assignment(item *feedloopv1.Item, team string) *feedloopv1.AssignmentState {
	for _, a := range item.GetAssignments() {
		if a.GetTeam() == team {
			return a
		}
	}
	return nil
}
