package steps

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

func planReceived(subject string, ev *feedloopv1.Event, r *feedloopv1.Received, o Options) (Decision, error) {
	if subject != bus.SubjectReceived {
		return Decision{}, fmt.Errorf("%w: Received payload on %s", ErrInvalidEvent, subject)
	}
	fb := r.GetFeedback()
	if err := checkFeedback(ev, fb); err != nil {
		return Decision{}, err
	}
	if fb.GetInReplyTo() != "" {
		// An answer to an earlier item (a survey answer, a reply) needs no
		// acknowledgement of its own.
		return Decision{Skipped: []Skip{{Step: spec(StepReceived), Reason: "an answer to " + fb.GetInReplyTo()}}}, nil
	}
	return customerDecision(spec(StepReceived), ev, fb, consentContact, func(n *Notice) {
		n.StatusToken = r.GetStatusToken()
		n.Data.StatusURL = StatusURL(o.StatusURL, n.StatusToken)
		// The customer sees their own words, unredacted.
		n.Data.Text, n.OwnWords = fb.GetText(), true
	}), nil
}

func planRouted(subject string, ev *feedloopv1.Event, r *feedloopv1.Routed, o Options) (Decision, error) {
	fb := r.GetFeedback()
	if err := checkFeedback(ev, fb); err != nil {
		return Decision{}, err
	}
	team := r.GetAssignment().GetTeam()
	if team == "" {
		return Decision{}, fmt.Errorf("%w: Routed event %s has no assignment team", ErrInvalidEvent, ev.GetId())
	}
	if want := bus.RoutedSubject(team); subject != want {
		return Decision{}, fmt.Errorf("%w: Routed event for team %q on %s, want %s", ErrInvalidEvent, team, subject, want)
	}
	s := spec(StepRouted)
	d := baseData(s, ev.GetFeedbackId(), fb)
	d.Team = team
	// Teams see the redacted text only: personal data stays out of team tools.
	d.Text = r.GetClassification().GetRedactedText()
	d.Classification = classificationData(r.GetClassification())
	d.Assignment = assignmentData(r.GetAssignment())
	d.RerouteFrom = r.GetAssignment().GetReroutedFrom()
	dec := Decision{Notices: []Notice{{
		Spec:         s,
		FeedbackID:   ev.GetFeedbackId(),
		CauseEventID: ev.GetId(),
		Scope:        team,
		Team:         team,
		Data:         d,
	}}}
	if !o.CustomerRouted {
		return dec, nil
	}
	c := customerDecision(spec(StepCustomerRouted), ev, fb, consentContact, func(n *Notice) {
		n.Scope, n.Team, n.Data.Team = team, team, team
	})
	dec.Notices = append(dec.Notices, c.Notices...)
	dec.Skipped = append(dec.Skipped, c.Skipped...)
	return dec, nil
}

func planStatus(subject string, ev *feedloopv1.Event, sc *feedloopv1.StatusChanged, o Options) (Decision, error) {
	team := sc.GetTeam()
	if team == "" {
		return Decision{}, fmt.Errorf("%w: StatusChanged event %s has no team", ErrInvalidEvent, ev.GetId())
	}
	if want := bus.UpdatedSubject(team); subject != want {
		return Decision{}, fmt.Errorf("%w: StatusChanged event for team %q on %s, want %s", ErrInvalidEvent, team, subject, want)
	}
	var name, scope string
	due := timeOf(sc.GetDueAt())
	switch sc.GetTo() {
	case feedloopv1.Status_STATUS_PLANNED:
		prev := timeOf(sc.GetPreviousDueAt())
		switch {
		case sc.GetFrom() != feedloopv1.Status_STATUS_PLANNED:
			// Scoped by the transition event: a redelivery is the same
			// message, a new plan after a reopen is news for the customer.
			name, scope = StepPlanned, team+"/"+ev.GetId()
		case prev.IsZero() || prev.Equal(due):
			return Decision{}, nil // a re-plan that kept the date: nothing new for the customer
		case due.IsZero():
			return Decision{}, fmt.Errorf("%w: plan change %s has no due date", ErrInvalidEvent, ev.GetId())
		default:
			// Each move is told once (a redelivery is the same event); a
			// date moved back to an earlier one is news again.
			name, scope = StepPlanChanged, team+"/"+ev.GetId()
		}
	case feedloopv1.Status_STATUS_RESOLVED:
		name, scope = StepResolved, team+"/"+ev.GetId()
	case feedloopv1.Status_STATUS_DECLINED:
		name, scope = StepDeclined, team+"/"+ev.GetId()
	case feedloopv1.Status_STATUS_REOPENED:
		name = StepReopened
	default:
		// Acknowledged and rerouted are the teams' business (the new team
		// gets its own routed alert).
		return Decision{}, nil
	}
	fb := sc.GetFeedback()
	if err := checkFeedback(ev, fb); err != nil {
		return Decision{}, err
	}
	fill := func(d *Data) {
		d.Team = team
		d.Message = sc.GetCustomerMessage()
		d.Reason = sc.GetReason()
		d.Actor = sc.GetActor()
		d.DueAt = due
		d.PreviousDueAt = timeOf(sc.GetPreviousDueAt())
	}
	if name == StepReopened {
		s := spec(StepReopened)
		d := baseData(s, ev.GetFeedbackId(), fb)
		d.Text = fb.GetText() // redacted by the router
		fill(&d)
		// Reopened more than once is told each time: the event is the occurrence.
		return Decision{Notices: []Notice{{
			Spec: s, FeedbackID: ev.GetFeedbackId(), CauseEventID: ev.GetId(),
			Scope: team + "/" + ev.GetId(), Team: team, Data: d,
		}}}, nil
	}
	return customerDecision(spec(name), ev, fb, consentContact, func(n *Notice) {
		n.Scope, n.Team = scope, team
		n.StatusToken = sc.GetStatusToken()
		n.Data.StatusURL = StatusURL(o.StatusURL, n.StatusToken)
		fill(&n.Data)
	}), nil
}

func planEscalated(subject string, ev *feedloopv1.Event, e *feedloopv1.Escalated, _ Options) (Decision, error) {
	team := e.GetTeam()
	if team == "" {
		return Decision{}, fmt.Errorf("%w: Escalated event %s has no team", ErrInvalidEvent, ev.GetId())
	}
	if want := bus.EscalatedSubject(team); subject != want {
		return Decision{}, fmt.Errorf("%w: Escalated event for team %q on %s, want %s", ErrInvalidEvent, team, subject, want)
	}
	fb := e.GetFeedback()
	if err := checkFeedback(ev, fb); err != nil {
		return Decision{}, err
	}
	kind := e.GetKind()
	if kind == feedloopv1.EscalationKind_ESCALATION_KIND_UNSPECIFIED {
		kind = feedloopv1.EscalationKind_ESCALATION_KIND_BREACH
		if e.GetLevel() == 0 {
			kind = feedloopv1.EscalationKind_ESCALATION_KIND_WARNING
		}
	}
	s := spec(StepEscalated)
	d := baseData(s, ev.GetFeedbackId(), fb)
	d.Team = team
	d.Text = fb.GetText() // redacted by the router
	d.Assignment.Priority = enumName(e.GetPriority().String(), "PRIORITY_")
	d.Escalation = Escalation{
		Kind:       enumName(kind.String(), "ESCALATION_KIND_"),
		Level:      int(e.GetLevel()),
		EscalateTo: e.GetEscalateTo(),
		Deadline:   e.GetDeadline(),
		DueAt:      timeOf(e.GetDueAt()),
	}
	alerted := []string{team}
	if to := e.GetEscalateTo(); kind == feedloopv1.EscalationKind_ESCALATION_KIND_BREACH && to != "" && to != team {
		alerted = append(alerted, to)
	}
	// One alert per (assignment, deadline, due date, kind, level) and team alerted.
	occurrence := strings.Join([]string{team, d.Escalation.Deadline, d.Escalation.Kind + strconv.Itoa(d.Escalation.Level), d.Escalation.DueAt.Format("20060102T150405Z")}, "/")
	var dec Decision
	for _, to := range alerted {
		dec.Notices = append(dec.Notices, Notice{
			Spec: s, FeedbackID: ev.GetFeedbackId(), CauseEventID: ev.GetId(),
			Scope: to + "/" + occurrence, Team: to, Data: d,
		})
	}
	return dec, nil
}

func planClosed(subject string, ev *feedloopv1.Event, c *feedloopv1.Closed, o Options) (Decision, error) {
	if subject != bus.SubjectClosed {
		return Decision{}, fmt.Errorf("%w: Closed payload on %s", ErrInvalidEvent, subject)
	}
	fb := c.GetFeedback()
	if err := checkFeedback(ev, fb); err != nil {
		return Decision{}, err
	}
	s := spec(StepSurvey)
	if c.GetRound() > 1 {
		// Asked once per case: a reopened item closing again is not surveyed
		// again (the delivery key, without scope, guards this too).
		return Decision{Skipped: []Skip{{Step: s, Reason: fmt.Sprintf("survey already asked (closing round %d)", c.GetRound())}}}, nil
	}
	return customerDecision(s, ev, fb, consentSurvey, func(n *Notice) {
		n.Data.Teams = append([]string(nil), c.GetTeams()...)
		n.StatusToken = c.GetStatusToken()
		n.Data.StatusURL = StatusURL(o.StatusURL, n.StatusToken)
		n.Data.SurveyLinks = SurveyLinks(o.StatusURL, c.GetStatusToken())
	}), nil
}

// consent is what a customer step needs the customer to have agreed to.
type consent int

const (
	consentContact consent = iota + 1
	consentSurvey          // contact and survey
)

// customerDecision is one customer notice for ev, shaped by fill, or a skip
// when the customer has not consented.
func customerDecision(s Spec, ev *feedloopv1.Event, fb *feedloopv1.Feedback, need consent, fill func(*Notice)) Decision {
	c := fb.GetCustomer().GetConsent()
	switch {
	case !c.GetContact():
		return Decision{Skipped: []Skip{{Step: s, Reason: "customer gave no contact consent"}}}
	case need == consentSurvey && !c.GetSurvey():
		return Decision{Skipped: []Skip{{Step: s, Reason: "customer gave no survey consent"}}}
	}
	n := Notice{
		Spec:         s,
		FeedbackID:   ev.GetFeedbackId(),
		CauseEventID: ev.GetId(),
		Locale:       fb.GetCustomer().GetLocale(),
		Data:         baseData(s, ev.GetFeedbackId(), fb),
	}
	fill(&n)
	return Decision{Notices: []Notice{n}}
}

func checkFeedback(ev *feedloopv1.Event, fb *feedloopv1.Feedback) error {
	if ev.GetFeedbackId() == "" {
		return fmt.Errorf("%w: event %s has no feedback_id", ErrInvalidEvent, ev.GetId())
	}
	if fb == nil {
		return fmt.Errorf("%w: event %s carries no feedback", ErrInvalidEvent, ev.GetId())
	}
	if fb.GetId() != "" && fb.GetId() != ev.GetFeedbackId() {
		return fmt.Errorf("%w: event %s is about feedback %s but carries feedback %s", ErrInvalidEvent, ev.GetId(), ev.GetFeedbackId(), fb.GetId())
	}
	return nil
}

// baseData is what every step shows of the feedback; the text and the
// status link are each step's own choice.
func baseData(s Spec, feedbackID string, fb *feedloopv1.Feedback) Data {
	c := fb.GetCustomer()
	return Data{
		Step:       s.Name,
		Audience:   string(s.Audience),
		FeedbackID: feedbackID,
		Customer: Customer{
			ID:     c.GetId(),
			Name:   c.GetName(),
			Email:  c.GetEmail(),
			Locale: c.GetLocale(),
		},
		Source:     fb.GetSource(),
		Channel:    enumName(fb.GetChannel().String(), "CHANNEL_"),
		Subject:    fb.GetSubject(),
		Product:    fb.GetProduct(),
		Area:       fb.GetArea(),
		ReceivedAt: timeOf(fb.GetReceivedAt()),
	}
}

func classificationData(c *feedloopv1.Classification) Classification {
	out := Classification{
		Sentiment: enumName(c.GetSentiment().String(), "SENTIMENT_"),
		Urgency:   enumName(c.GetUrgency().String(), "URGENCY_"),
		Language:  c.GetLanguage(),
	}
	for _, t := range c.GetTopics() {
		out.Topics = append(out.Topics, t.GetTopic())
	}
	return out
}

func assignmentData(a *feedloopv1.Assignment) Assignment {
	return Assignment{
		Route:         a.GetRoute(),
		Priority:      enumName(a.GetPriority().String(), "PRIORITY_"),
		AcknowledgeBy: timeOf(a.GetAcknowledgeBy()),
		ResolveBy:     timeOf(a.GetResolveBy()),
	}
}

// timeOf is t in UTC, the zero time when unset.
func timeOf(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime().UTC()
}

// enumName turns "PRIORITY_HIGH" into "high"; unspecified values give "".
func enumName(s, prefix string) string {
	s = strings.ToLower(strings.TrimPrefix(s, prefix))
	if s == "unspecified" {
		return ""
	}
	return s
}
