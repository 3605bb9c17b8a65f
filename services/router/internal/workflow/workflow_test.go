package workflow_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router/internal/workflow"
)

var (
	t0  = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	now = t0.Add(2 * time.Hour)
)

const (
	routed   = feedloopv1.Status_STATUS_ROUTED
	acked    = feedloopv1.Status_STATUS_ACKNOWLEDGED
	planned  = feedloopv1.Status_STATUS_PLANNED
	resolved = feedloopv1.Status_STATUS_RESOLVED
	declined = feedloopv1.Status_STATUS_DECLINED
	rerouted = feedloopv1.Status_STATUS_REROUTED
	reopened = feedloopv1.Status_STATUS_REOPENED
)

// item is routed to billing (in state b) and product (in state p).
func item(b, p feedloopv1.Status) *feedloopv1.Item {
	return &feedloopv1.Item{
		FeedbackId:  "fb-1",
		StatusToken: "tok",
		CloseRounds: 0,
		Feedback:    &feedloopv1.Feedback{Id: "fb-1", Customer: &feedloopv1.Customer{Email: "ada@example.com", Locale: "de"}},
		Assignments: []*feedloopv1.AssignmentState{
			{Team: "billing", Status: b, RoutedAt: timestamppb.New(t0), AcknowledgeBy: timestamppb.New(t0.Add(time.Hour)),
				ResolveBy: timestamppb.New(t0.Add(72 * time.Hour)), PlannedDueAt: timestamppb.New(t0.Add(48 * time.Hour)),
				Priority: feedloopv1.Priority_PRIORITY_HIGH},
			{Team: "product", Status: p, RoutedAt: timestamppb.New(t0)},
		},
	}
}

func cmd(a workflow.Action, mod ...func(*workflow.Command)) workflow.Command {
	c := workflow.Command{Action: a, Team: "billing", Actor: "alice", Now: now, EventID: "ev-1"}
	switch a {
	case workflow.Plan:
		c.Message, c.DueAt = "refund on its way", t0.Add(96*time.Hour)
	case workflow.Resolve:
		c.Message = "refunded"
	case workflow.Decline:
		c.Message = "not our area"
	case workflow.Reroute:
		c.Message, c.RerouteTo = "this is a delivery problem", "logistics"
	case workflow.Comment:
		c.Message = "called the customer"
	}
	for _, m := range mod {
		m(&c)
	}
	return c
}

func known(team string) bool { return team != "nobody" }

// Every action from every state: legal ones give a StatusChanged with the
// right from/to; illegal ones an ErrIllegal that names the current state.
func TestTransitions(t *testing.T) {
	legal := map[workflow.Action]map[feedloopv1.Status]feedloopv1.Status{
		workflow.Acknowledge: {routed: acked, reopened: acked},
		workflow.Plan:        {acked: planned, planned: planned},
		workflow.Resolve:     {acked: resolved, planned: resolved},
		workflow.Decline:     {routed: declined, acked: declined, planned: declined, reopened: declined},
		workflow.Reroute:     {routed: rerouted, acked: rerouted, planned: rerouted, reopened: rerouted},
	}
	all := []feedloopv1.Status{routed, acked, planned, resolved, declined, rerouted, reopened}
	for a, ok := range legal {
		for _, cur := range all {
			t.Run(a.String()+"/"+workflow.StatusName(cur), func(t *testing.T) {
				outs, err := workflow.Decide(item(cur, acked), cmd(a), known)
				want, isLegal := ok[cur]
				if !isLegal {
					if !errors.Is(err, workflow.ErrIllegal) || !strings.Contains(err.Error(), "is "+workflow.StatusName(cur)) {
						t.Fatalf("err = %v, want ErrIllegal naming %s", err, workflow.StatusName(cur))
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				sc := outs[0].Event.GetStatusChanged()
				if outs[0].Subject != bus.UpdatedSubject("billing") || sc.GetFrom() != cur || sc.GetTo() != want || sc.GetActor() != "alice" {
					t.Fatalf("out = %s %v", outs[0].Subject, sc)
				}
				if sc.GetFeedback().GetCustomer().GetEmail() != "ada@example.com" || sc.GetStatusToken() != "tok" {
					t.Fatalf("the notifier needs the customer and the token: %v", sc)
				}
			})
		}
	}
}

func TestFieldRules(t *testing.T) {
	cases := []struct {
		name  string
		c     workflow.Command
		field string
	}{
		{"plan without message", cmd(workflow.Plan, func(c *workflow.Command) { c.Message = "  " }), "customer_message"},
		{"plan without date", cmd(workflow.Plan, func(c *workflow.Command) { c.DueAt = time.Time{} }), "due_at"},
		{"plan in the past", cmd(workflow.Plan, func(c *workflow.Command) { c.DueAt = now.Add(-48 * time.Hour) }), "due_at"},
		{"resolve without message", cmd(workflow.Resolve, func(c *workflow.Command) { c.Message = "" }), "customer_message"},
		{"decline without reason", cmd(workflow.Decline, func(c *workflow.Command) { c.Message = "" }), "customer_message"},
		{"reroute without team", cmd(workflow.Reroute, func(c *workflow.Command) { c.RerouteTo = "" }), "team"},
		{"reroute to itself", cmd(workflow.Reroute, func(c *workflow.Command) { c.RerouteTo = "billing" }), "team"},
		{"reroute to unknown team", cmd(workflow.Reroute, func(c *workflow.Command) { c.RerouteTo = "nobody" }), "team"},
		{"reroute without reason", cmd(workflow.Reroute, func(c *workflow.Command) { c.Message = "" }), "internal_note"},
		{"comment without text", cmd(workflow.Comment, func(c *workflow.Command) { c.Message = "" }), "internal_note"},
		{"comment too long", cmd(workflow.Comment, func(c *workflow.Command) { c.Message = strings.Repeat("é", workflow.MaxTextLen+1) }), "internal_note"},
		// Intake's rules for free text, the ones a customer's feedback meets.
		{"plan message with NUL", cmd(workflow.Plan, func(c *workflow.Command) { c.Message = "refund\x00soon" }), "customer_message"},
		{"resolve message with ESC", cmd(workflow.Resolve, func(c *workflow.Command) { c.Message = "\x1b[2Jdone" }), "customer_message"},
		{"resolve message not UTF-8", cmd(workflow.Resolve, func(c *workflow.Command) { c.Message = "done \xff\xfe" }), "customer_message"},
		{"decline reason with control", cmd(workflow.Decline, func(c *workflow.Command) { c.Message = "no\x07" }), "customer_message"},
		{"reroute reason not UTF-8", cmd(workflow.Reroute, func(c *workflow.Command) { c.Message = "\xc3" }), "internal_note"},
		{"comment with ESC", cmd(workflow.Comment, func(c *workflow.Command) { c.Message = "note \x1b]0;x\x07" }), "internal_note"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := workflow.Decide(item(acked, acked), tc.c, known)
			var fe *workflow.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(err, workflow.ErrInvalid) {
				t.Fatalf("err = %v, want field %s", err, tc.field)
			}
		})
	}
	// Tabs and line breaks are text, as in feedback.
	if _, err := workflow.Decide(item(acked, acked), cmd(workflow.Resolve, func(c *workflow.Command) { c.Message = "Done:\r\n\t- refund" }), known); err != nil {
		t.Fatalf("multi-line message: %v", err)
	}
	// A plan today is fine: the date is a day, not an instant.
	if _, err := workflow.Decide(item(acked, acked), cmd(workflow.Plan, func(c *workflow.Command) { c.DueAt = now.Truncate(24 * time.Hour) }), known); err != nil {
		t.Fatalf("plan for today: %v", err)
	}
}

func TestNotAssigned(t *testing.T) {
	_, err := workflow.Decide(item(routed, routed), cmd(workflow.Acknowledge, func(c *workflow.Command) { c.Team = "logistics" }), known)
	if !errors.Is(err, workflow.ErrNotAssigned) {
		t.Fatalf("err = %v", err)
	}
}

// Planning again with a new date records the old one (the customer is told
// the date moved); with the same date it is refused.
func TestReplan(t *testing.T) {
	outs, err := workflow.Decide(item(planned, acked), cmd(workflow.Plan), known)
	if err != nil {
		t.Fatal(err)
	}
	sc := outs[0].Event.GetStatusChanged()
	if !sc.GetPreviousDueAt().AsTime().Equal(t0.Add(48*time.Hour)) || !sc.GetDueAt().AsTime().Equal(t0.Add(96*time.Hour)) {
		t.Fatalf("replan = %v", sc)
	}
	_, err = workflow.Decide(item(planned, acked), cmd(workflow.Plan, func(c *workflow.Command) { c.DueAt = t0.Add(48 * time.Hour) }), known)
	if !errors.Is(err, workflow.ErrIllegal) {
		t.Fatalf("same date: %v", err)
	}
	// The first plan has no previous date.
	outs, _ = workflow.Decide(item(acked, acked), cmd(workflow.Plan), known)
	if outs[0].Event.GetStatusChanged().GetPreviousDueAt() != nil {
		t.Fatal("first plan carries a previous date")
	}
}

// The action that leaves no team working closes the item: one Closed event
// naming the teams that gave an outcome, after the transition.
func TestClosing(t *testing.T) {
	outs, err := workflow.Decide(item(planned, declined), cmd(workflow.Resolve), known)
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 2 || outs[1].Subject != bus.SubjectClosed {
		t.Fatalf("outs = %v", outs)
	}
	cl := outs[1].Event.GetClosed()
	if strings.Join(cl.GetTeams(), ",") != "billing,product" || cl.GetRound() != 1 || cl.GetStatusToken() != "tok" {
		t.Fatalf("closed = %v", cl)
	}
	if outs[1].Event.GetId() != bus.DeriveID("fb-1", "closed", "1") {
		t.Fatal("closed id is not the item's and the round's")
	}
	// Product still works on it: no Closed.
	outs, _ = workflow.Decide(item(planned, acked), cmd(workflow.Resolve), known)
	if len(outs) != 1 {
		t.Fatalf("closed while product works: %v", outs)
	}
	// Closed again after a reopen: round 2.
	it := item(reopened, resolved)
	it.CloseRounds = 1
	outs, _ = workflow.Decide(it, cmd(workflow.Decline), known)
	if len(outs) != 2 || outs[1].Event.GetClosed().GetRound() != 2 {
		t.Fatalf("second close = %v", outs)
	}
}

// A reroute closes the team's share and opens the target's, with the same
// priority and SLA windows counted from now; it never closes the item.
func TestReroute(t *testing.T) {
	outs, err := workflow.Decide(item(acked, resolved), cmd(workflow.Reroute), known)
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 2 || outs[1].Subject != bus.RoutedSubject("logistics") {
		t.Fatalf("outs = %v", outs)
	}
	a := outs[1].Event.GetRouted().GetAssignment()
	if a.GetReroutedFrom() != "billing" || a.GetPriority() != feedloopv1.Priority_PRIORITY_HIGH ||
		!a.GetAcknowledgeBy().AsTime().Equal(now.Add(time.Hour)) || !a.GetResolveBy().AsTime().Equal(now.Add(72*time.Hour)) {
		t.Fatalf("assignment = %v", a)
	}
	if outs[0].Event.GetStatusChanged().GetRerouteTo() != "logistics" {
		t.Fatal("reroute_to missing")
	}
	// Not to a team that already works on it.
	_, err = workflow.Decide(item(acked, acked), cmd(workflow.Reroute, func(c *workflow.Command) { c.RerouteTo = "product" }), known)
	if !errors.Is(err, workflow.ErrIllegal) {
		t.Fatalf("reroute to a working team: %v", err)
	}
}

func TestComment(t *testing.T) {
	for _, st := range []feedloopv1.Status{routed, resolved, rerouted} {
		outs, err := workflow.Decide(item(st, acked), cmd(workflow.Comment), known)
		if err != nil || len(outs) != 1 || outs[0].Event.GetCommented().GetText() != "called the customer" {
			t.Fatalf("%v: %v %v", st, outs, err)
		}
	}
}

func TestReply(t *testing.T) {
	ans := workflow.Answer{EventID: "cl-9", At: now, FeedbackID: "fb-2", CSAT: 1}
	it := item(resolved, declined)
	it.Assignments = append(it.Assignments, &feedloopv1.AssignmentState{Team: "logistics", Status: rerouted})
	outs := workflow.Reply(it, ans)
	// billing and product: Replied + reopened each; logistics handed it on.
	var replied, reopenedTeams []string
	for _, o := range outs {
		switch p := o.Event.GetPayload().(type) {
		case *feedloopv1.Event_Replied:
			replied = append(replied, p.Replied.GetTeam())
			if p.Replied.GetCsat() != 1 || !p.Replied.GetReopened() {
				t.Fatalf("replied = %v", p.Replied)
			}
		case *feedloopv1.Event_StatusChanged:
			if p.StatusChanged.GetTo() != reopened || p.StatusChanged.GetActor() != "customer" {
				t.Fatalf("reopen = %v", p.StatusChanged)
			}
			reopenedTeams = append(reopenedTeams, p.StatusChanged.GetTeam())
		}
	}
	if strings.Join(replied, ",") != "billing,product" || strings.Join(reopenedTeams, ",") != "billing,product" {
		t.Fatalf("replied %v reopened %v", replied, reopenedTeams)
	}
	// Same answer, same ids (redelivery).
	again := workflow.Reply(it, ans)
	for i := range outs {
		if outs[i].Event.GetId() != again[i].Event.GetId() {
			t.Fatal("ids differ on redelivery")
		}
	}
	// A good score is attributed but reopens nothing.
	outs = workflow.Reply(it, workflow.Answer{EventID: "cl-10", At: now, CSAT: 4})
	for _, o := range outs {
		if o.Event.GetStatusChanged() != nil || o.Event.GetReplied().GetReopened() {
			t.Fatalf("CSAT 4 reopened: %v", o)
		}
	}
	// A reply in words to an open item is attributed, nothing reopens.
	outs = workflow.Reply(item(acked, planned), workflow.Answer{EventID: "cl-11", At: now, Text: "any news?"})
	if len(outs) != 2 || outs[0].Event.GetReplied() == nil || outs[1].Event.GetReplied() == nil {
		t.Fatalf("reply to an open item: %v", outs)
	}
}

// changed is item with ev as its latest timeline entry, as the read model
// holds it once ev is folded in.
func changed(it *feedloopv1.Item, ev *feedloopv1.Event) *feedloopv1.Item {
	it.Timeline = append(it.Timeline, &feedloopv1.TimelineEntry{EventId: ev.GetId(), Kind: feedloopv1.TimelineKind_TIMELINE_KIND_STATUS_CHANGED})
	return it
}

// The projector's completion yields exactly the Closed event the action
// published (same id and payload), and nothing once the item is closed.
func TestCompletion(t *testing.T) {
	outs, err := workflow.Decide(item(planned, declined), cmd(workflow.Resolve), known)
	if err != nil || len(outs) != 2 {
		t.Fatalf("%v %v", outs, err)
	}
	// The read model after the status change, before the Closed event.
	after := changed(item(resolved, declined), outs[0].Event)
	got := workflow.Completion(after, outs[0].Event)
	if len(got) != 1 || got[0].Subject != outs[1].Subject || !proto.Equal(got[0].Event, outs[1].Event) {
		t.Fatalf("completion = %v, want %v", got, outs[1].Event)
	}
	after.ClosedAt = timestamppb.New(now)
	if got := workflow.Completion(after, outs[0].Event); len(got) != 0 {
		t.Fatalf("completion of a closed item: %v", got)
	}
	// A change that leaves a team working completes nothing.
	open, _ := workflow.Decide(item(planned, acked), cmd(workflow.Resolve), known)
	if got := workflow.Completion(changed(item(resolved, acked), open[0].Event), open[0].Event); len(got) != 0 {
		t.Fatalf("completion while product works: %v", got)
	}
	// A reroute whose Routed event was lost: the same Routed event.
	re, err := workflow.Decide(item(acked, resolved), cmd(workflow.Reroute), known)
	if err != nil {
		t.Fatal(err)
	}
	moved := changed(item(rerouted, resolved), re[0].Event)
	moved.Assignments[0].ReroutedTo = "logistics"
	got = workflow.Completion(moved, re[0].Event)
	if len(got) != 1 || !proto.Equal(got[0].Event, re[1].Event) {
		t.Fatalf("reroute completion = %v, want %v", got, re[1].Event)
	}
	// Once the target's share exists, nothing.
	moved.Assignments = append(moved.Assignments, &feedloopv1.AssignmentState{Team: "logistics", Status: routed, RoutedAt: timestamppb.New(now)})
	if got := workflow.Completion(moved, re[0].Event); len(got) != 0 {
		t.Fatalf("reroute completed twice: %v", got)
	}
}

// A lagging projector folding an older change completes nothing: the item
// has moved on (here: billing rerouted to logistics after product's
// decline, and the new share is not folded in yet).
func TestCompletionOnlyForTheLatestChange(t *testing.T) {
	decline, err := workflow.Decide(item(acked, acked), cmd(workflow.Decline, func(c *workflow.Command) { c.Team = "product"; c.EventID = "ev-decline" }), known)
	if err != nil {
		t.Fatal(err)
	}
	re, err := workflow.Decide(item(acked, declined), cmd(workflow.Reroute), known)
	if err != nil {
		t.Fatal(err)
	}
	state := changed(changed(item(rerouted, declined), decline[0].Event), re[0].Event)
	if got := workflow.Completion(state, decline[0].Event); len(got) != 0 {
		t.Fatalf("an old decline closed the item: %v", got)
	}
}
