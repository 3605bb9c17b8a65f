package httpport

import (
	"testing"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// A notified entry's actor is an audience, not a person: the timeline says
// who was told what and never shows "by customer".
func TestTimelineNotifiedSaysWhoWasToldWhat(t *testing.T) {
	for _, c := range []struct {
		step     feedloopv1.Step
		audience string
		team     string
		want     string
	}{
		{feedloopv1.Step_STEP_RECEIVED, "customer", "", "Customer told: we received their feedback"},
		{feedloopv1.Step_STEP_PLANNED, "customer", "billing", "Customer told: the plan and its date"},
		{feedloopv1.Step_STEP_DECLINED, "customer", "billing", "Customer told: declined, with the reason"},
		{feedloopv1.Step_STEP_SURVEY, "customer", "", "Customer asked: how satisfied are they"},
		{feedloopv1.Step_STEP_ROUTED, "team", "billing", "billing alerted: a new item"},
		{feedloopv1.Step_STEP_ESCALATED, "team", "", "The team alerted: the SLA is at risk"},
	} {
		e := &feedloopv1.TimelineEntry{Kind: feedloopv1.TimelineKind_TIMELINE_KIND_NOTIFIED, Step: c.step, Actor: c.audience, Team: c.team}
		v := timelineView(e, "billing")
		if v.Summary != c.want {
			t.Errorf("%v to %s: summary %q, want %q", c.step, c.audience, v.Summary, c.want)
		}
		if v.Actor != "" {
			t.Errorf("%v to %s: actor %q shown as a person", c.step, c.audience, v.Actor)
		}
	}
}
