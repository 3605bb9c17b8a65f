package assign

import (
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router/routing"
)

const routes = `
route:
  team: triage
  sla: {acknowledge: 8h, resolve: 72h}
  escalate: [{team: support-escalations, after: 0s}]
  routes:
    - name: cs
      team: customer-success
      matchers: ['nps_band="detractor"']
      continue: true
      priority: high
      sla: {acknowledge: 1h}
    - name: billing
      team: billing
      matchers: ['topic="billing"']
      escalate:
        - {team: support-escalations, after: 0s}
        - {team: customer-success, after: 4h}
    - name: fyi
      escalate: []
      team: marketing
      matchers: ['sentiment="positive"']
      priority: low
      sla: {acknowledge: 0s, resolve: 0s}
`

var occurred = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)

func tree(t *testing.T) *routing.Tree {
	t.Helper()
	tr, err := routing.Parse([]byte(routes))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func classified(topic string, band feedloopv1.NpsBand, s feedloopv1.Sentiment) *feedloopv1.Event {
	c := &feedloopv1.Classification{NpsBand: band, Sentiment: s}
	if topic != "" {
		c.Topics = []*feedloopv1.TopicScore{{Topic: topic, Confidence: 0.9}}
	}
	return &feedloopv1.Event{
		Id:         "ev-1",
		FeedbackId: "fb-1",
		OccurredAt: timestamppb.New(occurred),
		Payload: &feedloopv1.Event_Classified{Classified: &feedloopv1.Classified{
			Feedback:       &feedloopv1.Feedback{Id: "fb-1", Text: "charged twice"},
			Classification: c,
		}},
	}
}

func TestRouteFanOut(t *testing.T) {
	in := classified("billing", feedloopv1.NpsBand_NPS_BAND_DETRACTOR, 0)
	out, err := Route(in, tree(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		subject, team, route string
		prio                 feedloopv1.Priority
		ack, resolve         time.Duration
		escalation           string
	}{
		{"feedback.routed.customer-success", "customer-success", "root/cs", feedloopv1.Priority_PRIORITY_HIGH, time.Hour, 72 * time.Hour, "support-escalations+0s"},
		{"feedback.routed.billing", "billing", "root/billing", feedloopv1.Priority_PRIORITY_NORMAL, 8 * time.Hour, 72 * time.Hour, "support-escalations+0s,customer-success+4h0m0s"},
	}
	if len(out) != len(want) {
		t.Fatalf("got %d events, want %d: %v", len(out), len(want), out)
	}
	for i, w := range want {
		o := out[i]
		if o.Subject != w.subject {
			t.Errorf("[%d] subject = %s, want %s", i, o.Subject, w.subject)
		}
		if id := bus.DeriveID("ev-1", "routed", w.team); o.Event.GetId() != id {
			t.Errorf("[%d] id = %s, want DeriveID(input, routed, team) = %s", i, o.Event.GetId(), id)
		}
		if o.Event.GetFeedbackId() != "fb-1" || !o.Event.GetOccurredAt().AsTime().Equal(occurred) {
			t.Errorf("[%d] feedback id %q, occurred_at %v", i, o.Event.GetFeedbackId(), o.Event.GetOccurredAt().AsTime())
		}
		r := o.Event.GetRouted()
		if !proto.Equal(r.GetFeedback(), in.GetClassified().GetFeedback()) || !proto.Equal(r.GetClassification(), in.GetClassified().GetClassification()) {
			t.Errorf("[%d] routed event does not carry the feedback and classification", i)
		}
		a := r.GetAssignment()
		if a.GetTeam() != w.team || a.GetRoute() != w.route || a.GetPriority() != w.prio {
			t.Errorf("[%d] assignment = %v, want %s %s %v", i, a, w.team, w.route, w.prio)
		}
		if got := a.GetAcknowledgeBy().AsTime(); !got.Equal(occurred.Add(w.ack)) {
			t.Errorf("[%d] acknowledge_by = %v, want %v", i, got, occurred.Add(w.ack))
		}
		if got := a.GetResolveBy().AsTime(); !got.Equal(occurred.Add(w.resolve)) {
			t.Errorf("[%d] resolve_by = %v, want %v", i, got, occurred.Add(w.resolve))
		}
		if got := chain(a); got != w.escalation {
			t.Errorf("[%d] escalation = %s, want %s", i, got, w.escalation)
		}
	}
	if ids := []string{out[0].Event.GetId(), out[1].Event.GetId()}; ids[0] == ids[1] {
		t.Errorf("two teams got the same event id %s", ids[0])
	}
}

func TestRouteIsDeterministic(t *testing.T) {
	in := classified("billing", feedloopv1.NpsBand_NPS_BAND_DETRACTOR, 0)
	a, err := Route(in, tree(t))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Route(proto.Clone(in).(*feedloopv1.Event), tree(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if !proto.Equal(a[i].Event, b[i].Event) {
			t.Errorf("[%d] second run differs:\n%v\n%v", i, a[i].Event, b[i].Event)
		}
	}
	// Another input event gets other ids.
	in.Id = "ev-2"
	c, _ := Route(in, tree(t))
	if c[0].Event.GetId() == a[0].Event.GetId() {
		t.Error("a different input event reused the output id")
	}
}

func TestRouteDefaultTeamAndNoDeadline(t *testing.T) {
	out, err := Route(classified("", 0, 0), tree(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].Subject != "feedback.routed.triage" || out[0].Match.Route != "root" {
		t.Fatalf("unclassified item: got %v, want one event to triage", out)
	}
	out, err = Route(classified("", 0, feedloopv1.Sentiment_SENTIMENT_POSITIVE), tree(t))
	if err != nil {
		t.Fatal(err)
	}
	a := out[0].Event.GetRouted().GetAssignment()
	if a.GetTeam() != "marketing" || a.AcknowledgeBy != nil || a.ResolveBy != nil {
		t.Errorf("zero SLA should leave deadlines unset, got %v", a)
	}
	if a.Escalation != nil {
		t.Errorf("escalate: [] should leave the chain empty, got %v", a.Escalation)
	}
}

// chain renders an assignment's escalation as team+after,... .
func chain(a *feedloopv1.Assignment) string {
	var parts []string
	for _, s := range a.GetEscalation() {
		parts = append(parts, s.GetTeam()+"+"+s.GetAfter().AsDuration().String())
	}
	return strings.Join(parts, ",")
}

func TestRouteFeedbackIDFallsBackToFeedback(t *testing.T) {
	in := classified("billing", 0, 0)
	in.FeedbackId = ""
	out, err := Route(in, tree(t))
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Event.GetFeedbackId() != "fb-1" {
		t.Errorf("feedback id = %q, want fb-1 from the feedback", out[0].Event.GetFeedbackId())
	}
}

func TestRouteRejects(t *testing.T) {
	noFeedback := classified("billing", 0, 0)
	noFeedback.GetClassified().Feedback = nil
	noTime := classified("billing", 0, 0)
	noTime.OccurredAt = nil
	noID := classified("billing", 0, 0)
	noID.FeedbackId = ""
	noID.GetClassified().GetFeedback().Id = ""
	received := &feedloopv1.Event{Id: "x", Payload: &feedloopv1.Event_Received{Received: &feedloopv1.Received{}}}
	for name, tc := range map[string]struct {
		in   *feedloopv1.Event
		want error
	}{
		"received payload": {received, ErrNotClassified},
		"no feedback":      {noFeedback, ErrMalformed},
		"no occurred_at":   {noTime, ErrMalformed},
		"no feedback id":   {noID, ErrMalformed},
	} {
		if _, err := Route(tc.in, tree(t)); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.want)
		}
	}
}
