package app_test

import (
	"context"
	"errors"
	"testing"

	"github.com/feedloop/feedloop/pkg/bus"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router/internal/app"
	"github.com/feedloop/feedloop/services/router/internal/itemlock"
	"github.com/feedloop/feedloop/services/router/internal/sla"
	"github.com/feedloop/feedloop/services/router/internal/workflow"
)

func (w *world) act(id, team string, a workflow.Action, msg string) (app.Acted, error) {
	return w.team.Act(context.Background(), id, workflow.Command{Action: a, Team: team, Actor: "ana", Message: msg})
}

// An acknowledgement publishes one StatusChanged on the team's subject and
// shows in the read model as soon as Act returns, with no projector.
func TestActAcknowledgePublishesOneEventAndReadsItsWrite(t *testing.T) {
	w := newWorld(t)
	id := w.routed("fb-1", "billing")
	if tm := w.timers("billing", id); !tm[sla.Acknowledge] {
		t.Fatalf("no acknowledge timer for a routed item: %v", tm)
	}

	acted, err := w.act(id, "billing", workflow.Acknowledge, "")
	if err != nil {
		t.Fatal(err)
	}
	got := w.events(bus.StreamFeedback, bus.AllUpdated)
	if len(got) != 1 {
		t.Fatalf("published %d updated events, want 1: %v", len(got), got)
	}
	sc := got[0].ev.GetStatusChanged()
	if got[0].subject != bus.UpdatedSubject("billing") || sc.GetTo() != feedloopv1.Status_STATUS_ACKNOWLEDGED || sc.GetFrom() != feedloopv1.Status_STATUS_ROUTED {
		t.Errorf("published %s %v, want a routed→acknowledged change on %s", got[0].subject, sc, bus.UpdatedSubject("billing"))
	}
	if s := acted.Assignment.GetStatus(); s != feedloopv1.Status_STATUS_ACKNOWLEDGED {
		t.Errorf("Acted.Assignment status = %v, want acknowledged", s)
	}
	if s := status(w.item(id), "billing"); s != feedloopv1.Status_STATUS_ACKNOWLEDGED {
		t.Errorf("read model status = %v, want acknowledged", s)
	}
	// The SLA timers were told too: the acknowledge timer stopped, the
	// resolve timer runs on.
	if tm := w.timers("billing", id); tm[sla.Acknowledge] || !tm[sla.Resolve] {
		t.Errorf("timers after acknowledging = %v, want only resolve", tm)
	}
}

// An illegal action is the workflow's refusal and publishes nothing.
func TestActIllegalIsRefusedAndPublishesNothing(t *testing.T) {
	w := newWorld(t)
	id := w.routed("fb-1", "billing", "delivery")
	if _, err := w.act(id, "billing", workflow.Decline, "not ours"); err != nil {
		t.Fatal(err)
	}
	before := len(w.events(bus.StreamFeedback, ">"))

	_, err := w.act(id, "billing", workflow.Resolve, "done")
	var refused *app.RefusedError
	if !errors.As(err, &refused) || !errors.Is(err, workflow.ErrIllegal) {
		t.Fatalf("resolve a declined share: err = %v, want a RefusedError of workflow.ErrIllegal", err)
	}
	if after := len(w.events(bus.StreamFeedback, ">")); after != before {
		t.Errorf("a refused action published %d events", after-before)
	}
	if _, err := w.act(id, "nobody", workflow.Acknowledge, ""); !errors.Is(err, workflow.ErrNotAssigned) {
		t.Errorf("a team the item is not routed to: err = %v, want ErrNotAssigned", err)
	}
	if _, err := w.act("fb-unknown", "billing", workflow.Acknowledge, ""); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("unknown item: err = %v, want app.ErrNotFound", err)
	}
}

// Act waits for the item's lock: while another holder has it the action
// fails with ErrBusy and publishes nothing; each action releases the lock,
// so the next one proceeds.
func TestActHoldsAndReleasesTheItemLock(t *testing.T) {
	w := newWorld(t)
	id := w.routed("fb-1", "billing")
	ctx := context.Background()

	unlock, err := w.lock.Lock(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.act(id, "billing", workflow.Acknowledge, ""); !errors.Is(err, itemlock.ErrBusy) {
		t.Fatalf("act on a locked item: err = %v, want itemlock.ErrBusy", err)
	}
	if n := len(w.events(bus.StreamFeedback, bus.AllUpdated)); n != 0 {
		t.Fatalf("an action that never held the lock published %d events", n)
	}
	unlock()

	for _, a := range []workflow.Action{workflow.Acknowledge, workflow.Comment, workflow.Resolve} {
		if _, err := w.act(id, "billing", a, "words"); err != nil {
			t.Fatalf("%v after the previous action: %v", a, err)
		}
	}
	// Not even the action that closed the item kept the lock.
	unlock, err = w.lock.Lock(ctx, id)
	if err != nil {
		t.Fatalf("lock after the actions: %v", err)
	}
	unlock()
}

// The action that ends the last open share also publishes feedback.closed,
// naming the teams that gave an outcome, and the item shows closed.
func TestActClosingTheLastSharePublishesClosed(t *testing.T) {
	w := newWorld(t)
	id := w.routed("fb-1", "billing", "delivery")
	if _, err := w.act(id, "billing", workflow.Decline, "not ours"); err != nil {
		t.Fatal(err)
	}
	if n := len(w.events(bus.StreamFeedback, bus.SubjectClosed)); n != 0 {
		t.Fatalf("closed published with logistics still open (%d)", n)
	}
	if _, err := w.act(id, "logistics", workflow.Acknowledge, ""); err != nil {
		t.Fatal(err)
	}
	acted, err := w.act(id, "logistics", workflow.Resolve, "parcel found")
	if err != nil {
		t.Fatal(err)
	}
	if len(acted.Events) != 2 || acted.Events[1].Subject != bus.SubjectClosed {
		t.Errorf("resolve returned %d events, want its status change then feedback.closed", len(acted.Events))
	}
	closed := w.events(bus.StreamFeedback, bus.SubjectClosed)
	if len(closed) != 1 {
		t.Fatalf("published %d feedback.closed, want 1", len(closed))
	}
	if teams := closed[0].ev.GetClosed().GetTeams(); len(teams) != 2 || teams[0] != "billing" || teams[1] != "logistics" {
		t.Errorf("closed teams = %v, want [billing logistics]", teams)
	}
	if w.item(id).GetClosedAt() == nil {
		t.Error("the read model does not show the item closed")
	}
}
