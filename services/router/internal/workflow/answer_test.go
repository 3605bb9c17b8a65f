package workflow_test

import (
	"testing"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router/internal/projection"
	"github.com/feedloop/feedloop/services/router/internal/workflow"
)

// fold applies outs to it as the read model does.
func fold(t *testing.T, it *feedloopv1.Item, outs []workflow.Out) {
	t.Helper()
	for _, o := range outs {
		if !projection.Apply(it, o.Event) {
			t.Fatalf("projection ignored %v", o.Event)
		}
	}
}

// One survey answer per item counts: the first attributed. A second one
// (another score, another comment, another survey tool) gives no events,
// so CSAT is never counted twice; a redelivered first answer still yields
// its own events (the same ids); replies in words still attribute.
func TestFirstSurveyAnswerCounts(t *testing.T) {
	it := item(resolved, resolved)
	first := workflow.Answer{EventID: "cl-first", At: now, FeedbackID: "fb-a1", CSAT: 4, Text: "fine"}
	outs := workflow.Reply(it, first)
	if len(outs) != 2 {
		t.Fatalf("first answer: %d events, want a Replied per team", len(outs))
	}
	fold(t, it, outs[:1]) // the router died after billing's Replied

	// The redelivered first answer completes what it began.
	again := workflow.Reply(it, first)
	if len(again) != 2 || again[1].Event.GetId() != outs[1].Event.GetId() {
		t.Fatalf("redelivered first answer: %v, want its own events again", again)
	}
	fold(t, it, again[1:])
	if it.GetCsat() != 4 {
		t.Fatalf("csat = %d, want 4", it.GetCsat())
	}

	for _, second := range []workflow.Answer{
		{EventID: "cl-second", At: now, FeedbackID: "fb-a2", CSAT: 1, Text: "actually, bad"},
		{EventID: "cl-third", At: now, FeedbackID: "fb-a3", CSAT: 5},
	} {
		if outs := workflow.Reply(it, second); len(outs) != 0 {
			t.Fatalf("second survey answer (csat %d) attributed: %v", second.CSAT, outs)
		}
		if !workflow.AnsweredBefore(it, second) {
			t.Fatal("AnsweredBefore = false after the first answer")
		}
	}
	if it.GetCsat() != 4 || statusOf(it, "billing") != resolved {
		t.Fatalf("after a second answer: csat %d, billing %s; want the first answer's 4 and nothing reopened", it.GetCsat(), statusOf(it, "billing"))
	}

	// A reply in words is not a survey answer: it attributes and reopens.
	outs = workflow.Reply(it, workflow.Answer{EventID: "cl-words", At: now, FeedbackID: "fb-a4", Text: "one more thing"})
	if len(outs) != 4 {
		t.Fatalf("reply in words after the survey: %d events, want Replied + reopened per team", len(outs))
	}
}

func statusOf(it *feedloopv1.Item, team string) feedloopv1.Status {
	for _, a := range it.GetAssignments() {
		if a.GetTeam() == team {
			return a.GetStatus()
		}
	}
	return feedloopv1.Status_STATUS_UNSPECIFIED
}
