// Package projection folds lifecycle events into the read model's Item: the
// item's state, its teams' assignments and its timeline. It is pure — no
// I/O, no clock — so the same events always give the same Item, which is
// what lets the read model be rebuilt from the stream.
//
// Every time comes from the event (occurred_at), never from the clock.
//
// An item can be created by any of its events, not only Received: after the
// read model is flushed, the live projector may see a later event first.
// Such an item is incomplete until a rebuild replays the stream.
//
// # Due time of an assignment
//
// AssignmentState.due_at is the next deadline the team must meet; it orders
// the team's list:
//
//   - ROUTED, REOPENED: acknowledge_by, or resolve_by without an
//     acknowledge deadline;
//   - ACKNOWLEDGED: resolve_by;
//   - PLANNED: the date promised by the plan (resolve_by if none);
//   - RESOLVED, DECLINED, REROUTED: unset (nothing more is due).
package projection

import (
	"sort"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// AudienceCustomer is the Notified audience of messages to the customer.
const AudienceCustomer = "customer"

// Apply folds ev into item and reports whether it changed anything. It
// returns false, leaving item untouched, for events it ignores: no or
// unknown payload, a payload missing what it must carry, or an event of
// another feedback item. An empty item takes the event's feedback id.
func Apply(item *feedloopv1.Item, ev *feedloopv1.Event) bool {
	if item == nil || ev == nil {
		return false
	}
	id := ev.GetFeedbackId()
	if id == "" || (item.GetFeedbackId() != "" && item.GetFeedbackId() != id) {
		return false
	}
	var ok bool
	switch p := ev.GetPayload().(type) {
	case *feedloopv1.Event_Received:
		ok = received(item, ev, p.Received)
	case *feedloopv1.Event_Classified:
		ok = classified(item, p.Classified)
	case *feedloopv1.Event_Routed:
		ok = routed(item, ev, p.Routed)
	case *feedloopv1.Event_StatusChanged:
		ok = statusChanged(item, ev, p.StatusChanged)
	case *feedloopv1.Event_Escalated:
		ok = escalated(item, ev, p.Escalated)
	case *feedloopv1.Event_Commented:
		ok = commented(item, ev, p.Commented)
	case *feedloopv1.Event_Replied:
		ok = replied(item, ev, p.Replied)
	case *feedloopv1.Event_Closed:
		ok = closed(item, ev)
	case *feedloopv1.Event_Notified:
		ok = notified(item, ev, p.Notified)
	}
	if !ok {
		return false
	}
	item.FeedbackId = id
	redact(item)
	return true
}

// ReceivedOf is the received event a classified event came from, rebuilt
// from the feedback and the rest of it that the classified event carries
// (Classified.received): same id, same effect when folded. Nil for any
// other event, or a classified event carrying no such rest (from a
// classifier older than the field).
func ReceivedOf(ev *feedloopv1.Event) *feedloopv1.Event {
	c := ev.GetClassified()
	r := c.GetReceived()
	if r.GetEventId() == "" || c.GetFeedback() == nil {
		return nil
	}
	return &feedloopv1.Event{
		Id:         r.GetEventId(),
		FeedbackId: ev.GetFeedbackId(),
		OccurredAt: r.GetOccurredAt(),
		Payload: &feedloopv1.Event_Received{Received: &feedloopv1.Received{
			Feedback:    c.GetFeedback(),
			StatusToken: r.GetStatusToken(),
		}},
	}
}

func received(item *feedloopv1.Item, ev *feedloopv1.Event, r *feedloopv1.Received) bool {
	if r.GetFeedback() == nil {
		return false
	}
	item.Feedback = proto.Clone(r.GetFeedback()).(*feedloopv1.Feedback)
	switch {
	case r.GetFeedback().GetReceivedAt().IsValid():
		item.ReceivedAt = ts(r.GetFeedback().GetReceivedAt())
	case ev.GetOccurredAt().IsValid():
		item.ReceivedAt = ts(ev.GetOccurredAt())
	}
	if r.GetStatusToken() != "" {
		item.StatusToken = r.GetStatusToken()
	}
	addEntry(item, entry(ev, feedloopv1.TimelineKind_TIMELINE_KIND_RECEIVED))
	return true
}

func classified(item *feedloopv1.Item, c *feedloopv1.Classified) bool {
	if c.GetClassification() == nil {
		return false
	}
	item.Classification = proto.Clone(c.GetClassification()).(*feedloopv1.Classification)
	fillFeedback(item, c.GetFeedback())
	return true
}

func routed(item *feedloopv1.Item, ev *feedloopv1.Event, r *feedloopv1.Routed) bool {
	a := r.GetAssignment()
	if a.GetTeam() == "" {
		return false
	}
	fillFeedback(item, r.GetFeedback())
	if item.Classification == nil && r.GetClassification() != nil {
		item.Classification = proto.Clone(r.GetClassification()).(*feedloopv1.Classification)
	}
	st := &feedloopv1.AssignmentState{
		Team:          a.GetTeam(),
		Route:         a.GetRoute(),
		Priority:      a.GetPriority(),
		Status:        feedloopv1.Status_STATUS_ROUTED,
		RoutedAt:      ts(ev.GetOccurredAt()),
		AcknowledgeBy: ts(a.GetAcknowledgeBy()),
		ResolveBy:     ts(a.GetResolveBy()),
		ReroutedFrom:  a.GetReroutedFrom(),
	}
	for _, s := range a.GetEscalation() {
		st.Escalation = append(st.Escalation, proto.Clone(s).(*feedloopv1.EscalationStep))
	}
	st.DueAt = DueAt(st)
	if i := index(item, a.GetTeam()); i >= 0 {
		item.Assignments[i] = st // routed again (e.g. rerouted back): a new share
	} else {
		insertAssignment(item, st)
	}
	item.ClosedAt = nil // a new open share reopens the item
	e := entry(ev, feedloopv1.TimelineKind_TIMELINE_KIND_ROUTED)
	e.Team, e.Target = a.GetTeam(), a.GetTeam()
	addEntry(item, e)
	return true
}

func statusChanged(item *feedloopv1.Item, ev *feedloopv1.Event, sc *feedloopv1.StatusChanged) bool {
	if sc.GetTeam() == "" || sc.GetTo() == feedloopv1.Status_STATUS_UNSPECIFIED {
		return false
	}
	fillFeedback(item, sc.GetFeedback())
	if item.StatusToken == "" {
		item.StatusToken = sc.GetStatusToken()
	}
	st := Assignment(item, sc.GetTeam())
	if st == nil {
		// Seen before its Routed event (after a flush): keep what we know.
		st = &feedloopv1.AssignmentState{Team: sc.GetTeam()}
		item.Assignments = append(item.Assignments, st)
	}
	at := ts(ev.GetOccurredAt())
	st.Status = sc.GetTo()
	switch sc.GetTo() {
	case feedloopv1.Status_STATUS_ACKNOWLEDGED:
		st.AcknowledgedAt = at
	case feedloopv1.Status_STATUS_PLANNED:
		st.PlannedDueAt = ts(sc.GetDueAt())
	case feedloopv1.Status_STATUS_RESOLVED, feedloopv1.Status_STATUS_DECLINED, feedloopv1.Status_STATUS_REROUTED:
		st.ClosedAt = at
	case feedloopv1.Status_STATUS_REOPENED:
		st.ClosedAt = nil
		item.ClosedAt = nil
	}
	if sc.GetCustomerMessage() != "" {
		st.CustomerMessage = sc.GetCustomerMessage()
	}
	if sc.GetReason() != "" {
		st.Reason = sc.GetReason()
	}
	if sc.GetRerouteTo() != "" {
		st.ReroutedTo = sc.GetRerouteTo()
	}
	st.DueAt = DueAt(st)

	e := entry(ev, feedloopv1.TimelineKind_TIMELINE_KIND_STATUS_CHANGED)
	e.Team, e.Actor = sc.GetTeam(), sc.GetActor()
	e.From, e.To = sc.GetFrom(), sc.GetTo()
	e.CustomerMessage, e.Reason = sc.GetCustomerMessage(), sc.GetReason()
	e.DueAt, e.Target = ts(sc.GetDueAt()), sc.GetRerouteTo()
	// A reroute is the company's internal business (its reason often names
	// a misclassification); the customer sees the new team's own steps.
	e.Internal = sc.GetTo() == feedloopv1.Status_STATUS_REROUTED
	addEntry(item, e)
	return true
}

func escalated(item *feedloopv1.Item, ev *feedloopv1.Event, x *feedloopv1.Escalated) bool {
	if x.GetTeam() == "" {
		return false
	}
	fillFeedback(item, x.GetFeedback())
	if IsBreach(x) {
		if st := Assignment(item, x.GetTeam()); st != nil && x.GetLevel() > st.EscalationLevel {
			st.EscalationLevel = x.GetLevel()
		}
	}
	e := entry(ev, feedloopv1.TimelineKind_TIMELINE_KIND_ESCALATED)
	e.Team, e.Target, e.Level = x.GetTeam(), x.GetEscalateTo(), x.GetLevel()
	e.DueAt = ts(x.GetDueAt())
	e.Reason = x.GetDeadline() // which deadline: "acknowledge", "resolve"
	e.Internal = true
	addEntry(item, e)
	return true
}

func commented(item *feedloopv1.Item, ev *feedloopv1.Event, c *feedloopv1.Commented) bool {
	e := entry(ev, feedloopv1.TimelineKind_TIMELINE_KIND_COMMENT)
	e.Team, e.Actor, e.Text = c.GetTeam(), c.GetActor(), c.GetText()
	e.Internal = true
	addEntry(item, e)
	return true
}

func replied(item *feedloopv1.Item, ev *feedloopv1.Event, r *feedloopv1.Replied) bool {
	if r.GetCsat() >= 1 && r.GetCsat() <= 5 {
		item.Csat = r.GetCsat()
	}
	e := entry(ev, feedloopv1.TimelineKind_TIMELINE_KIND_REPLIED)
	e.Team, e.Text, e.Level = r.GetTeam(), r.GetText(), r.GetCsat()
	addEntry(item, e)
	return true
}

func closed(item *feedloopv1.Item, ev *feedloopv1.Event) bool {
	fillFeedback(item, ev.GetClosed().GetFeedback())
	if item.StatusToken == "" {
		item.StatusToken = ev.GetClosed().GetStatusToken()
	}
	item.ClosedAt = ts(ev.GetOccurredAt())
	item.CloseRounds++
	addEntry(item, entry(ev, feedloopv1.TimelineKind_TIMELINE_KIND_CLOSED))
	return true
}

func notified(item *feedloopv1.Item, ev *feedloopv1.Event, n *feedloopv1.Notified) bool {
	e := entry(ev, feedloopv1.TimelineKind_TIMELINE_KIND_NOTIFIED)
	e.Step, e.Actor, e.Team = n.GetStep(), n.GetAudience(), n.GetTeam()
	e.Subject, e.Text = n.GetSubject(), n.GetText() // what the customer read
	e.Internal = n.GetAudience() != AudienceCustomer
	addEntry(item, e)
	return true
}

// DueAt is the next deadline of st by the rule in the package comment.
func DueAt(st *feedloopv1.AssignmentState) *timestamppb.Timestamp {
	switch st.GetStatus() {
	case feedloopv1.Status_STATUS_ROUTED, feedloopv1.Status_STATUS_REOPENED:
		if st.GetAcknowledgeBy() != nil {
			return st.GetAcknowledgeBy()
		}
		return st.GetResolveBy()
	case feedloopv1.Status_STATUS_ACKNOWLEDGED:
		return st.GetResolveBy()
	case feedloopv1.Status_STATUS_PLANNED:
		if st.GetPlannedDueAt() != nil {
			return st.GetPlannedDueAt()
		}
		return st.GetResolveBy()
	default:
		return nil
	}
}

// IsOpen reports whether s is a status the team still has to act on.
func IsOpen(s feedloopv1.Status) bool {
	switch s {
	case feedloopv1.Status_STATUS_ROUTED, feedloopv1.Status_STATUS_ACKNOWLEDGED,
		feedloopv1.Status_STATUS_PLANNED, feedloopv1.Status_STATUS_REOPENED:
		return true
	}
	return false
}

// IsBreach reports whether x is a breach (level 1 and up) rather than a
// pre-breach warning.
func IsBreach(x *feedloopv1.Escalated) bool {
	return x.GetKind() != feedloopv1.EscalationKind_ESCALATION_KIND_WARNING && x.GetLevel() >= 1
}

// Assignment returns item's assignment for team, or nil.
func Assignment(item *feedloopv1.Item, team string) *feedloopv1.AssignmentState {
	if i := index(item, team); i >= 0 {
		return item.Assignments[i]
	}
	return nil
}

func index(item *feedloopv1.Item, team string) int {
	for i, a := range item.GetAssignments() {
		if a.GetTeam() == team {
			return i
		}
	}
	return -1
}

// fillFeedback sets the feedback and received time from fb when the item has
// none yet (it was created by a later event).
func fillFeedback(item *feedloopv1.Item, fb *feedloopv1.Feedback) {
	if fb == nil {
		return
	}
	if item.Feedback == nil {
		item.Feedback = proto.Clone(fb).(*feedloopv1.Feedback)
	}
	if item.ReceivedAt == nil && fb.GetReceivedAt().IsValid() {
		item.ReceivedAt = ts(fb.GetReceivedAt())
	}
}

// redact replaces the feedback text by the classifier's redacted text once
// there is one: teams never read the text as the customer typed it.
func redact(item *feedloopv1.Item) {
	if t := item.GetClassification().GetRedactedText(); t != "" && item.Feedback != nil {
		item.Feedback.Text = t
	}
}

func entry(ev *feedloopv1.Event, kind feedloopv1.TimelineKind) *feedloopv1.TimelineEntry {
	return &feedloopv1.TimelineEntry{EventId: ev.GetId(), At: ts(ev.GetOccurredAt()), Kind: kind}
}

// insertAssignment adds st in (routed at, team) order. The routed events of
// one item share their time (the classified event's), and two router
// replicas may fold them in any order (one dies holding some, the other
// folds the rest first): ordering by team for equal times keeps the item
// independent of the order of folding, so a rebuild gives the same item.
func insertAssignment(item *feedloopv1.Item, st *feedloopv1.AssignmentState) {
	as := item.Assignments
	i := len(as)
	for i > 0 && routedBefore(st, as[i-1]) {
		i--
	}
	as = append(as, nil)
	copy(as[i+1:], as[i:])
	as[i] = st
	item.Assignments = as
}

func routedBefore(a, b *feedloopv1.AssignmentState) bool {
	if a.GetRoutedAt().AsTime().Equal(b.GetRoutedAt().AsTime()) {
		return a.GetTeam() < b.GetTeam()
	}
	return after(b.GetRoutedAt(), a.GetRoutedAt())
}

// addEntry inserts e after every entry not later than it: the timeline stays
// oldest first even when a projector applies events slightly out of order,
// and entries at the same time keep the order they were applied in, with two
// exceptions so that the order of folding does not show and a rebuild
// (stream order) gives the same timeline: the item's RECEIVED entry comes
// first (the router folds its routed events at once, possibly before the
// projector folds the item's received event of the same second), and routed
// entries, which share their time, are ordered by team (see insertAssignment).
func addEntry(item *feedloopv1.Item, e *feedloopv1.TimelineEntry) {
	tl := item.Timeline
	first := e.GetKind() == feedloopv1.TimelineKind_TIMELINE_KIND_RECEIVED
	i := sort.Search(len(tl), func(i int) bool {
		if first && !after(e.GetAt(), tl[i].GetAt()) && tl[i].GetKind() != feedloopv1.TimelineKind_TIMELINE_KIND_RECEIVED {
			return true // same time (or later): RECEIVED goes before it
		}
		return after(tl[i].GetAt(), e.GetAt())
	})
	for e.GetKind() == feedloopv1.TimelineKind_TIMELINE_KIND_ROUTED && i > 0 {
		p := tl[i-1]
		if p.GetKind() != e.GetKind() || after(e.GetAt(), p.GetAt()) || p.GetTeam() <= e.GetTeam() {
			break
		}
		i--
	}
	tl = append(tl, nil)
	copy(tl[i+1:], tl[i:])
	tl[i] = e
	item.Timeline = tl
}

// after reports whether a is strictly later than b; a missing time counts as
// the earliest.
func after(a, b *timestamppb.Timestamp) bool {
	if a.GetSeconds() != b.GetSeconds() {
		return a.GetSeconds() > b.GetSeconds()
	}
	return a.GetNanos() > b.GetNanos()
}

// ts copies t, so the item never shares a message with the event it came from.
func ts(t *timestamppb.Timestamp) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return &timestamppb.Timestamp{Seconds: t.GetSeconds(), Nanos: t.GetNanos()}
}
