package readmodel

import (
	"strconv"
	"time"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router/internal/projection"
)

// Fields of a team's KPI hash. Apply increments them once per event (the
// event's id guards the whole transaction).
const (
	KPIRouted       = "routed"        // shares routed to the team, reroutes in included
	KPIReroutedIn   = "rerouted_in"   // shares routed to the team by a reroute
	KPIReroutedOut  = "rerouted_out"  // shares the team rerouted away
	KPIAcknowledged = "acknowledged"  // shares acknowledged (the first time)
	KPIResolved     = "resolved"      // resolve transitions (again after a reopen)
	KPIDeclined     = "declined"      // decline transitions
	KPIReopened     = "reopened"      // reopen transitions
	KPISLAWarnings  = "sla_warnings"  // pre-breach warnings
	KPISLABreaches  = "sla_breaches"  // breaches (escalation level 1)
	KPIAckSeconds   = "ack_seconds"   // sum of routed → first acknowledged, seconds
	KPIAckCount     = "ack_count"     // terms of that sum
	KPICloseSeconds = "close_seconds" // sum of routed → first resolved/declined, seconds
	KPICloseCount   = "close_count"   // terms of that sum
	KPIClosed       = "closed"        // shares closed (first resolve or decline of a share)
	KPIClosedTold   = "closed_told"   // of those, shares whose customer was told the outcome
	kpiCSATPrefix   = "csat_"         // csat_1 … csat_5: survey answers by score
	// NPS and CES answers of the feedback itself, counted per share routed
	// to the team (a reroute counts it for the new team too).
	KPINPSPromoters  = "nps_promoters"  // NPS 9-10
	KPINPSPassives   = "nps_passives"   // NPS 7-8
	KPINPSDetractors = "nps_detractors" // NPS 0-6
	KPICESCount      = "ces_count"      // CES answers (1-7)
	KPICESSum        = "ces_sum"        // sum of those answers
)

// utcDay is the UTC midnight starting t's UTC day.
func utcDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// dayNumber is day's count of days since 1970-01-01 (a day's score).
func dayNumber(day time.Time) int64 { return utcDay(day).Unix() / 86400 }

// KPICSAT is the field counting survey answers with score n (1-5).
func KPICSAT(n int32) string { return kpiCSATPrefix + strconv.Itoa(int(n)) }

// kpiDeltas returns the counter increments ev causes, per team, given the
// item before ev. It only runs for events the projection applied.
//
// Times are measured per share from its routed_at: time to acknowledge up to
// the share's first acknowledgement, time to close up to its first resolve
// or decline (a reopened share's later rounds count in resolved/declined and
// reopened, not twice in the means). The closed-loop rate divides the
// shares whose customer got the RESOLVED or DECLINED message by the shares
// closed; both count a share once.
func kpiDeltas(old *feedloopv1.Item, ev *feedloopv1.Event) map[string]map[string]int64 {
	d := map[string]map[string]int64{}
	add := func(team, field string, n int64) {
		if team == "" {
			return
		}
		if d[team] == nil {
			d[team] = map[string]int64{}
		}
		d[team][field] += n
	}
	at := ev.GetOccurredAt()
	switch p := ev.GetPayload().(type) {
	case *feedloopv1.Event_Routed:
		a := p.Routed.GetAssignment()
		add(a.GetTeam(), KPIRouted, 1)
		if a.GetReroutedFrom() != "" {
			add(a.GetTeam(), KPIReroutedIn, 1)
		}
		// A nil feedback has no answers (GetNps would say 0: a detractor).
		fb := p.Routed.GetFeedback()
		if fb != nil && fb.Nps != nil {
			switch n := fb.GetNps(); {
			case n >= 9 && n <= 10:
				add(a.GetTeam(), KPINPSPromoters, 1)
			case n >= 7 && n <= 8:
				add(a.GetTeam(), KPINPSPassives, 1)
			case n >= 0 && n <= 6:
				add(a.GetTeam(), KPINPSDetractors, 1)
			}
		}
		if n := fb.GetCes(); fb != nil && fb.Ces != nil && n >= 1 && n <= 7 {
			add(a.GetTeam(), KPICESCount, 1)
			add(a.GetTeam(), KPICESSum, int64(n))
		}
	case *feedloopv1.Event_StatusChanged:
		sc := p.StatusChanged
		team := sc.GetTeam()
		prev := projection.Assignment(old, team)
		since := func(field, count string) {
			if r := prev.GetRoutedAt(); r.IsValid() && at.IsValid() {
				add(team, field, int64(at.AsTime().Sub(r.AsTime()).Seconds()))
				add(team, count, 1)
			}
		}
		switch sc.GetTo() {
		case feedloopv1.Status_STATUS_ACKNOWLEDGED:
			if prev.GetAcknowledgedAt() == nil {
				add(team, KPIAcknowledged, 1)
				since(KPIAckSeconds, KPIAckCount)
			}
		case feedloopv1.Status_STATUS_RESOLVED, feedloopv1.Status_STATUS_DECLINED:
			if sc.GetTo() == feedloopv1.Status_STATUS_RESOLVED {
				add(team, KPIResolved, 1)
			} else {
				add(team, KPIDeclined, 1)
			}
			if !sinceRouted(old, team, closedEntry) {
				add(team, KPIClosed, 1)
				since(KPICloseSeconds, KPICloseCount)
			}
		case feedloopv1.Status_STATUS_REROUTED:
			add(team, KPIReroutedOut, 1)
		case feedloopv1.Status_STATUS_REOPENED:
			add(team, KPIReopened, 1)
		}
	case *feedloopv1.Event_Escalated:
		x := p.Escalated
		switch {
		case !projection.IsBreach(x):
			add(x.GetTeam(), KPISLAWarnings, 1)
		case x.GetLevel() == 1:
			add(x.GetTeam(), KPISLABreaches, 1)
		}
	case *feedloopv1.Event_Replied:
		if c := p.Replied.GetCsat(); c >= 1 && c <= 5 {
			add(p.Replied.GetTeam(), KPICSAT(c), 1)
		}
	case *feedloopv1.Event_Notified:
		n := p.Notified
		if n.GetAudience() == projection.AudienceCustomer && isOutcome(n.GetStep()) &&
			!sinceRouted(old, n.GetTeam(), toldEntry) {
			add(n.GetTeam(), KPIClosedTold, 1)
		}
	}
	return d
}

func isOutcome(s feedloopv1.Step) bool {
	return s == feedloopv1.Step_STEP_RESOLVED || s == feedloopv1.Step_STEP_DECLINED
}

// closedEntry matches a team's resolve or decline.
func closedEntry(e *feedloopv1.TimelineEntry) bool {
	return e.GetKind() == feedloopv1.TimelineKind_TIMELINE_KIND_STATUS_CHANGED &&
		(e.GetTo() == feedloopv1.Status_STATUS_RESOLVED || e.GetTo() == feedloopv1.Status_STATUS_DECLINED)
}

// toldEntry matches the customer's outcome message for a team.
func toldEntry(e *feedloopv1.TimelineEntry) bool {
	return e.GetKind() == feedloopv1.TimelineKind_TIMELINE_KIND_NOTIFIED &&
		e.GetActor() == projection.AudienceCustomer && isOutcome(e.GetStep())
}

// sinceRouted reports whether the team's current share (the timeline since
// the team's latest ROUTED entry) already has an entry of the team matching
// match.
func sinceRouted(item *feedloopv1.Item, team string, match func(*feedloopv1.TimelineEntry) bool) bool {
	tl := item.GetTimeline()
	for i := len(tl) - 1; i >= 0; i-- {
		e := tl[i]
		if e.GetTeam() != team {
			continue
		}
		if e.GetKind() == feedloopv1.TimelineKind_TIMELINE_KIND_ROUTED {
			return false
		}
		if match(e) {
			return true
		}
	}
	return false
}
