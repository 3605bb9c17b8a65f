package projection_test

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router/internal/projection"
)

const id = "fb-1"

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func at(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(t0.Add(d)) }

func fb() *feedloopv1.Feedback {
	return &feedloopv1.Feedback{
		Id:         id,
		Source:     "helpdesk",
		Text:       "Call me on 555-0100, you charged me twice",
		Customer:   &feedloopv1.Customer{Id: "c-1", Email: "Ann@Example.com"},
		ReceivedAt: at(0),
	}
}

func cl() *feedloopv1.Classification {
	return &feedloopv1.Classification{
		Topics:       []*feedloopv1.TopicScore{{Topic: "billing", Confidence: 0.9}},
		Sentiment:    feedloopv1.Sentiment_SENTIMENT_NEGATIVE,
		RedactedText: "Call me on [PHONE], you charged me twice",
	}
}

func ev(evID string, d time.Duration, p any) *feedloopv1.Event {
	e := &feedloopv1.Event{Id: evID, FeedbackId: id, OccurredAt: at(d)}
	switch p := p.(type) {
	case *feedloopv1.Received:
		e.Payload = &feedloopv1.Event_Received{Received: p}
	case *feedloopv1.Classified:
		e.Payload = &feedloopv1.Event_Classified{Classified: p}
	case *feedloopv1.Routed:
		e.Payload = &feedloopv1.Event_Routed{Routed: p}
	case *feedloopv1.StatusChanged:
		e.Payload = &feedloopv1.Event_StatusChanged{StatusChanged: p}
	case *feedloopv1.Escalated:
		e.Payload = &feedloopv1.Event_Escalated{Escalated: p}
	case *feedloopv1.Commented:
		e.Payload = &feedloopv1.Event_Commented{Commented: p}
	case *feedloopv1.Replied:
		e.Payload = &feedloopv1.Event_Replied{Replied: p}
	case *feedloopv1.Closed:
		e.Payload = &feedloopv1.Event_Closed{Closed: p}
	case *feedloopv1.Notified:
		e.Payload = &feedloopv1.Event_Notified{Notified: p}
	case nil:
	default:
		panic("unknown payload")
	}
	return e
}

func receivedEv() *feedloopv1.Event {
	return ev("e-rcv", 0, &feedloopv1.Received{Feedback: fb(), StatusToken: "tok-1"})
}

func classifiedEv() *feedloopv1.Event {
	return ev("e-cls", time.Second, &feedloopv1.Classified{Feedback: fb(), Classification: cl()})
}

func routedEv(team string) *feedloopv1.Event {
	return ev("e-rt-"+team, time.Second, &feedloopv1.Routed{
		Feedback:       fb(),
		Classification: cl(),
		Assignment: &feedloopv1.Assignment{
			Team:          team,
			Route:         "billing-disputes",
			Priority:      feedloopv1.Priority_PRIORITY_HIGH,
			AcknowledgeBy: at(time.Hour),
			ResolveBy:     at(24 * time.Hour),
			Escalation:    []*feedloopv1.EscalationStep{{Team: "billing-leads", After: durationpb.New(time.Hour)}},
		},
	})
}

func changed(evID string, d time.Duration, sc *feedloopv1.StatusChanged) *feedloopv1.Event {
	if sc.Team == "" {
		sc.Team = "billing"
	}
	return ev(evID, d, sc)
}

// base is an item received, classified and routed to billing.
func base() []*feedloopv1.Event {
	return []*feedloopv1.Event{receivedEv(), classifiedEv(), routedEv("billing")}
}

func fold(t *testing.T, evs ...*feedloopv1.Event) *feedloopv1.Item {
	t.Helper()
	item := &feedloopv1.Item{}
	for _, e := range evs {
		if !projection.Apply(item, e) {
			t.Fatalf("Apply(%s) = false while building the item", e.GetId())
		}
	}
	return item
}

func last(item *feedloopv1.Item) *feedloopv1.TimelineEntry {
	return item.Timeline[len(item.Timeline)-1]
}

func billing(t *testing.T, item *feedloopv1.Item) *feedloopv1.AssignmentState {
	t.Helper()
	a := projection.Assignment(item, "billing")
	if a == nil {
		t.Fatal("no billing assignment")
	}
	return a
}

func wantTime(t *testing.T, what string, got, want *timestamppb.Timestamp) {
	t.Helper()
	if !proto.Equal(got, want) {
		t.Errorf("%s = %v, want %v", what, got.AsTime(), want.AsTime())
	}
}

func TestApply(t *testing.T) {
	tests := []struct {
		name  string
		prior []*feedloopv1.Event
		ev    *feedloopv1.Event
		check func(t *testing.T, item *feedloopv1.Item)
	}{
		{
			name: "received keeps the text as received until classified",
			ev:   receivedEv(),
			check: func(t *testing.T, item *feedloopv1.Item) {
				if item.FeedbackId != id || item.StatusToken != "tok-1" {
					t.Errorf("id, token = %q, %q", item.FeedbackId, item.StatusToken)
				}
				if item.Feedback.GetText() != fb().Text {
					t.Errorf("text = %q", item.Feedback.GetText())
				}
				wantTime(t, "received_at", item.ReceivedAt, at(0))
				if e := last(item); e.Kind != feedloopv1.TimelineKind_TIMELINE_KIND_RECEIVED || e.Internal || e.EventId != "e-rcv" {
					t.Errorf("timeline = %v", e)
				}
			},
		},
		{
			name:  "classified redacts the text",
			prior: []*feedloopv1.Event{receivedEv()},
			ev:    classifiedEv(),
			check: func(t *testing.T, item *feedloopv1.Item) {
				if got := item.Feedback.GetText(); got != cl().RedactedText {
					t.Errorf("text = %q, want the redacted text", got)
				}
				if !proto.Equal(item.Classification, cl()) {
					t.Errorf("classification = %v", item.Classification)
				}
				if len(item.Timeline) != 1 {
					t.Errorf("classified added a timeline entry: %v", item.Timeline)
				}
			},
		},
		{
			name:  "routed adds the team's share",
			prior: []*feedloopv1.Event{receivedEv(), classifiedEv()},
			ev:    routedEv("billing"),
			check: func(t *testing.T, item *feedloopv1.Item) {
				want := &feedloopv1.AssignmentState{
					Team: "billing", Route: "billing-disputes", Priority: feedloopv1.Priority_PRIORITY_HIGH,
					Status: feedloopv1.Status_STATUS_ROUTED, RoutedAt: at(time.Second),
					AcknowledgeBy: at(time.Hour), ResolveBy: at(24 * time.Hour), DueAt: at(time.Hour),
					Escalation: []*feedloopv1.EscalationStep{{Team: "billing-leads", After: durationpb.New(time.Hour)}},
				}
				if got := billing(t, item); !proto.Equal(got, want) {
					t.Errorf("assignment =\n%v\nwant\n%v", got, want)
				}
				if e := last(item); e.Kind != feedloopv1.TimelineKind_TIMELINE_KIND_ROUTED || e.Target != "billing" || e.Team != "billing" {
					t.Errorf("timeline = %v", e)
				}
			},
		},
		{
			name: "routed first creates the item with redacted feedback and classification",
			ev:   routedEv("billing"),
			check: func(t *testing.T, item *feedloopv1.Item) {
				if item.FeedbackId != id || item.Feedback.GetText() != cl().RedactedText || item.Classification == nil {
					t.Errorf("item = %v", item)
				}
				wantTime(t, "received_at", item.ReceivedAt, at(0))
			},
		},
		{
			name:  "routed again replaces the share in place",
			prior: append(base(), routedEv("product"), changed("e-ack", time.Minute, &feedloopv1.StatusChanged{To: feedloopv1.Status_STATUS_ACKNOWLEDGED})),
			ev: ev("e-back", time.Hour, &feedloopv1.Routed{Assignment: &feedloopv1.Assignment{
				Team: "billing", Route: "reroute", ResolveBy: at(48 * time.Hour), ReroutedFrom: "product",
			}}),
			check: func(t *testing.T, item *feedloopv1.Item) {
				if len(item.Assignments) != 2 || item.Assignments[0].Team != "billing" {
					t.Fatalf("assignments = %v", item.Assignments)
				}
				a := item.Assignments[0]
				if a.Status != feedloopv1.Status_STATUS_ROUTED || a.AcknowledgedAt != nil || a.ReroutedFrom != "product" || a.Route != "reroute" {
					t.Errorf("share = %v", a)
				}
				wantTime(t, "due_at (no ack deadline: resolve_by)", a.DueAt, at(48*time.Hour))
			},
		},
		{
			name:  "acknowledged",
			prior: base(),
			ev:    changed("e-ack", 10*time.Minute, &feedloopv1.StatusChanged{From: feedloopv1.Status_STATUS_ROUTED, To: feedloopv1.Status_STATUS_ACKNOWLEDGED, Actor: "bob"}),
			check: func(t *testing.T, item *feedloopv1.Item) {
				a := billing(t, item)
				if a.Status != feedloopv1.Status_STATUS_ACKNOWLEDGED {
					t.Errorf("status = %v", a.Status)
				}
				wantTime(t, "acknowledged_at", a.AcknowledgedAt, at(10*time.Minute))
				wantTime(t, "due_at", a.DueAt, at(24*time.Hour))
				e := last(item)
				if e.Kind != feedloopv1.TimelineKind_TIMELINE_KIND_STATUS_CHANGED || e.Actor != "bob" || e.From != feedloopv1.Status_STATUS_ROUTED || e.To != feedloopv1.Status_STATUS_ACKNOWLEDGED || e.Internal {
					t.Errorf("timeline = %v", e)
				}
			},
		},
		{
			name:  "planned",
			prior: base(),
			ev:    changed("e-plan", time.Hour, &feedloopv1.StatusChanged{To: feedloopv1.Status_STATUS_PLANNED, CustomerMessage: "refund on Friday", DueAt: at(96 * time.Hour)}),
			check: func(t *testing.T, item *feedloopv1.Item) {
				a := billing(t, item)
				wantTime(t, "planned_due_at", a.PlannedDueAt, at(96*time.Hour))
				wantTime(t, "due_at", a.DueAt, at(96*time.Hour))
				if a.CustomerMessage != "refund on Friday" {
					t.Errorf("customer_message = %q", a.CustomerMessage)
				}
				if e := last(item); e.Internal || e.CustomerMessage != "refund on Friday" || !proto.Equal(e.DueAt, at(96*time.Hour)) {
					t.Errorf("timeline = %v", e)
				}
			},
		},
		{
			name:  "resolved",
			prior: base(),
			ev:    changed("e-res", time.Hour, &feedloopv1.StatusChanged{To: feedloopv1.Status_STATUS_RESOLVED, CustomerMessage: "refunded"}),
			check: func(t *testing.T, item *feedloopv1.Item) {
				a := billing(t, item)
				wantTime(t, "closed_at", a.ClosedAt, at(time.Hour))
				if a.DueAt != nil || a.CustomerMessage != "refunded" {
					t.Errorf("share = %v", a)
				}
			},
		},
		{
			name:  "declined keeps the reason, visible to the customer",
			prior: base(),
			ev:    changed("e-dec", time.Hour, &feedloopv1.StatusChanged{To: feedloopv1.Status_STATUS_DECLINED, Reason: "not a billing error"}),
			check: func(t *testing.T, item *feedloopv1.Item) {
				a := billing(t, item)
				if a.Reason != "not a billing error" || a.ClosedAt == nil || a.DueAt != nil {
					t.Errorf("share = %v", a)
				}
				if e := last(item); e.Internal || e.Reason != "not a billing error" {
					t.Errorf("timeline = %v", e)
				}
			},
		},
		{
			name:  "rerouted is internal",
			prior: base(),
			ev:    changed("e-rr", time.Hour, &feedloopv1.StatusChanged{To: feedloopv1.Status_STATUS_REROUTED, Reason: "misclassified", RerouteTo: "product"}),
			check: func(t *testing.T, item *feedloopv1.Item) {
				a := billing(t, item)
				if a.ReroutedTo != "product" || a.Reason != "misclassified" || a.ClosedAt == nil || a.DueAt != nil {
					t.Errorf("share = %v", a)
				}
				if e := last(item); !e.Internal || e.Target != "product" {
					t.Errorf("timeline = %v", e)
				}
			},
		},
		{
			name: "reopened clears the close times",
			prior: append(base(),
				changed("e-res", time.Hour, &feedloopv1.StatusChanged{To: feedloopv1.Status_STATUS_RESOLVED}),
				ev("e-closed", time.Hour, &feedloopv1.Closed{Teams: []string{"billing"}, Round: 1})),
			ev: changed("e-reo", 2*time.Hour, &feedloopv1.StatusChanged{To: feedloopv1.Status_STATUS_REOPENED, Actor: "system"}),
			check: func(t *testing.T, item *feedloopv1.Item) {
				a := billing(t, item)
				if a.ClosedAt != nil || item.ClosedAt != nil {
					t.Errorf("closed_at still set: share %v, item %v", a.ClosedAt, item.ClosedAt)
				}
				wantTime(t, "due_at", a.DueAt, at(time.Hour))
				if item.CloseRounds != 1 {
					t.Errorf("close_rounds = %d", item.CloseRounds)
				}
			},
		},
		{
			name: "status change before routed creates a bare share",
			ev:   changed("e-ack", time.Minute, &feedloopv1.StatusChanged{To: feedloopv1.Status_STATUS_ACKNOWLEDGED, StatusToken: "tok-1"}),
			check: func(t *testing.T, item *feedloopv1.Item) {
				if a := billing(t, item); a.Status != feedloopv1.Status_STATUS_ACKNOWLEDGED {
					t.Errorf("share = %v", a)
				}
				if item.StatusToken != "tok-1" {
					t.Errorf("token = %q", item.StatusToken)
				}
			},
		},
		{
			name: "escalated keeps the highest breach level",
			prior: append(base(),
				ev("e-x2", 3*time.Hour, &feedloopv1.Escalated{Team: "billing", Level: 2, Kind: feedloopv1.EscalationKind_ESCALATION_KIND_BREACH})),
			ev: ev("e-x1", 2*time.Hour, &feedloopv1.Escalated{Team: "billing", Level: 1, EscalateTo: "billing-leads", Deadline: "acknowledge", DueAt: at(time.Hour), Kind: feedloopv1.EscalationKind_ESCALATION_KIND_BREACH}),
			check: func(t *testing.T, item *feedloopv1.Item) {
				if a := billing(t, item); a.EscalationLevel != 2 {
					t.Errorf("escalation_level = %d, want 2", a.EscalationLevel)
				}
				// Applied late, the level-1 entry still sorts before level 2.
				e := item.Timeline[len(item.Timeline)-2]
				if e.EventId != "e-x1" || !e.Internal || e.Target != "billing-leads" || e.Level != 1 || e.Reason != "acknowledge" {
					t.Errorf("timeline = %v", item.Timeline)
				}
			},
		},
		{
			name:  "a warning does not raise the level",
			prior: base(),
			ev:    ev("e-w", 30*time.Minute, &feedloopv1.Escalated{Team: "billing", Level: 0, Kind: feedloopv1.EscalationKind_ESCALATION_KIND_WARNING}),
			check: func(t *testing.T, item *feedloopv1.Item) {
				if a := billing(t, item); a.EscalationLevel != 0 {
					t.Errorf("escalation_level = %d", a.EscalationLevel)
				}
				if e := last(item); e.Kind != feedloopv1.TimelineKind_TIMELINE_KIND_ESCALATED || !e.Internal {
					t.Errorf("timeline = %v", e)
				}
			},
		},
		{
			name:  "commented is internal",
			prior: base(),
			ev:    ev("e-c", time.Minute, &feedloopv1.Commented{Team: "billing", Actor: "bob", Text: "looks like a double charge"}),
			check: func(t *testing.T, item *feedloopv1.Item) {
				if e := last(item); e.Kind != feedloopv1.TimelineKind_TIMELINE_KIND_COMMENT || !e.Internal || e.Text != "looks like a double charge" || e.Actor != "bob" {
					t.Errorf("timeline = %v", e)
				}
			},
		},
		{
			name:  "replied records the csat",
			prior: base(),
			ev:    ev("e-rep", time.Hour, &feedloopv1.Replied{Team: "billing", Csat: 1, Text: "still broken", Reopened: true}),
			check: func(t *testing.T, item *feedloopv1.Item) {
				if item.Csat != 1 {
					t.Errorf("csat = %d", item.Csat)
				}
				if e := last(item); e.Kind != feedloopv1.TimelineKind_TIMELINE_KIND_REPLIED || e.Level != 1 || e.Text != "still broken" || e.Internal {
					t.Errorf("timeline = %v", e)
				}
			},
		},
		{
			name:  "closed counts the round",
			prior: append(base(), ev("e-cl1", time.Hour, &feedloopv1.Closed{Round: 1})),
			ev:    ev("e-cl2", 5*time.Hour, &feedloopv1.Closed{Round: 2}),
			check: func(t *testing.T, item *feedloopv1.Item) {
				wantTime(t, "closed_at", item.ClosedAt, at(5*time.Hour))
				if item.CloseRounds != 2 || last(item).Kind != feedloopv1.TimelineKind_TIMELINE_KIND_CLOSED {
					t.Errorf("close_rounds = %d, timeline %v", item.CloseRounds, last(item))
				}
			},
		},
		{
			name:  "notified to the customer is visible",
			prior: base(),
			ev: ev("e-n", time.Hour, &feedloopv1.Notified{Step: feedloopv1.Step_STEP_RESOLVED, Audience: "customer", Team: "billing", Recipient: "ann@example.com",
				Subject: "Resolved: Charged twice", Text: "Hello Ann,\n\nbilling has resolved your feedback."}),
			check: func(t *testing.T, item *feedloopv1.Item) {
				if e := last(item); e.Kind != feedloopv1.TimelineKind_TIMELINE_KIND_NOTIFIED || e.Internal || e.Step != feedloopv1.Step_STEP_RESOLVED || e.Actor != "customer" || e.Team != "billing" {
					t.Errorf("timeline = %v", e)
				}
				// What the customer read, for the teams.
				if e := last(item); e.Subject != "Resolved: Charged twice" || e.Text != "Hello Ann,\n\nbilling has resolved your feedback." {
					t.Errorf("message = %q %q", e.Subject, e.Text)
				}
			},
		},
		{
			name:  "notified to a team is internal",
			prior: base(),
			ev:    ev("e-n", time.Hour, &feedloopv1.Notified{Step: feedloopv1.Step_STEP_ESCALATED, Audience: "team", Team: "billing"}),
			check: func(t *testing.T, item *feedloopv1.Item) {
				if e := last(item); !e.Internal {
					t.Errorf("timeline = %v", e)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			item := fold(t, tt.prior...)
			in := proto.Clone(tt.ev)
			if !projection.Apply(item, tt.ev) {
				t.Fatal("Apply = false")
			}
			if !proto.Equal(in, tt.ev) {
				t.Error("Apply changed the event")
			}
			tt.check(t, item)
		})
	}
}

// A classified event carrying the rest of its received event gives that
// event back: folded with the classified and routed events, the item is
// the one the stream's own received event gives.
func TestReceivedOfGivesTheReceivedEventBack(t *testing.T) {
	rcv := receivedEv()
	cls := classifiedEv()
	cls.GetClassified().Received = &feedloopv1.ReceivedRef{EventId: rcv.GetId(), OccurredAt: rcv.GetOccurredAt(), StatusToken: rcv.GetReceived().GetStatusToken()}
	got := projection.ReceivedOf(cls)
	if !proto.Equal(got, rcv) {
		t.Fatalf("ReceivedOf = %v, want %v", got, rcv)
	}
	want := fold(t, rcv, cls, routedEv("billing"))
	if item := fold(t, got, cls, routedEv("billing")); !proto.Equal(item, want) {
		t.Errorf("item from the rebuilt received event:\n%v\nwant\n%v", item, want)
	}
	for _, e := range []*feedloopv1.Event{classifiedEv(), rcv, routedEv("billing")} {
		if r := projection.ReceivedOf(e); r != nil {
			t.Errorf("ReceivedOf(%s) = %v, want nil (nothing to rebuild it from)", e.GetId(), r)
		}
	}
}

func TestApplyIgnores(t *testing.T) {
	other := routedEv("billing")
	other.FeedbackId = "fb-2"
	tests := map[string]*feedloopv1.Event{
		"no payload":            ev("e-1", 0, nil),
		"another item":          other,
		"no feedback id":        {Id: "e-2", Payload: &feedloopv1.Event_Commented{Commented: &feedloopv1.Commented{}}},
		"received, no feedback": ev("e-3", 0, &feedloopv1.Received{}),
		"routed, no team":       ev("e-4", 0, &feedloopv1.Routed{Assignment: &feedloopv1.Assignment{}}),
		"status, no team":       ev("e-5", 0, &feedloopv1.StatusChanged{To: feedloopv1.Status_STATUS_RESOLVED}),
		"status, no target":     ev("e-6", 0, &feedloopv1.StatusChanged{Team: "billing"}),
		"escalated, no team":    ev("e-7", 0, &feedloopv1.Escalated{Level: 1}),
	}
	for name, e := range tests {
		t.Run(name, func(t *testing.T) {
			item := fold(t, base()...)
			before := proto.Clone(item)
			if projection.Apply(item, e) {
				t.Error("Apply = true")
			}
			if !proto.Equal(before, item) {
				t.Error("an ignored event changed the item")
			}
		})
	}
}

// TestTimelineOrder: the whole fold keeps the timeline oldest first, and
// entries at the same time in the order applied.
func TestTimelineOrder(t *testing.T) {
	item := fold(t, append(base(), routedEv("product"),
		ev("e-c", 2*time.Minute, &feedloopv1.Commented{Team: "billing"}),
		ev("e-n", time.Minute, &feedloopv1.Notified{Step: feedloopv1.Step_STEP_RECEIVED, Audience: "customer"}))...)
	var got []string
	for _, e := range item.Timeline {
		got = append(got, e.EventId)
	}
	want := []string{"e-rcv", "e-rt-billing", "e-rt-product", "e-n", "e-c"}
	if len(got) != len(want) {
		t.Fatalf("timeline = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("timeline = %v, want %v", got, want)
		}
	}
}

func TestDueAt(t *testing.T) {
	full := &feedloopv1.AssignmentState{AcknowledgeBy: at(1), ResolveBy: at(2), PlannedDueAt: at(3)}
	noAck := &feedloopv1.AssignmentState{ResolveBy: at(2)}
	tests := []struct {
		st   *feedloopv1.AssignmentState
		s    feedloopv1.Status
		want *timestamppb.Timestamp
	}{
		{full, feedloopv1.Status_STATUS_ROUTED, at(1)},
		{noAck, feedloopv1.Status_STATUS_ROUTED, at(2)},
		{full, feedloopv1.Status_STATUS_REOPENED, at(1)},
		{full, feedloopv1.Status_STATUS_ACKNOWLEDGED, at(2)},
		{full, feedloopv1.Status_STATUS_PLANNED, at(3)},
		{noAck, feedloopv1.Status_STATUS_PLANNED, at(2)},
		{full, feedloopv1.Status_STATUS_RESOLVED, nil},
		{full, feedloopv1.Status_STATUS_DECLINED, nil},
		{full, feedloopv1.Status_STATUS_REROUTED, nil},
	}
	for _, tt := range tests {
		st := proto.Clone(tt.st).(*feedloopv1.AssignmentState)
		st.Status = tt.s
		if got := projection.DueAt(st); !proto.Equal(got, tt.want) {
			t.Errorf("DueAt(%v, %v) = %v, want %v", tt.s, tt.st, got, tt.want)
		}
	}
}

// TestRoutedOrderDoesNotShow: an item's routed events share their time, and
// two router replicas may fold them in either order (one dies holding some,
// the other folds the rest first). The item must come out the same, or the
// live read model differs from a rebuild in stream order.
func TestRoutedOrderDoesNotShow(t *testing.T) {
	inOrder := fold(t, append(base(), routedEv("product"), routedEv("accounts"))...)
	reversed := fold(t, append([]*feedloopv1.Event{receivedEv(), routedEv("accounts"), routedEv("product")}, classifiedEv(), routedEv("billing"))...)
	if !proto.Equal(inOrder, reversed) {
		t.Fatalf("folding order shows:\n in order: %v\n reversed: %v", inOrder, reversed)
	}
	var teams []string
	for _, a := range inOrder.GetAssignments() {
		teams = append(teams, a.GetTeam())
	}
	if want := []string{"accounts", "billing", "product"}; !slices.Equal(teams, want) {
		t.Errorf("assignments %v, want %v (same time: by team)", teams, want)
	}
}
