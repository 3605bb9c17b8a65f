// Package workflow is the lifecycle of one team's assignment of a feedback
// item: which actions are legal in which state, and which events an action
// or a customer's answer produces. It is pure: the read model's Item goes
// in, events to publish come out; the caller serialises actions per item.
//
//	routed ──ack──▶ acknowledged ──plan──▶ planned ──resolve──▶ resolved
//	   │                 │    └──────resolve───────────────────▶ resolved
//	   └──── decline / reroute (from any open state) ───────────▶ declined / rerouted
//	resolved | declined ──customer answers badly or replies──▶ reopened ──ack──▶ …
//
// An item closes when every assignment is resolved, declined or rerouted
// (and at least one was resolved or declined): the action that closes it
// also emits feedback.closed, which asks the notifier for the survey.
package workflow

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	intakerules "github.com/feedloop/feedloop/services/intake/validate"
)

// Errors, mapped to gRPC codes by the team API.
var (
	// ErrIllegal: the assignment's state does not allow the action
	// (FailedPrecondition); the message names the current state.
	ErrIllegal = errors.New("illegal transition")
	// ErrInvalid: a field of the command breaks a rule (InvalidArgument).
	ErrInvalid = errors.New("invalid command")
	// ErrNotAssigned: the item was never routed to the team (PermissionDenied).
	ErrNotAssigned = errors.New("item not routed to team")
)

// Action is what a team does to its assignment.
type Action int

// Actions of the team API.
const (
	Acknowledge Action = iota + 1
	Plan
	Resolve
	Decline
	Reroute
	Comment
)

var actionNames = map[Action]string{
	Acknowledge: "acknowledge", Plan: "plan", Resolve: "resolve",
	Decline: "decline", Reroute: "reroute", Comment: "comment",
}

func (a Action) String() string { return actionNames[a] }

// MaxTextLen bounds messages, reasons and comments, in characters.
const MaxTextLen = 4000

// open are the states a team still works in.
var open = []feedloopv1.Status{
	feedloopv1.Status_STATUS_ROUTED,
	feedloopv1.Status_STATUS_ACKNOWLEDGED,
	feedloopv1.Status_STATUS_PLANNED,
	feedloopv1.Status_STATUS_REOPENED,
}

// from lists the states each action may start from. Reopened behaves like
// routed: the team acknowledges again before planning or resolving.
var from = map[Action][]feedloopv1.Status{
	Acknowledge: {feedloopv1.Status_STATUS_ROUTED, feedloopv1.Status_STATUS_REOPENED},
	Plan:        {feedloopv1.Status_STATUS_ACKNOWLEDGED, feedloopv1.Status_STATUS_PLANNED},
	Resolve:     {feedloopv1.Status_STATUS_ACKNOWLEDGED, feedloopv1.Status_STATUS_PLANNED},
	Decline:     open,
	Reroute:     open,
}

var to = map[Action]feedloopv1.Status{
	Acknowledge: feedloopv1.Status_STATUS_ACKNOWLEDGED,
	Plan:        feedloopv1.Status_STATUS_PLANNED,
	Resolve:     feedloopv1.Status_STATUS_RESOLVED,
	Decline:     feedloopv1.Status_STATUS_DECLINED,
	Reroute:     feedloopv1.Status_STATUS_REROUTED,
}

// IsOpen reports whether a team still works on an assignment in state s.
func IsOpen(s feedloopv1.Status) bool { return slices.Contains(open, s) }

// StatusName is the lower-case name of s, as users read it: "acknowledged".
func StatusName(s feedloopv1.Status) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "STATUS_"))
}

// Command is one team action.
type Command struct {
	Action Action
	// Team acting (from its token) and the person or system acting.
	Team, Actor string
	// Message for the customer (plan, resolve, decline) or internal note
	// (reroute, comment).
	Message string
	// DueAt is the date a plan promises.
	DueAt time.Time
	// RerouteTo is the target team of a reroute.
	RerouteTo string
	// Now is the time of the action; EventID the id of its first event
	// (the others derive from it).
	Now     time.Time
	EventID string
}

// Out is one event to publish.
type Out struct {
	Subject string
	Event   *feedloopv1.Event
}

// KnownTeam reports whether a team exists (the routing tree's teams).
type KnownTeam func(team string) bool

// Decide checks cmd against item and returns the events it produces, in
// publishing order.
func Decide(item *feedloopv1.Item, cmd Command, known KnownTeam) ([]Out, error) {
	a := assignment(item, cmd.Team)
	if a == nil {
		return nil, fmt.Errorf("%w: %s is not routed to team %s", ErrNotAssigned, item.GetFeedbackId(), cmd.Team)
	}
	if err := validate(cmd, known); err != nil {
		return nil, err
	}
	if cmd.Action == Comment {
		ev := event(item, cmd.EventID, cmd.Now)
		ev.Payload = &feedloopv1.Event_Commented{Commented: &feedloopv1.Commented{Team: cmd.Team, Actor: cmd.Actor, Text: cmd.Message}}
		return []Out{{Subject: bus.UpdatedSubject(cmd.Team), Event: ev}}, nil
	}
	cur := a.GetStatus()
	if !slices.Contains(from[cmd.Action], cur) {
		return nil, illegal(cmd, a)
	}
	sc := &feedloopv1.StatusChanged{
		Team:        cmd.Team,
		From:        cur,
		To:          to[cmd.Action],
		Actor:       cmd.Actor,
		Feedback:    item.GetFeedback(),
		StatusToken: item.GetStatusToken(),
	}
	switch cmd.Action {
	case Plan:
		sc.CustomerMessage = cmd.Message
		sc.DueAt = timestamppb.New(cmd.DueAt)
		if cur == feedloopv1.Status_STATUS_PLANNED {
			prev := a.GetPlannedDueAt().AsTime()
			if prev.Equal(cmd.DueAt) {
				return nil, fmt.Errorf("%w: team %s already planned %s for %s; plan again only to move the date",
					ErrIllegal, cmd.Team, item.GetFeedbackId(), cmd.DueAt.Format(time.DateOnly))
			}
			sc.PreviousDueAt = a.GetPlannedDueAt()
		}
	case Resolve:
		sc.CustomerMessage = cmd.Message
	case Decline:
		sc.Reason = cmd.Message
	case Reroute:
		sc.Reason = cmd.Message
		sc.RerouteTo = cmd.RerouteTo
		if t := assignment(item, cmd.RerouteTo); t != nil && IsOpen(t.GetStatus()) {
			return nil, fmt.Errorf("%w: team %s already works on %s (%s)", ErrIllegal, cmd.RerouteTo, item.GetFeedbackId(), StatusName(t.GetStatus()))
		}
	}
	ev := event(item, cmd.EventID, cmd.Now)
	ev.Payload = &feedloopv1.Event_StatusChanged{StatusChanged: sc}
	outs := []Out{{Subject: bus.UpdatedSubject(cmd.Team), Event: ev}}
	after := statuses(item)
	after[cmd.Team] = sc.To
	if cmd.Action == Reroute {
		outs = append(outs, rerouted(item, a, cmd))
		after[cmd.RerouteTo] = feedloopv1.Status_STATUS_ROUTED
	}
	if closes(after) {
		outs = append(outs, closed(item, after, cmd.Now))
	}
	return outs, nil
}

// rerouted is the new assignment of the target team: same priority and
// escalation chain, and the same SLA windows counted from now, since the
// new team has had no time yet.
func rerouted(item *feedloopv1.Item, a *feedloopv1.AssignmentState, cmd Command) Out {
	routedAt := a.GetRoutedAt().AsTime()
	window := func(deadline *timestamppb.Timestamp) *timestamppb.Timestamp {
		if deadline == nil || a.GetRoutedAt() == nil {
			return nil
		}
		return timestamppb.New(cmd.Now.Add(deadline.AsTime().Sub(routedAt)))
	}
	ev := event(item, bus.DeriveID(cmd.EventID, "routed", cmd.RerouteTo), cmd.Now)
	ev.Payload = &feedloopv1.Event_Routed{
		Routed: &feedloopv1.Routed{
			Feedback:       item.GetFeedback(),
			Classification: item.GetClassification(),
			Assignment: &feedloopv1.Assignment{
				Team:          cmd.RerouteTo,
				Route:         "reroute",
				Priority:      a.GetPriority(),
				AcknowledgeBy: window(a.GetAcknowledgeBy()),
				ResolveBy:     window(a.GetResolveBy()),
				Escalation:    a.GetEscalation(),
				ReroutedFrom:  cmd.Team,
			},
		},
	}
	return Out{Subject: bus.RoutedSubject(cmd.RerouteTo), Event: ev}
}

// Answer is a customer's answer to an item: a survey answer (CSAT set) or
// a reply (text only), which arrived as feedback with in_reply_to.
type Answer struct {
	// EventID and At are the id and time of the event that carried it.
	EventID string
	At      time.Time
	// FeedbackID is the answer's own feedback id.
	FeedbackID string
	// CSAT is 1-5 for a survey answer, 0 for a reply.
	CSAT int32
	// Text is the customer's words, redacted.
	Text string
}

// ReopenAtOrBelow is the highest CSAT that reopens an item.
const ReopenAtOrBelow = 2

// Reply attributes ans to every team that handled item (all but those it
// was rerouted away from) and reopens the closed shares when the answer is
// bad (CSAT ≤ ReopenAtOrBelow) or a reply in words. Event ids derive from
// ans.EventID, so a redelivered answer yields the same events.
//
// One survey answer per item counts, and it is the first one attributed:
// a survey answer (CSAT set) to an item that already holds another survey
// answer gives no events. The first is what the customer rated the outcome
// they saw with, what the teams acted on (a low score reopened the item)
// and what the KPIs counted; letting a later one replace it would count
// CSAT twice or undo a reopening behind the teams' backs. The status page
// refuses a second answer once the first shows (409); this rule covers the
// answers that raced past it and those from other survey tools. Replies in
// words (CSAT 0) are not survey answers and always attribute.
func Reply(item *feedloopv1.Item, ans Answer) []Out {
	if ans.CSAT > 0 && AnsweredBefore(item, ans) {
		return nil
	}
	reopen := ans.CSAT > 0 && ans.CSAT <= ReopenAtOrBelow || ans.CSAT == 0 && strings.TrimSpace(ans.Text) != ""
	var outs []Out
	for _, a := range item.GetAssignments() {
		team, cur := a.GetTeam(), a.GetStatus()
		if cur == feedloopv1.Status_STATUS_REROUTED {
			continue
		}
		again := reopen && (cur == feedloopv1.Status_STATUS_RESOLVED || cur == feedloopv1.Status_STATUS_DECLINED)
		ev := event(item, bus.DeriveID(ans.EventID, "replied", team), ans.At)
		ev.Payload = &feedloopv1.Event_Replied{
			Replied: &feedloopv1.Replied{Team: team, ReplyFeedbackId: ans.FeedbackID, Csat: ans.CSAT, Text: ans.Text, Reopened: again},
		}
		outs = append(outs, Out{Subject: bus.UpdatedSubject(team), Event: ev})
		if !again {
			continue
		}
		reason := "the customer replied"
		if ans.CSAT > 0 {
			reason = fmt.Sprintf("the customer rated the outcome %d of 5", ans.CSAT)
		}
		ev = event(item, bus.DeriveID(ans.EventID, "reopened", team), ans.At)
		ev.Payload = &feedloopv1.Event_StatusChanged{
			StatusChanged: &feedloopv1.StatusChanged{
				Team: team, From: cur, To: feedloopv1.Status_STATUS_REOPENED, Actor: "customer", Reason: reason,
				Feedback: item.GetFeedback(), StatusToken: item.GetStatusToken(),
			},
		}
		outs = append(outs, Out{Subject: bus.UpdatedSubject(team), Event: ev})
	}
	return outs
}

// AnsweredBefore reports whether item holds a survey answer other than ans
// (a redelivered ans finds its own events and is not "before").
func AnsweredBefore(item *feedloopv1.Item, ans Answer) bool {
	for _, e := range item.GetTimeline() {
		if e.GetKind() != feedloopv1.TimelineKind_TIMELINE_KIND_REPLIED || e.GetLevel() <= 0 {
			continue
		}
		if e.GetEventId() != bus.DeriveID(ans.EventID, "replied", e.GetTeam()) {
			return true
		}
	}
	return false
}

func validate(cmd Command, known KnownTeam) error {
	var field, rule string
	text := strings.TrimSpace(cmd.Message)
	switch cmd.Action {
	case Acknowledge:
	case Plan:
		switch {
		case text == "":
			field, rule = CustomerMessageField, "required: tell the customer what the team will do"
		case cmd.DueAt.IsZero():
			field, rule = "due_at", "required"
		case cmd.DueAt.Before(cmd.Now.UTC().Truncate(24 * time.Hour)):
			field, rule = "due_at", fmt.Sprintf("must not be in the past, got %s", cmd.DueAt.UTC().Format(time.DateOnly))
		}
	case Resolve:
		if text == "" {
			field, rule = CustomerMessageField, "required: tell the customer what was done"
		}
	case Decline:
		if text == "" {
			field, rule = CustomerMessageField, "required: the customer reads why"
		}
	case Reroute:
		switch {
		case cmd.RerouteTo == "":
			field, rule = "team", "required"
		case cmd.RerouteTo == cmd.Team:
			field, rule = "team", "must be another team than "+cmd.Team
		case known != nil && !known(cmd.RerouteTo):
			field, rule = "team", fmt.Sprintf("unknown team %q", cmd.RerouteTo)
		case text == "":
			field, rule = InternalNoteField, "required"
		}
	case Comment:
		if text == "" {
			field, rule = InternalNoteField, "required"
		}
	default:
		return fmt.Errorf("%w: unknown action %d", ErrInvalid, cmd.Action)
	}
	if field == "" && utf8.RuneCountInString(cmd.Message) > MaxTextLen {
		field, rule = textField(cmd.Action), fmt.Sprintf("at most %d characters", MaxTextLen)
	}
	if field == "" && cmd.Action != Acknowledge {
		// Intake's rules for free text (valid UTF-8, no control characters
		// but tab, CR and LF): these words reach the customer's email and
		// the status page, or a colleague's terminal, like feedback text.
		if vs := intakerules.Text(textField(cmd.Action), cmd.Message, intakerules.MaxTextBytes); len(vs) > 0 {
			field, rule = vs[0].Field, vs[0].Description
		}
	}
	if field != "" {
		return &FieldError{Field: field, Rule: rule}
	}
	return nil
}

// The team API's request fields of an action's words, named by who reads
// them: plan, resolve and decline speak to the customer, reroute and
// comment only to teams.
const (
	CustomerMessageField = "customer_message"
	InternalNoteField    = "internal_note"
)

func textField(a Action) string {
	if a == Reroute || a == Comment {
		return InternalNoteField
	}
	return CustomerMessageField
}

// FieldError names the request field at fault and the rule it breaks.
type FieldError struct{ Field, Rule string }

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Rule) }

// Unwrap makes every FieldError match ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

func illegal(cmd Command, a *feedloopv1.AssignmentState) error {
	cur := a.GetStatus()
	hint := ""
	switch {
	case cur == feedloopv1.Status_STATUS_REROUTED:
		hint = " to " + a.GetReroutedTo() + "; that team owns it now"
	case !IsOpen(cur):
		hint = "; it is closed for this team"
	case cmd.Action == Plan || cmd.Action == Resolve:
		hint = "; acknowledge it first"
	}
	return fmt.Errorf("%w: cannot %s: team %s's assignment is %s%s", ErrIllegal, cmd.Action, cmd.Team, StatusName(cur), hint)
}

func assignment(item *feedloopv1.Item, team string) *feedloopv1.AssignmentState {
	for _, a := range item.GetAssignments() {
		if a.GetTeam() == team {
			return a
		}
	}
	return nil
}

func statuses(item *feedloopv1.Item) map[string]feedloopv1.Status {
	m := make(map[string]feedloopv1.Status, len(item.GetAssignments()))
	for _, a := range item.GetAssignments() {
		m[a.GetTeam()] = a.GetStatus()
	}
	return m
}

// closes reports whether no team works on the item any more and at least
// one gave the customer an outcome.
func closes(st map[string]feedloopv1.Status) bool {
	outcome := false
	for _, s := range st {
		if IsOpen(s) {
			return false
		}
		if s == feedloopv1.Status_STATUS_RESOLVED || s == feedloopv1.Status_STATUS_DECLINED {
			outcome = true
		}
	}
	return outcome
}

// closed is the Closed event of the item's next closing round. Its id is
// the item's and the round's, whoever decides it: a team action and the
// projector's completion of another team's earlier action cannot close one
// round twice.
func closed(item *feedloopv1.Item, st map[string]feedloopv1.Status, at time.Time) Out {
	round := item.GetCloseRounds() + 1
	id := bus.DeriveID(item.GetFeedbackId(), "closed", strconv.Itoa(int(round)))
	var teams []string
	for team, s := range st {
		if s == feedloopv1.Status_STATUS_RESOLVED || s == feedloopv1.Status_STATUS_DECLINED {
			teams = append(teams, team)
		}
	}
	slices.Sort(teams)
	ev := event(item, id, at)
	ev.Payload = &feedloopv1.Event_Closed{Closed: &feedloopv1.Closed{
		Teams:       teams,
		Feedback:    item.GetFeedback(),
		StatusToken: item.GetStatusToken(),
		Round:       round,
	}}
	return Out{Subject: bus.SubjectClosed, Event: ev}
}

// event is an event about item with no payload yet.
func event(item *feedloopv1.Item, id string, at time.Time) *feedloopv1.Event {
	return &feedloopv1.Event{Id: id, FeedbackId: item.GetFeedbackId(), OccurredAt: timestamppb.New(at)}
}

// Completion returns what a status change ev — already folded into item —
// should have been followed by but was not (yet): the target team's Routed
// event of a reroute, and the Closed event when no team works on the item
// any more. The events have the ids, times and payloads the action itself
// publishes, so when the action did publish them they are duplicates. The
// projector calls it for every status change, so a router that died
// between two publishes leaves nothing undone.
func Completion(item *feedloopv1.Item, ev *feedloopv1.Event) []Out {
	sc := ev.GetStatusChanged()
	if sc == nil || IsOpen(sc.GetTo()) || sc.GetTo() == feedloopv1.Status_STATUS_UNSPECIFIED {
		return nil
	}
	// Only the latest change speaks for the item's state: an older one
	// folded late (a lagging projector) must not close an item another
	// action has since moved on, nor re-route what was routed since.
	if latestChange(item) != ev.GetId() {
		return nil
	}
	var outs []Out
	at := ev.GetOccurredAt().AsTime()
	if sc.GetTo() == feedloopv1.Status_STATUS_REROUTED && sc.GetRerouteTo() != "" {
		t := assignment(item, sc.GetRerouteTo())
		if a := assignment(item, sc.GetTeam()); a != nil && (t == nil || !IsOpen(t.GetStatus()) && t.GetRoutedAt().AsTime().Before(at)) {
			outs = append(outs, rerouted(item, a, Command{Team: sc.GetTeam(), RerouteTo: sc.GetRerouteTo(), Now: at, EventID: ev.GetId()}))
			return outs // the new share is open: nothing closes
		}
	}
	if item.GetClosedAt() == nil && closes(statuses(item)) {
		outs = append(outs, closed(item, statuses(item), at))
	}
	return outs
}

// latestChange is the id of the item's last routing or status change.
func latestChange(item *feedloopv1.Item) string {
	tl := item.GetTimeline()
	for i := len(tl) - 1; i >= 0; i-- {
		switch tl[i].GetKind() {
		case feedloopv1.TimelineKind_TIMELINE_KIND_STATUS_CHANGED, feedloopv1.TimelineKind_TIMELINE_KIND_ROUTED:
			return tl[i].GetEventId()
		}
	}
	return ""
}
