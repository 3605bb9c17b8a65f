package app_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router/internal/workflow"
)

// closedItem routes an item to billing and logistics and closes it: billing
// declines, logistics resolves.
func (w *world) closedItem(id string) string {
	w.t.Helper()
	w.routed(id, "billing", "delivery")
	for _, s := range []struct {
		team string
		a    workflow.Action
	}{{"billing", workflow.Decline}, {"logistics", workflow.Acknowledge}, {"logistics", workflow.Resolve}} {
		if _, err := w.act(id, s.team, s.a, "words"); err != nil {
			w.t.Fatalf("%s %v: %v", s.team, s.a, err)
		}
	}
	if w.item(id).GetClosedAt() == nil {
		w.t.Fatalf("%s did not close", id)
	}
	return id
}

// answer is a classified survey answer to item target from customer.
func answer(id, target, customer string, csat int32) *feedloopv1.Event {
	ev := classified(id)
	fb := ev.GetClassified().GetFeedback()
	fb.InReplyTo, fb.Csat, fb.Customer = target, proto.Int32(csat), &feedloopv1.Customer{Id: customer}
	ev.OccurredAt = timestamppb.New(occurred.Add(48 * time.Hour))
	return ev
}

// A low score on a closed item is attributed to each team that handled it
// and reopens both shares; a second survey answer to the item is taken but
// changes nothing, the first counts.
func TestAnswerLowCSATReopensEachTeam(t *testing.T) {
	w := newWorld(t)
	id := w.closedItem("fb-1")
	before := len(w.events(bus.StreamFeedback, bus.AllUpdated))
	ctx := context.Background()

	done, err := w.answers.Answer(ctx, answer("ans-1", id, "c-fb-1", 2))
	if err != nil || !done {
		t.Fatalf("Answer = %v, %v; want true, nil", done, err)
	}
	got := w.events(bus.StreamFeedback, bus.AllUpdated)[before:]
	replied, reopened := map[string]bool{}, map[string]bool{}
	for _, m := range got {
		if r := m.ev.GetReplied(); r != nil && r.GetCsat() == 2 && r.GetReopened() {
			replied[r.GetTeam()] = true
		}
		if sc := m.ev.GetStatusChanged(); sc.GetTo() == feedloopv1.Status_STATUS_REOPENED {
			reopened[sc.GetTeam()] = true
		}
	}
	if len(got) != 4 || !replied["billing"] || !replied["logistics"] || !reopened["billing"] || !reopened["logistics"] {
		t.Fatalf("published %d events, replied %v reopened %v; want a Replied and a reopening per team", len(got), replied, reopened)
	}
	it := w.item(id)
	if status(it, "billing") != feedloopv1.Status_STATUS_REOPENED || status(it, "logistics") != feedloopv1.Status_STATUS_REOPENED || it.GetCsat() != 2 {
		t.Errorf("read model: assignments %v csat %d; want both reopened, csat 2", it.GetAssignments(), it.GetCsat())
	}

	n := len(w.events(bus.StreamFeedback, ">"))
	done, err = w.answers.Answer(ctx, answer("ans-2", id, "c-fb-1", 5))
	if err != nil || !done {
		t.Fatalf("second answer: Answer = %v, %v; want true, nil", done, err)
	}
	if after := len(w.events(bus.StreamFeedback, ">")); after != n || w.item(id).GetCsat() != 2 {
		t.Errorf("a second survey answer published %d events, csat now %d; want none, 2", after-n, w.item(id).GetCsat())
	}
}

// An answer from another customer than the item's is not read into the
// item: Answer declines it (the caller routes it as new feedback).
func TestAnswerFromAnotherCustomerIsNotAttributed(t *testing.T) {
	w := newWorld(t)
	id := w.closedItem("fb-1")
	n := len(w.events(bus.StreamFeedback, ">"))
	done, err := w.answers.Answer(context.Background(), answer("ans-1", id, "c-someone-else", 1))
	if err != nil || done {
		t.Fatalf("Answer = %v, %v; want false, nil", done, err)
	}
	if after := len(w.events(bus.StreamFeedback, ">")); after != n {
		t.Errorf("published %d events", after-n)
	}
	if status(w.item(id), "logistics") != feedloopv1.Status_STATUS_RESOLVED {
		t.Error("another customer's answer changed the item")
	}
}
