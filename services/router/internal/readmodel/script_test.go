package readmodel_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router/internal/readmodel"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func at(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(t0.Add(d)) }

// script builds a stream of lifecycle events in order, as the services
// would publish them, each with the subject it goes out on.
type script struct {
	events   []*feedloopv1.Event
	subjects []string
}

type sla struct{ ack, resolve time.Duration }

var defaultSLA = sla{time.Hour, 24 * time.Hour}

func (s *script) add(subject, fbID string, d time.Duration, p any) *feedloopv1.Event {
	ev := &feedloopv1.Event{
		Id:         fmt.Sprintf("%s/%d", fbID, len(s.events)),
		FeedbackId: fbID,
		OccurredAt: at(d),
	}
	switch p := p.(type) {
	case *feedloopv1.Received:
		ev.Payload = &feedloopv1.Event_Received{Received: p}
	case *feedloopv1.Classified:
		ev.Payload = &feedloopv1.Event_Classified{Classified: p}
	case *feedloopv1.Routed:
		ev.Payload = &feedloopv1.Event_Routed{Routed: p}
	case *feedloopv1.StatusChanged:
		ev.Payload = &feedloopv1.Event_StatusChanged{StatusChanged: p}
	case *feedloopv1.Escalated:
		ev.Payload = &feedloopv1.Event_Escalated{Escalated: p}
	case *feedloopv1.Commented:
		ev.Payload = &feedloopv1.Event_Commented{Commented: p}
	case *feedloopv1.Replied:
		ev.Payload = &feedloopv1.Event_Replied{Replied: p}
	case *feedloopv1.Closed:
		ev.Payload = &feedloopv1.Event_Closed{Closed: p}
	case *feedloopv1.Notified:
		ev.Payload = &feedloopv1.Event_Notified{Notified: p}
	default:
		panic(fmt.Sprintf("unknown payload %T", p))
	}
	s.events = append(s.events, ev)
	s.subjects = append(s.subjects, subject)
	return ev
}

func feedback(id, customerID, email string, d time.Duration) *feedloopv1.Feedback {
	return &feedloopv1.Feedback{
		Id:         id,
		Source:     "helpdesk",
		Text:       "I was charged twice, call me on 555-0100\nThanks, Ann",
		Customer:   &feedloopv1.Customer{Id: customerID, Email: email, Consent: &feedloopv1.Consent{Contact: true, Survey: true}},
		ReceivedAt: at(d),
	}
}

func classification() *feedloopv1.Classification {
	return &feedloopv1.Classification{
		Topics:       []*feedloopv1.TopicScore{{Topic: "billing", Confidence: 0.9}, {Topic: "app", Confidence: 0.4}},
		Sentiment:    feedloopv1.Sentiment_SENTIMENT_NEGATIVE,
		RedactedText: "I was charged twice, call me on [PHONE]\nThanks, Ann",
	}
}

// receive publishes Received and Classified for a new item.
func (s *script) receive(id, customerID, email string, d time.Duration) *feedloopv1.Feedback {
	fb := feedback(id, customerID, email, d)
	s.add(bus.SubjectReceived, id, d, &feedloopv1.Received{Feedback: fb, StatusToken: "tok-" + id})
	s.add(bus.SubjectClassified, id, d+time.Second, &feedloopv1.Classified{Feedback: fb, Classification: classification()})
	return fb
}

func (s *script) route(fb *feedloopv1.Feedback, team string, d time.Duration, sl sla, from string) {
	a := &feedloopv1.Assignment{Team: team, Route: team + "-route", Priority: feedloopv1.Priority_PRIORITY_NORMAL, ReroutedFrom: from}
	if sl.ack > 0 {
		a.AcknowledgeBy = at(d + sl.ack)
	}
	if sl.resolve > 0 {
		a.ResolveBy = at(d + sl.resolve)
	}
	s.add(bus.RoutedSubject(team), fb.GetId(), d, &feedloopv1.Routed{Feedback: fb, Classification: classification(), Assignment: a})
}

func (s *script) change(id, team string, from, to feedloopv1.Status, d time.Duration, edit ...func(*feedloopv1.StatusChanged)) {
	sc := &feedloopv1.StatusChanged{Team: team, From: from, To: to, Actor: team + "-agent", StatusToken: "tok-" + id}
	for _, e := range edit {
		e(sc)
	}
	s.add(bus.UpdatedSubject(team), id, d, sc)
}

func (s *script) notify(id, team string, step feedloopv1.Step, d time.Duration) {
	s.add(bus.SubjectNotified, id, d, &feedloopv1.Notified{Step: step, Audience: "customer", Channel: "email", Recipient: "ann@example.com", Team: team})
}

func (s *script) escalate(id, team string, kind feedloopv1.EscalationKind, level int32, d time.Duration) {
	s.add(bus.EscalatedSubject(team), id, d, &feedloopv1.Escalated{Team: team, Level: level, Kind: kind, Deadline: "acknowledge", EscalateTo: team + "-leads", DueAt: at(d)})
}

const (
	routedSt   = feedloopv1.Status_STATUS_ROUTED
	ackSt      = feedloopv1.Status_STATUS_ACKNOWLEDGED
	plannedSt  = feedloopv1.Status_STATUS_PLANNED
	resolvedSt = feedloopv1.Status_STATUS_RESOLVED
	declinedSt = feedloopv1.Status_STATUS_DECLINED
	reroutedSt = feedloopv1.Status_STATUS_REROUTED
	reopenedSt = feedloopv1.Status_STATUS_REOPENED
)

// realistic is a day of three items across four teams: fan-out, plan,
// reroute, escalation, decline, close, a bad survey answer and a reopen.
func realistic() *script {
	s := &script{}
	a := s.receive("fb-a", "c-1", "ann@example.com", 0)
	s.route(a, "billing", 2*time.Second, defaultSLA, "")
	s.route(a, "product", 2*time.Second, defaultSLA, "")
	s.notify("fb-a", "", feedloopv1.Step_STEP_RECEIVED, 3*time.Second)
	b := s.receive("fb-b", "c-1", "ann@example.com", 5*time.Minute)
	s.route(b, "billing", 5*time.Minute+2*time.Second, defaultSLA, "")
	s.change("fb-a", "billing", routedSt, ackSt, 10*time.Minute)
	s.add(bus.UpdatedSubject("product"), "fb-a", 15*time.Minute, &feedloopv1.Commented{Team: "product", Actor: "pat", Text: "not ours"})
	s.change("fb-a", "billing", ackSt, plannedSt, 20*time.Minute, func(sc *feedloopv1.StatusChanged) {
		sc.CustomerMessage, sc.DueAt = "refund by Thursday", at(72*time.Hour)
	})
	s.notify("fb-a", "billing", feedloopv1.Step_STEP_PLANNED, 21*time.Minute)
	s.change("fb-a", "product", routedSt, reroutedSt, 30*time.Minute, func(sc *feedloopv1.StatusChanged) {
		sc.Reason, sc.RerouteTo = "a delivery problem", "logistics"
	})
	s.route(a, "logistics", 30*time.Minute, sla{ack: time.Hour}, "product")
	c := s.receive("fb-c", "", "Dan@Example.COM", 40*time.Minute)
	s.route(c, "product", 40*time.Minute+2*time.Second, sla{}, "")
	s.escalate("fb-a", "logistics", feedloopv1.EscalationKind_ESCALATION_KIND_WARNING, 0, 75*time.Minute)
	s.escalate("fb-a", "logistics", feedloopv1.EscalationKind_ESCALATION_KIND_BREACH, 1, 90*time.Minute)
	s.change("fb-a", "logistics", routedSt, ackSt, 2*time.Hour)
	s.change("fb-b", "billing", routedSt, declinedSt, 2*time.Hour, func(sc *feedloopv1.StatusChanged) {
		sc.Reason = "the second charge is a pre-authorisation"
	})
	s.notify("fb-b", "billing", feedloopv1.Step_STEP_DECLINED, 2*time.Hour+time.Second)
	s.add(bus.SubjectClosed, "fb-b", 2*time.Hour+time.Second, &feedloopv1.Closed{Teams: []string{"billing"}, Round: 1})
	s.notify("fb-b", "", feedloopv1.Step_STEP_SURVEY, 2*time.Hour+2*time.Second)
	s.add(bus.UpdatedSubject("billing"), "fb-b", 3*time.Hour, &feedloopv1.Replied{Team: "billing", ReplyFeedbackId: "fb-b-reply", Csat: 2, Text: "not happy", Reopened: true})
	s.change("fb-b", "billing", declinedSt, reopenedSt, 3*time.Hour)
	s.change("fb-a", "billing", plannedSt, resolvedSt, 4*time.Hour, func(sc *feedloopv1.StatusChanged) {
		sc.CustomerMessage = "refunded"
	})
	s.notify("fb-a", "billing", feedloopv1.Step_STEP_RESOLVED, 4*time.Hour+time.Second)
	return s
}

// store returns a Store on a fresh Redis, and the client.
func store(t testing.TB, opts ...readmodel.Option) (*readmodel.Store, *redis.Client) {
	t.Helper()
	rdb := testkit.RedisClient(t)
	s, err := readmodel.New(rdb, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s, rdb
}

func applyAll(t testing.TB, s *readmodel.Store, evs []*feedloopv1.Event) {
	t.Helper()
	for _, ev := range evs {
		if _, err := s.Apply(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
}

func dump(t testing.TB, s *readmodel.Store) map[string]string {
	t.Helper()
	d, err := s.Dump(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// diffDumps describes how got differs from want, "" when equal.
func diffDumps(got, want map[string]string) string {
	var out string
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			out += fmt.Sprintf("missing %s\n", k)
		case g != w:
			out += fmt.Sprintf("%s:\n got: %s\nwant: %s\n", k, g, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			out += fmt.Sprintf("extra %s = %s\n", k, got[k])
		}
	}
	return out
}
