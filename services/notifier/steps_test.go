package notifier_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/notifier"
)

// person is a customer of these tests.
type person struct {
	id, email, name, locale string
	contact, survey         bool
}

func (p person) feedback(fid, text string) *feedloopv1.Feedback {
	return &feedloopv1.Feedback{
		Id: fid, Source: "zendesk", Channel: feedloopv1.Channel_CHANNEL_EMAIL, Subject: "Charged twice", Text: text,
		Customer: &feedloopv1.Customer{
			Id: p.id, Email: p.email, Name: p.name, Locale: p.locale,
			Consent: &feedloopv1.Consent{Contact: p.contact, Survey: p.survey},
		},
		ReceivedAt: timestamppb.Now(),
	}
}

func newEvent(fid string, set func(*feedloopv1.Event)) *feedloopv1.Event {
	ev := &feedloopv1.Event{Id: bus.NewID(), FeedbackId: fid, OccurredAt: timestamppb.Now()}
	set(ev)
	return ev
}

func (p person) received(fid string) *feedloopv1.Event {
	return newEvent(fid, func(ev *feedloopv1.Event) {
		ev.Payload = &feedloopv1.Event_Received{Received: &feedloopv1.Received{Feedback: p.feedback(fid, "My card 4111 1111 1111 1111 was charged twice."), StatusToken: tokenOf(fid)}}
	})
}

func (p person) routed(fid, team string) *feedloopv1.Event {
	ev := routedEvent(fid, team)
	ev.GetRouted().Feedback = p.feedback(fid, "My card 4111 1111 1111 1111 was charged twice.")
	return ev
}

// status is a transition of team's assignment, as the router publishes it
// on feedback.updated.<team> (feedback text redacted).
func (p person) status(fid, team string, from, to feedloopv1.Status, mod func(*feedloopv1.StatusChanged)) *feedloopv1.Event {
	return newEvent(fid, func(ev *feedloopv1.Event) {
		sc := &feedloopv1.StatusChanged{Team: team, From: from, To: to, Actor: "alice", Feedback: p.feedback(fid, redacted), StatusToken: tokenOf(fid)}
		if mod != nil {
			mod(sc)
		}
		ev.Payload = &feedloopv1.Event_StatusChanged{StatusChanged: sc}
	})
}

func (p person) closed(fid string, round int32, teams ...string) *feedloopv1.Event {
	return newEvent(fid, func(ev *feedloopv1.Event) {
		ev.Payload = &feedloopv1.Event_Closed{Closed: &feedloopv1.Closed{Teams: teams, Feedback: p.feedback(fid, redacted), StatusToken: tokenOf(fid), Round: round}}
	})
}

func (p person) escalated(fid, team string, kind feedloopv1.EscalationKind, level int32, to string) *feedloopv1.Event {
	return newEvent(fid, func(ev *feedloopv1.Event) {
		ev.Payload = &feedloopv1.Event_Escalated{Escalated: &feedloopv1.Escalated{
			Team: team, Level: level, EscalateTo: to, Deadline: "acknowledge", Kind: kind,
			DueAt: timestamppb.New(time.Date(2025, 5, 2, 9, 0, 0, 0, time.UTC)), Feedback: p.feedback(fid, redacted), Priority: feedloopv1.Priority_PRIORITY_HIGH,
		}}
	})
}

func planned(due time.Time, msg string) func(*feedloopv1.StatusChanged) {
	return func(sc *feedloopv1.StatusChanged) { sc.DueAt, sc.CustomerMessage = timestamppb.New(due), msg }
}

func moved(prev, due time.Time) func(*feedloopv1.StatusChanged) {
	return func(sc *feedloopv1.StatusChanged) {
		sc.DueAt, sc.PreviousDueAt, sc.CustomerMessage = timestamppb.New(due), timestamppb.New(prev), "We need one more week."
	}
}

const (
	routedS  = feedloopv1.Status_STATUS_ROUTED
	ackS     = feedloopv1.Status_STATUS_ACKNOWLEDGED
	plannedS = feedloopv1.Status_STATUS_PLANNED
	resolveS = feedloopv1.Status_STATUS_RESOLVED
	declineS = feedloopv1.Status_STATUS_DECLINED
	reopenS  = feedloopv1.Status_STATUS_REOPENED
)

var (
	may30 = time.Date(2025, 5, 30, 0, 0, 0, 0, time.UTC)
	jun6  = time.Date(2025, 6, 6, 0, 0, 0, 0, time.UTC)
	jun13 = time.Date(2025, 6, 13, 0, 0, 0, 0, time.UTC)
)

// byStep groups the customer webhook's messages about fid by step.
func (e *env) byStep(path, fid string) map[string][]hook {
	out := map[string][]hook{}
	for _, h := range e.hooks.at(path, fid) {
		out[h.payload.Step] = append(out[h.payload.Step], h)
	}
	return out
}

// emailSubjects are the decoded subjects of the emails to addr, sorted.
func (e *env) emailSubjects(addr string) []string {
	var out []string
	for _, m := range e.smtp.To(addr) {
		_, s := decodeSubject(e.t, m.Data)
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func countSteps(ns []*feedloopv1.Event) map[feedloopv1.Step]int {
	out := map[feedloopv1.Step]int{}
	for _, n := range ns {
		out[n.GetNotified().GetStep()]++
	}
	return out
}

// The customer hears every step of the loop, in their language, with the
// team's words, the dates in their locale and the survey's links; internal
// steps say nothing to them.
func TestCustomerHearsEveryStep(t *testing.T) {
	e := newEnv(t)
	e.cfg.CustomerRouted = true
	e.start()

	type msg struct {
		subject string
		text    []string
	}
	cases := []struct {
		p    person
		want map[string][]msg
	}{
		{
			p: person{id: "cus_en", email: "bob@example.com", name: "Bob", locale: "en-GB", contact: true, survey: true},
			want: map[string][]msg{
				"received":        {{"We got your feedback: Charged twice", []string{"Hi Bob,", "My card 4111 1111 1111 1111 was charged twice.", "Follow its progress here: https://status.acme.example/feedback/{token}"}}},
				"customer_routed": {{"Your feedback reached our billing team: Charged twice", nil}, {"Your feedback reached our product team: Charged twice", nil}},
				"planned":         {{"We have a plan: Charged twice", []string{"our billing team", "you can expect it done by 30 May 2025", "We will refund the duplicate charge.", "https://status.acme.example/feedback/{token}"}}},
				"plan_changed":    {{"New date for your feedback: Charged twice", []string{"instead of 30 May 2025, you can now expect it done by 6 June 2025", "We need one more week."}}},
				"resolved":        {{"Resolved: Charged twice", []string{"our billing team has resolved your feedback", "Refunded to your card."}}},
				"declined":        {{"About your feedback: Charged twice", []string{"Our product team", "Monthly invoices are not planned.", "We are sorry"}}},
				"survey":          {{"How did we do? (Charged twice)", []string{"by our billing and product teams", "https://status.acme.example/feedback/{token}/survey?csat=1", "https://status.acme.example/feedback/{token}/survey?csat=5", "just reply"}}},
			},
		},
		{
			p: person{id: "cus_de", email: "ada@example.com", name: "Ada", locale: "de-CH", contact: true, survey: true},
			want: map[string][]msg{
				"received":        {{"Wir haben Ihr Feedback erhalten: Charged twice", []string{"Guten Tag Ada,", "My card 4111 1111 1111 1111 was charged twice.", "Den Stand verfolgen: https://status.acme.example/feedback/{token}"}}},
				"customer_routed": {{"Ihr Feedback ist bei unserem Team billing angekommen: Charged twice", nil}, {"Ihr Feedback ist bei unserem Team product angekommen: Charged twice", nil}},
				"planned":         {{"Wir haben einen Plan: Charged twice", []string{"unser Team billing", "bis zum 30. Mai 2025", "We will refund the duplicate charge."}}},
				"plan_changed":    {{"Neuer Termin für Ihr Feedback: Charged twice", []string{"statt bis zum 30. Mai 2025 können Sie nun bis zum 6. Juni 2025", "We need one more week."}}},
				"resolved":        {{"Erledigt: Charged twice", []string{"Unser Team billing hat Ihr Feedback", "Refunded to your card."}}},
				"declined":        {{"Zu Ihrem Feedback: Charged twice", []string{"Unser Team product", "Monthly invoices are not planned.", "Es tut uns leid"}}},
				"survey":          {{"Wie zufrieden waren Sie? (Charged twice)", []string{"billing und product", "https://status.acme.example/feedback/{token}/survey?csat=3", "antworten Sie einfach"}}},
			},
		},
	}
	fids := make([]string, len(cases))
	for i, tc := range cases {
		fid := bus.NewID()
		fids[i] = fid
		p := tc.p
		upd := bus.UpdatedSubject
		e.publish(bus.SubjectReceived, p.received(fid))
		e.publish(bus.RoutedSubject("billing"), p.routed(fid, "billing"))
		e.publish(bus.RoutedSubject("product"), p.routed(fid, "product"))
		e.publish(upd("billing"), p.status(fid, "billing", routedS, ackS, nil))
		e.publish(upd("billing"), p.status(fid, "billing", ackS, plannedS, planned(may30, "We will refund the duplicate charge.")))
		e.publish(upd("billing"), p.status(fid, "billing", plannedS, plannedS, moved(may30, jun6)))
		e.publish(upd("billing"), newEvent(fid, func(ev *feedloopv1.Event) {
			ev.Payload = &feedloopv1.Event_Commented{Commented: &feedloopv1.Commented{Team: "billing", Actor: "alice", Text: "internal: refund via Stripe"}}
		}))
		e.publish(upd("billing"), p.status(fid, "billing", plannedS, resolveS, func(sc *feedloopv1.StatusChanged) { sc.CustomerMessage = "Refunded to your card." }))
		e.publish(upd("product"), p.status(fid, "product", routedS, ackS, nil))
		e.publish(upd("product"), p.status(fid, "product", ackS, declineS, func(sc *feedloopv1.StatusChanged) { sc.Reason = "Monthly invoices are not planned." }))
		e.publish(bus.SubjectClosed, p.closed(fid, 1, "billing", "product"))
		e.publish(upd("billing"), newEvent(fid, func(ev *feedloopv1.Event) {
			ev.Payload = &feedloopv1.Event_Replied{Replied: &feedloopv1.Replied{Team: "billing", Csat: 5, ReplyFeedbackId: bus.NewID()}}
		}))
	}
	for i, tc := range cases {
		fid := fids[i]
		e.eventually("8 customer messages for "+tc.p.locale, func() bool {
			return len(e.hooks.at("/customer", fid)) == 8 && len(e.smtp.To(tc.p.email)) == 8
		})
	}
	e.idle()

	for i, tc := range cases {
		fid := fids[i]
		t.Run(tc.p.locale, func(t *testing.T) {
			got := e.byStep("/customer", fid)
			var wantSubjects []string
			for step, msgs := range tc.want {
				hs := got[step]
				if len(hs) != len(msgs) {
					t.Errorf("%s: %d messages, want %d", step, len(hs), len(msgs))
					continue
				}
				sort.Slice(hs, func(a, b int) bool { return hs[a].payload.Message.Subject < hs[b].payload.Message.Subject })
				for j, m := range msgs {
					wantSubjects = append(wantSubjects, m.subject)
					pm := hs[j].payload.Message
					if pm.Subject != m.subject {
						t.Errorf("%s subject = %q, want %q", step, pm.Subject, m.subject)
					}
					for _, w := range m.text {
						w = strings.ReplaceAll(w, "{token}", tokenOf(fid))
						if !strings.Contains(pm.Text, w) {
							t.Errorf("%s text lacks %q:\n%s", step, w, pm.Text)
						}
					}
					if !hs[j].signedOK || hs[j].payload.Audience != "customer" {
						t.Errorf("%s: signed %v, audience %q", step, hs[j].signedOK, hs[j].payload.Audience)
					}
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("steps told: %v, want %d kinds", keys(got), len(tc.want))
			}
			// The webhook body carries the facts as structure too.
			if p := got["planned"][0].payload; p.Team != "billing" || p.CustomerMessage != "We will refund the duplicate charge." || !p.DueAt.Equal(may30) {
				t.Errorf("planned payload = %+v", p)
			}
			if p := got["plan_changed"][0].payload; !p.DueAt.Equal(jun6) || !p.PreviousDueAt.Equal(may30) {
				t.Errorf("plan_changed payload = %+v", p)
			}
			if p := got["declined"][0].payload; p.Team != "product" || p.Reason != "Monthly invoices are not planned." {
				t.Errorf("declined payload = %+v", p)
			}
			if p := got["survey"][0].payload; len(p.Survey) != 5 || p.Survey[4].Score != 5 || len(p.Teams) != 2 {
				t.Errorf("survey payload = %+v", p)
			}
			for step, hs := range got {
				if step != "received" && strings.Contains(string(hs[0].body), "[CARD]") {
					t.Errorf("%s shows the customer the redacted text: %s", step, hs[0].body)
				}
			}
			// The emails say the same.
			sort.Strings(wantSubjects)
			if gotSubjects := e.emailSubjects(tc.p.email); strings.Join(gotSubjects, "\n") != strings.Join(wantSubjects, "\n") {
				t.Errorf("email subjects:\n%s\nwant\n%s", strings.Join(gotSubjects, "\n"), strings.Join(wantSubjects, "\n"))
			}
			// The records name the team concerned (KPIs count on it).
			teamOf := map[feedloopv1.Step][]string{}
			for _, n := range e.notified(fid) {
				if got := n.GetNotified(); got.GetAudience() == "customer" && got.GetChannel() == "email" {
					teamOf[got.GetStep()] = append(teamOf[got.GetStep()], got.GetTeam())
				}
			}
			for step, want := range map[feedloopv1.Step]string{
				feedloopv1.Step_STEP_PLANNED: "billing", feedloopv1.Step_STEP_PLAN_CHANGED: "billing", feedloopv1.Step_STEP_RESOLVED: "billing",
				feedloopv1.Step_STEP_DECLINED: "product", feedloopv1.Step_STEP_SURVEY: "", feedloopv1.Step_STEP_RECEIVED: "",
			} {
				if ts := teamOf[step]; len(ts) != 1 || ts[0] != want {
					t.Errorf("notified %v teams = %q, want [%q]", step, ts, want)
				}
			}
			// Teams heard of the routing only: acknowledgements, comments
			// and replies alert nobody.
			if n, d := len(e.hooks.at("/team/billing", fid)), len(e.hooks.at("/team/default", fid)); n != 1 || d != 1 {
				t.Errorf("team alerts: billing %d, default %d; want 1 each (routed)", n, d)
			}
		})
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestConsent(t *testing.T) {
	e := newEnv(t)
	e.start()
	silent := person{id: "cus_silent", email: "silent@example.com", locale: "en"}
	noSurvey := person{id: "cus_nosurvey", email: "nosurvey@example.com", locale: "en", contact: true}
	for _, p := range []person{silent, noSurvey} {
		fid := bus.NewID()
		e.publish(bus.SubjectReceived, p.received(fid))
		e.publish(bus.RoutedSubject("billing"), p.routed(fid, "billing"))
		e.publish(bus.UpdatedSubject("billing"), p.status(fid, "billing", ackS, plannedS, planned(may30, "Soon.")))
		e.publish(bus.UpdatedSubject("billing"), p.status(fid, "billing", plannedS, resolveS, nil))
		e.publish(bus.SubjectClosed, p.closed(fid, 1, "billing"))
		e.publish(bus.UpdatedSubject("billing"), p.status(fid, "billing", resolveS, reopenS, func(sc *feedloopv1.StatusChanged) { sc.Actor = "customer" }))
		e.eventually("the team's routed and reopened alerts", func() bool { return len(e.hooks.at("/team/billing", fid)) == 2 })
	}
	e.idle()
	if n := len(e.smtp.To(silent.email)); n != 0 {
		t.Errorf("a customer without consent got %d emails", n)
	}
	got := e.emailSubjects(noSurvey.email)
	want := []string{"Resolved: Charged twice", "We got your feedback: Charged twice", "We have a plan: Charged twice"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("customer without survey consent got %q, want %q (no survey)", got, want)
	}
}

// Redeliveries, repeated events and a second replica never send a step
// twice; each move of a plan's date is told once; a new plan after a reopen
// is told; the survey once per case.
func TestEveryStepExactlyOnce(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.start() // a second replica on the same durable consumer
	p := person{id: "cus_once", email: "once@example.com", locale: "en", contact: true, survey: true}
	fid := bus.NewID()
	upd := bus.UpdatedSubject("billing")

	plan := p.status(fid, "billing", ackS, plannedS, planned(may30, "Soon."))
	toJun6 := p.status(fid, "billing", plannedS, plannedS, moved(may30, jun6))
	resolved := p.status(fid, "billing", plannedS, resolveS, nil)
	closed1 := p.closed(fid, 1, "billing")
	for _, m := range []struct {
		subject string
		ev      *feedloopv1.Event
	}{
		{upd, plan}, {upd, toJun6}, {upd, resolved}, {bus.SubjectClosed, closed1},
	} {
		e.publish(m.subject, m.ev)
		e.redeliver(m.subject, m.ev, "replay-a-"+m.ev.GetId())
		e.redeliver(m.subject, m.ev, "replay-b-"+m.ev.GetId())
	}
	// Other events asking for steps already told.
	e.publish(upd, p.status(fid, "billing", reopenS, plannedS, planned(may30, "Again."))) // a new plan after a reopen: news
	e.publish(upd, p.status(fid, "billing", plannedS, plannedS, moved(may30, jun6)))      // moved to that date again: news
	e.publish(bus.SubjectClosed, p.closed(fid, 1, "billing"))                             // a replayed first close
	e.publish(bus.SubjectClosed, p.closed(fid, 2, "billing"))                             // closed again after a reopen
	// Every move is news, once, even back to a date told before.
	e.publish(upd, p.status(fid, "billing", plannedS, plannedS, moved(jun6, jun13)))
	e.publish(upd, p.status(fid, "billing", plannedS, plannedS, moved(jun13, jun13.AddDate(0, 0, 7))))
	e.publish(upd, p.status(fid, "billing", plannedS, plannedS, moved(jun13.AddDate(0, 0, 7), jun6)))
	e.idle()

	want := map[string]int{"planned": 2, "plan_changed": 5, "resolved": 1, "survey": 1}
	got := map[string]int{}
	for step, hs := range e.byStep("/customer", fid) {
		got[step] = len(hs)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("customer webhook got %v, want %v", got, want)
	}
	if n := len(e.smtp.To(p.email)); n != 9 {
		t.Errorf("customer got %d emails, want 9: %q", n, e.emailSubjects(p.email))
	}
	var dates []string
	for _, h := range e.byStep("/customer", fid)["plan_changed"] {
		dates = append(dates, h.payload.DueAt.Format(time.DateOnly))
	}
	sort.Strings(dates)
	if strings.Join(dates, ",") != "2025-06-06,2025-06-06,2025-06-06,2025-06-13,2025-06-20" {
		t.Errorf("plan changes told for %v", dates)
	}
	steps := countSteps(e.notified(fid))
	if steps[feedloopv1.Step_STEP_SURVEY] != 2 || steps[feedloopv1.Step_STEP_PLAN_CHANGED] != 10 || steps[feedloopv1.Step_STEP_PLANNED] != 4 {
		t.Errorf("notified steps = %v, want one record per channel and message", steps)
	}
}

func TestEscalationAndReopenAlerts(t *testing.T) {
	e := newEnv(t)
	e.start()
	p := person{id: "cus_esc", email: "esc@example.com", locale: "de", contact: true, survey: true}
	fid := bus.NewID()
	esc := bus.EscalatedSubject("billing")

	e.publish(esc, p.escalated(fid, "billing", feedloopv1.EscalationKind_ESCALATION_KIND_WARNING, 0, "support"))
	breach := p.escalated(fid, "billing", feedloopv1.EscalationKind_ESCALATION_KIND_BREACH, 1, "support")
	e.publish(esc, breach)
	e.redeliver(esc, breach, "replay-breach")
	e.publish(bus.UpdatedSubject("billing"), p.status(fid, "billing", resolveS, reopenS, func(sc *feedloopv1.StatusChanged) {
		sc.Actor, sc.Reason = "customer", "CSAT 1: still charged twice"
	}))
	e.eventually("warning, breach and reopened alerts to billing; breach to support", func() bool {
		return len(e.hooks.at("/team/billing", fid)) == 3 && len(e.hooks.at("/team/default", fid)) == 1
	})
	e.idle()

	billing := e.byStep("/team/billing", fid)
	if len(billing["escalated"]) != 2 || len(billing["reopened"]) != 1 {
		t.Fatalf("billing got %v", keys(billing))
	}
	var warning, breachAlert hook
	for _, h := range billing["escalated"] {
		if h.payload.Escalation != nil && h.payload.Escalation.Kind == "warning" {
			warning = h
		} else {
			breachAlert = h
		}
	}
	if !strings.Contains(warning.payload.Message.Subject, "SLA at risk (acknowledge)") || warning.payload.Escalation.Level != 0 {
		t.Errorf("warning = %q %+v", warning.payload.Message.Subject, warning.payload.Escalation)
	}
	if !strings.HasPrefix(breachAlert.payload.Message.Subject, "[billing] [high] SLA breached (acknowledge)") || !strings.Contains(breachAlert.payload.Message.Text, "escalated to support") {
		t.Errorf("breach = %q\n%s", breachAlert.payload.Message.Subject, breachAlert.payload.Message.Text)
	}
	if strings.Contains(string(breachAlert.body), "4111") {
		t.Error("the alert leaks the unredacted text")
	}
	target := e.hooks.at("/team/default", fid)[0].payload
	if target.Step != "escalated" || target.Team != "billing" || target.Escalation == nil || target.Escalation.EscalateTo != "support" || target.Escalation.Kind != "breach" {
		t.Errorf("escalation target got %+v", target)
	}
	if r := billing["reopened"][0].payload; r.Actor != "customer" || r.Reason != "CSAT 1: still charged twice" || !strings.HasPrefix(r.Message.Subject, "[billing] Reopened by customer") {
		t.Errorf("reopened = %+v", r)
	}
	teams := map[string]int{}
	for _, n := range e.notified(fid) {
		if n.GetNotified().GetStep() == feedloopv1.Step_STEP_ESCALATED {
			teams[n.GetNotified().GetTeam()]++
		}
	}
	if teams["billing"] != 2 || teams["support"] != 1 {
		t.Errorf("escalation records by team = %v", teams)
	}
	if n := len(e.hooks.at("/customer", fid)) + len(e.smtp.To(p.email)); n != 0 {
		t.Errorf("the customer got %d messages about escalations", n)
	}
}

// Over the daily cap, messages are held and sent the next day in one
// digest, once, though two replicas look for due digests.
func TestDailyCapDigest(t *testing.T) {
	e := newEnv(t)
	clk := testkit.NewClock(time.Date(2025, 3, 14, 22, 0, 0, 0, time.UTC))
	e.opts = append(e.opts, notifier.WithClock(clk.Now))
	e.cfg.CustomerDailyCap = 2
	e.cfg.DigestDelay = 5 * time.Minute
	e.cfg.DigestPoll = 20 * time.Millisecond
	e.start()
	e.start()
	p := person{id: "cus_cap", email: "cap@example.com", name: "Cap", locale: "de", contact: true, survey: true}
	// Another customer with the same email address but another id has an
	// allowance of their own: the id is the identity.
	other := person{id: "cus_other", email: "cap@example.com", locale: "de", contact: true}

	a, b := bus.NewID(), bus.NewID()
	e.publish(bus.SubjectReceived, p.received(a))
	e.eventually("the first acknowledgement", func() bool { return len(e.hooks.at("/customer", a)) == 1 })
	e.publish(bus.SubjectReceived, p.received(b))
	e.eventually("the second acknowledgement", func() bool { return len(e.hooks.at("/customer", b)) == 1 })
	// Over the cap from here.
	plan := p.status(a, "billing", ackS, plannedS, planned(may30, "Soon."))
	e.publish(bus.UpdatedSubject("billing"), plan)
	e.redeliver(bus.UpdatedSubject("billing"), plan, "replay-plan")
	e.publish(bus.UpdatedSubject("billing"), p.status(a, "billing", plannedS, resolveS, func(sc *feedloopv1.StatusChanged) { sc.CustomerMessage = "Refunded." }))
	e.publish(bus.UpdatedSubject("product"), p.status(b, "product", ackS, declineS, func(sc *feedloopv1.StatusChanged) { sc.Reason = "Not planned." }))
	c := bus.NewID()
	e.publish(bus.SubjectReceived, other.received(c))
	e.eventually("the other customer's acknowledgement", func() bool { return len(e.hooks.at("/customer", c)) == 1 })
	e.idle()

	if n := len(e.hooks.at("/customer", a)) + len(e.hooks.at("/customer", b)); n != 2 {
		t.Fatalf("customer webhook got %d messages, want 2 (the cap)", n)
	}
	if n := len(e.hooks.at("/customer", c)); n != 1 {
		t.Errorf("the other customer got %d messages, want 1", n)
	}
	if n := len(e.smtp.To(p.email)); n != 3 { // two for p, one for other
		t.Fatalf("%d emails, want 3", n)
	}
	digestsAt := func() []hook {
		var out []hook
		for _, h := range e.hooks.all() {
			if h.payload.Step == "digest" {
				out = append(out, h)
			}
		}
		return out
	}
	// One digest is scheduled, at the delay after the day ends.
	due, err := e.rdb.ZRangeWithScores(context.Background(), "notify:digest:due", 0, -1).Result()
	if err != nil || len(due) != 1 || int64(due[0].Score) != time.Date(2025, 3, 15, 0, 5, 0, 0, time.UTC).UnixMilli() {
		t.Fatalf("scheduled digests = %v, %v; want one at 00:05 UTC", due, err)
	}
	if len(digestsAt()) != 0 {
		t.Fatal("digest sent before its time")
	}

	clk.Set(time.Date(2025, 3, 15, 0, 6, 0, 0, time.UTC))
	e.eventually("the digest by webhook and email", func() bool {
		return len(digestsAt()) == 1 && len(e.smtp.To(p.email)) == 4
	})
	// Once retired, the digest cannot be sent again by any replica.
	e.eventually("the digest to be retired", func() bool {
		n, err := e.rdb.ZCard(context.Background(), "notify:digest:due").Result()
		return err == nil && n == 0
	})
	if n := len(digestsAt()); n != 1 {
		t.Fatalf("%d digests by webhook, want 1", n)
	}
	if n := len(e.smtp.To(p.email)); n != 4 {
		t.Fatalf("%d emails, want 4 (one digest)", n)
	}
	d := digestsAt()[0].payload
	if d.Audience != "customer" || d.Customer.ID != "cus_cap" || len(d.Digest) != 3 {
		t.Fatalf("digest payload = %+v", d)
	}
	var subjects []string
	for _, it := range d.Digest {
		subjects = append(subjects, it.Subject)
		if it.Text == "" {
			t.Errorf("digest item %q has no text", it.Subject)
		}
	}
	sort.Strings(subjects)
	if want := "Erledigt: Charged twice|Wir haben einen Plan: Charged twice|Zu Ihrem Feedback: Charged twice"; strings.Join(subjects, "|") != want {
		t.Errorf("digest lists %q, want %q", subjects, want)
	}
	if !strings.HasPrefix(d.Message.Subject, "Die Neuigkeiten von heute zu Ihrem Feedback (3)") || !strings.Contains(d.Message.Text, "Refunded.") || !strings.Contains(d.Message.Text, "Not planned.") {
		t.Errorf("digest message = %q\n%s", d.Message.Subject, d.Message.Text)
	}
	// Each held message is recorded as told by the digest, under its own item and team.
	var records []string
	for _, fid := range []string{a, b} {
		for _, n := range e.notified(fid) {
			if got := n.GetNotified(); got.GetStep() == feedloopv1.Step_STEP_DIGEST && got.GetChannel() == "webhook" {
				records = append(records, fid+"/"+got.GetTeam())
			}
		}
	}
	sort.Strings(records)
	wantRecords := []string{a + "/billing", a + "/billing", b + "/product"}
	sort.Strings(wantRecords)
	if strings.Join(records, " ") != strings.Join(wantRecords, " ") {
		t.Errorf("digest records = %v, want %v", records, wantRecords)
	}

	// A new day, a new allowance.
	next := bus.NewID()
	e.publish(bus.SubjectReceived, p.received(next))
	e.eventually("the next day's acknowledgement", func() bool { return len(e.hooks.at("/customer", next)) == 1 })
}
