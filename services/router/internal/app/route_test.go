package app_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/feedloop/feedloop/pkg/bus"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router/internal/app"
)

// An item matching two teams' routes yields one routed event per team, on
// the team's subject, under an id derived from the input's and the team:
// routing the same input again yields the same ids, which the stream drops
// as duplicates.
func TestRouteOneEventPerTeamWithDerivedIDs(t *testing.T) {
	w := newWorld(t)
	in := classified("fb-1", "billing", "delivery")
	for range 2 {
		if err := w.routing.Route(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	got := w.events(bus.StreamFeedback, bus.AllRouted)
	if len(got) != 2 {
		t.Fatalf("stream holds %d routed events after two identical calls, want 2", len(got))
	}
	var teams []string
	for _, m := range got {
		team := m.ev.GetRouted().GetAssignment().GetTeam()
		teams = append(teams, team)
		if want := bus.DeriveID(in.GetId(), "routed", team); m.ev.GetId() != want || m.msgID != want {
			t.Errorf("%s: id %q, message id %q; want %q", team, m.ev.GetId(), m.msgID, want)
		}
		if m.subject != bus.RoutedSubject(team) {
			t.Errorf("%s published on %s", team, m.subject)
		}
	}
	slices.Sort(teams)
	if !slices.Equal(teams, []string{"billing", "logistics"}) {
		t.Errorf("routed to %v, want [billing logistics]", teams)
	}
	// Applied was told: the read model shows both shares at once.
	it := w.item("fb-1")
	if status(it, "billing") != feedloopv1.Status_STATUS_ROUTED || status(it, "logistics") != feedloopv1.Status_STATUS_ROUTED {
		t.Errorf("read model assignments = %v, want billing and logistics routed", it.GetAssignments())
	}
}

// What no route matches goes to the root route's team: no item is dropped.
func TestRouteUnmatchedGoesToTheDefaultTeam(t *testing.T) {
	w := newWorld(t)
	w.routed("fb-1", "praise")
	got := w.events(bus.StreamFeedback, bus.AllRouted)
	if len(got) != 1 || got[0].subject != bus.RoutedSubject("triage") {
		t.Fatalf("routed %v, want one event to triage", got)
	}
}

// An event that is not a well-formed Classified event is ErrUnroutable,
// for the port to dead-letter rather than retry, and publishes nothing.
func TestRouteMalformedIsUnroutable(t *testing.T) {
	w := newWorld(t)
	noFeedback := classified("fb-1", "billing")
	noFeedback.GetClassified().Feedback = nil
	notClassified := &feedloopv1.Event{Id: "e-2", FeedbackId: "fb-2", OccurredAt: noFeedback.GetOccurredAt(),
		Payload: &feedloopv1.Event_Received{Received: &feedloopv1.Received{}}}
	for _, in := range []*feedloopv1.Event{noFeedback, notClassified} {
		if err := w.routing.Route(context.Background(), in); !errors.Is(err, app.ErrUnroutable) {
			t.Errorf("%s: err = %v, want ErrUnroutable", in.GetId(), err)
		}
	}
	if n := len(w.events(bus.StreamFeedback, bus.AllRouted)); n != 0 {
		t.Errorf("published %d routed events", n)
	}
}

// Applied is told of the classified event first, then of its routed
// events, once they are stored (so the projector's batch folds them into
// the item together), and of nothing for an event that cannot be routed.
func TestRouteTellsAppliedOfTheClassifiedEventAndItsRoutedEvents(t *testing.T) {
	w := newWorld(t)
	told := w.recordApplied()
	in := classified("fb-1", "billing", "delivery")
	if err := w.routing.Route(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	var routed []string
	for _, m := range w.events(bus.StreamFeedback, bus.AllRouted) {
		routed = append(routed, m.ev.GetId())
	}
	if len(*told) != 3 || (*told)[0] != in.GetId() || !slices.Equal(slices.Sorted(slices.Values((*told)[1:])), slices.Sorted(slices.Values(routed))) {
		t.Errorf("Applied told of %v, want %s then the routed events %v", *told, in.GetId(), routed)
	}
	if c := w.item("fb-1").GetClassification(); c.GetRedactedText() != "text of fb-1" {
		t.Errorf("read model classification %v, want the classified event's", c)
	}
	*told = nil
	bad := classified("fb-2", "billing")
	bad.GetClassified().Feedback = nil
	if err := w.routing.Route(context.Background(), bad); !errors.Is(err, app.ErrUnroutable) || len(*told) != 0 {
		t.Errorf("unroutable: err %v, Applied told of %v; want ErrUnroutable and nothing told", err, *told)
	}
}

// A classified event carrying the rest of its received event (from a
// current classifier) has Applied told of that received event first, so
// the read model gets the item whole (status token, received entry) in the
// same fold; one without it (an older classifier's) only of itself.
func TestRouteTellsAppliedOfTheReceivedEventFirst(t *testing.T) {
	w := newWorld(t)
	told := w.recordApplied()
	in := classified("fb-1", "billing")
	in.GetClassified().Received = &feedloopv1.ReceivedRef{EventId: "received-fb-1", OccurredAt: in.GetOccurredAt(), StatusToken: "tok-1"}
	if err := w.routing.Route(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if len(*told) != 3 || (*told)[0] != "received-fb-1" || (*told)[1] != in.GetId() {
		t.Errorf("Applied told of %v, want received-fb-1, %s, then the routed event", *told, in.GetId())
	}
	if it := w.item("fb-1"); it.GetStatusToken() != "tok-1" || it.GetReceivedAt() == nil {
		t.Errorf("read model item %v, want the received event's token and time", it)
	}
	*told = nil
	if err := w.routing.Route(context.Background(), classified("fb-2", "billing")); err != nil {
		t.Fatal(err)
	}
	if len(*told) != 2 || (*told)[0] != "classified-fb-2" {
		t.Errorf("without the received event's rest: Applied told of %v, want classified-fb-2 then the routed event", *told)
	}
}

// recordApplied makes the routing use case record the ids of the events it
// tells Applied of, in order, and still apply them.
func (w *world) recordApplied() *[]string {
	told := &[]string{}
	apply := w.routing.Applied
	w.routing.Applied = func(ctx context.Context, ev *feedloopv1.Event) {
		*told = append(*told, ev.GetId())
		apply(ctx, ev)
	}
	return told
}
