// Package notify is the notifier's domain: which lifecycle event asks for
// which step of the loop, to which audience, with which facts. It is pure:
// no I/O, no clock, no configuration beyond its arguments.
//
// A step is notified through a fixed chain: event → Notice (this package) →
// templates "<step>.*.tmpl" rendered in the recipient's locale → one delivery
// per recipient channel. New steps (planned, resolved, declined, survey,
// escalated) slot in by adding a Spec to Steps and a case to Plan.
package notify

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/feedloop/feedloop/pkg/bus"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// ErrInvalidEvent marks an event the notifier can never handle (missing
// payload parts, subject and payload disagree): retrying cannot fix it.
var ErrInvalidEvent = errors.New("invalid event")

// Audience is who a step's message is for.
type Audience string

// Audiences, as recorded in Notified.audience.
const (
	AudienceCustomer Audience = "customer"
	AudienceTeam     Audience = "team"
)

// Spec describes one step of the loop: its enum, the base name of its
// templates, and its audience.
type Spec struct {
	Step     feedloopv1.Step
	Name     string
	Audience Audience
}

// Steps are the steps this notifier sends, in loop order. Templates are
// required and validated for each of them.
var Steps = []Spec{
	{Step: feedloopv1.Step_STEP_RECEIVED, Name: "received", Audience: AudienceCustomer},
	{Step: feedloopv1.Step_STEP_ROUTED, Name: "routed", Audience: AudienceTeam},
}

// StepNames returns the template names of Steps.
func StepNames() []string {
	names := make([]string, len(Steps))
	for i, s := range Steps {
		names[i] = s.Name
	}
	return names
}

// SpecOf returns the Spec of step.
func SpecOf(step feedloopv1.Step) (Spec, bool) {
	for _, s := range Steps {
		if s.Step == step {
			return s, true
		}
	}
	return Spec{}, false
}

// Notice is one step to notify because of one event: the notifier turns it
// into one message per recipient channel of its audience.
type Notice struct {
	Spec
	// FeedbackID is the feedback item concerned.
	FeedbackID string
	// CauseEventID is the id of the event that asked for the notice.
	CauseEventID string
	// Scope tells apart repeated occurrences of one step for one feedback
	// item that must each be sent: the team for routed (one alert per
	// team), empty for received (one acknowledgement per item).
	Scope string
	// Team is the team concerned, for team steps.
	Team string
	// Locale picks the templates: the customer's for customer steps, empty
	// (the default templates) for team steps.
	Locale string
	// Data is what the templates and the webhook body are made of.
	Data Data
}

// Skip records a notice not sent and why, for the log.
type Skip struct {
	Step   Spec
	Reason string
}

// Decision is what Plan makes of an event.
type Decision struct {
	Notices []Notice
	Skipped []Skip
}

// Plan decides what to notify because of ev, published on subject.
// statusBase is the base URL of status links ("" for none). Events of no
// interest give an empty Decision; malformed events an ErrInvalidEvent.
func Plan(subject string, ev *feedloopv1.Event, statusBase string) (Decision, error) {
	switch p := ev.GetPayload().(type) {
	case *feedloopv1.Event_Received:
		return planReceived(subject, ev, p.Received, statusBase)
	case *feedloopv1.Event_Routed:
		return planRouted(subject, ev, p.Routed, statusBase)
	default:
		return Decision{}, nil
	}
}

func planReceived(subject string, ev *feedloopv1.Event, r *feedloopv1.Received, statusBase string) (Decision, error) {
	spec, _ := SpecOf(feedloopv1.Step_STEP_RECEIVED)
	if subject != bus.SubjectReceived {
		return Decision{}, fmt.Errorf("%w: Received payload on %s", ErrInvalidEvent, subject)
	}
	fb := r.GetFeedback()
	if err := checkFeedback(ev, fb); err != nil {
		return Decision{}, err
	}
	if !fb.GetCustomer().GetConsent().GetContact() {
		return Decision{Skipped: []Skip{{Step: spec, Reason: "customer gave no contact consent"}}}, nil
	}
	n := Notice{
		Spec:         spec,
		FeedbackID:   ev.GetFeedbackId(),
		CauseEventID: ev.GetId(),
		Locale:       fb.GetCustomer().GetLocale(),
		Data:         feedbackData(spec, ev.GetFeedbackId(), fb, statusBase),
	}
	// The customer sees their own words, unredacted.
	n.Data.Text = fb.GetText()
	return Decision{Notices: []Notice{n}}, nil
}

func planRouted(subject string, ev *feedloopv1.Event, r *feedloopv1.Routed, statusBase string) (Decision, error) {
	spec, _ := SpecOf(feedloopv1.Step_STEP_ROUTED)
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
	d := feedbackData(spec, ev.GetFeedbackId(), fb, statusBase)
	d.Team = team
	// Teams see the redacted text only: personal data stays out of team tools.
	d.Text = r.GetClassification().GetRedactedText()
	d.Classification = classificationData(r.GetClassification())
	d.Assignment = assignmentData(r.GetAssignment())
	return Decision{Notices: []Notice{{
		Spec:         spec,
		FeedbackID:   ev.GetFeedbackId(),
		CauseEventID: ev.GetId(),
		Scope:        team,
		Team:         team,
		Data:         d,
	}}}, nil
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

func feedbackData(spec Spec, feedbackID string, fb *feedloopv1.Feedback, statusBase string) Data {
	c := fb.GetCustomer()
	d := Data{
		Step:       spec.Name,
		Audience:   string(spec.Audience),
		FeedbackID: feedbackID,
		Customer: Customer{
			ID:     c.GetId(),
			Name:   c.GetName(),
			Email:  c.GetEmail(),
			Locale: c.GetLocale(),
		},
		Source:    fb.GetSource(),
		Channel:   enumName(fb.GetChannel().String(), "CHANNEL_"),
		Subject:   fb.GetSubject(),
		Product:   fb.GetProduct(),
		Area:      fb.GetArea(),
		StatusURL: StatusURL(statusBase, feedbackID),
	}
	if t := fb.GetReceivedAt(); t != nil {
		d.ReceivedAt = t.AsTime().UTC()
	}
	return d
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
	out := Assignment{
		Route:    a.GetRoute(),
		Priority: enumName(a.GetPriority().String(), "PRIORITY_"),
	}
	if t := a.GetAcknowledgeBy(); t != nil {
		out.AcknowledgeBy = t.AsTime().UTC()
	}
	if t := a.GetResolveBy(); t != nil {
		out.ResolveBy = t.AsTime().UTC()
	}
	return out
}

// enumName turns "PRIORITY_HIGH" into "high"; unspecified values give "".
func enumName(s, prefix string) string {
	s = strings.ToLower(strings.TrimPrefix(s, prefix))
	if s == "unspecified" {
		return ""
	}
	return s
}

// StatusURL is the customer's status link for a feedback item: base + "/" +
// the escaped id, or "" when no base is configured.
func StatusURL(base, feedbackID string) string {
	if base == "" {
		return ""
	}
	return strings.TrimRight(base, "/") + "/" + url.PathEscape(feedbackID)
}

// Delivery identifies one message: a step of one feedback item (within its
// scope) to one recipient over one channel. The notifier sends each
// Delivery at most once.
type Delivery struct {
	FeedbackID string
	Step       string
	Scope      string
	Channel    string
	Recipient  string
}

// Key is the Redis key recording the delivery:
// notify:sent:<feedback>:<step>[/<scope>]:<channel>:<recipient>.
func (d Delivery) Key() string {
	step := d.Step
	if d.Scope != "" {
		step += "/" + d.Scope
	}
	return "notify:sent:" + d.FeedbackID + ":" + step + ":" + d.Channel + ":" + d.Recipient
}

// IdempotencyKey is a deterministic UUID of the delivery, given to receivers
// (Idempotency-Key header, email Message-ID) as a second line of defence.
func (d Delivery) IdempotencyKey() string {
	return bus.DeriveID(d.FeedbackID, "notify", d.Step, d.Scope, d.Channel, d.Recipient)
}

// NotifiedID is the id of the Notified event recording the delivery caused
// by event cause; the same delivery and cause always give the same id.
func (d Delivery) NotifiedID(cause string) string {
	return bus.DeriveID(cause, "notified", d.Step, d.Channel, d.Recipient)
}
