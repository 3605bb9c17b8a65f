// Package steps is the notifier's domain: which step of the loop a
// lifecycle event asks for, for whom (the audience), with which facts. It is
// pure: no I/O, no clock, no configuration beyond its arguments. Sending is
// the use case's (internal/app).
//
// A step is notified through a fixed chain: event → Notice (this package) →
// templates "<step>.*.tmpl" rendered in the recipient's locale → one delivery
// per recipient channel. A new step slots in by adding a Spec to All and a
// case to Plan.
package steps

import (
	"errors"
	"net/url"
	"slices"
	"strconv"
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

// Template names of the steps.
const (
	StepReceived       = "received"
	StepCustomerRouted = "customer_routed"
	StepPlanned        = "planned"
	StepPlanChanged    = "plan_changed"
	StepResolved       = "resolved"
	StepDeclined       = "declined"
	StepSurvey         = "survey"
	StepDigest         = "digest"
	StepRouted         = "routed"
	StepEscalated      = "escalated"
	StepReopened       = "reopened"
)

// All are the steps this notifier sends, customer steps in loop order,
// then team steps. Templates are required and validated for each of them.
// STEP_ROUTED appears twice: the team alert and the optional customer note.
var All = []Spec{
	{Step: feedloopv1.Step_STEP_RECEIVED, Name: StepReceived, Audience: AudienceCustomer},
	{Step: feedloopv1.Step_STEP_ROUTED, Name: StepCustomerRouted, Audience: AudienceCustomer},
	{Step: feedloopv1.Step_STEP_PLANNED, Name: StepPlanned, Audience: AudienceCustomer},
	{Step: feedloopv1.Step_STEP_PLAN_CHANGED, Name: StepPlanChanged, Audience: AudienceCustomer},
	{Step: feedloopv1.Step_STEP_RESOLVED, Name: StepResolved, Audience: AudienceCustomer},
	{Step: feedloopv1.Step_STEP_DECLINED, Name: StepDeclined, Audience: AudienceCustomer},
	{Step: feedloopv1.Step_STEP_SURVEY, Name: StepSurvey, Audience: AudienceCustomer},
	{Step: feedloopv1.Step_STEP_DIGEST, Name: StepDigest, Audience: AudienceCustomer},
	{Step: feedloopv1.Step_STEP_ROUTED, Name: StepRouted, Audience: AudienceTeam},
	{Step: feedloopv1.Step_STEP_ESCALATED, Name: StepEscalated, Audience: AudienceTeam},
	{Step: feedloopv1.Step_STEP_REOPENED, Name: StepReopened, Audience: AudienceTeam},
}

// Names returns the template names of All.
func Names() []string {
	names := make([]string, len(All))
	for i, s := range All {
		names[i] = s.Name
	}
	return names
}

// SpecNamed returns the Spec whose templates are called name.
func SpecNamed(name string) (Spec, bool) {
	for _, s := range All {
		if s.Name == name {
			return s, true
		}
	}
	return Spec{}, false
}

// spec is SpecNamed for the names of this package.
func spec(name string) Spec {
	s, ok := SpecNamed(name)
	if !ok {
		panic("notify: no step " + name)
	}
	return s
}

// Notice is one step to notify because of one event: the notifier turns it
// into one message per recipient channel of its audience.
type Notice struct {
	Spec
	// FeedbackID is the feedback item concerned (for a digest: the digest's
	// own identity, see DigestID).
	FeedbackID string
	// CauseEventID is the id of the event that asked for the notice.
	CauseEventID string
	// Scope tells apart repeated occurrences of one step for one feedback
	// item that must each be sent (see Delivery): the team for routed,
	// customer_routed, planned, resolved, declined; team and new date for
	// plan_changed; team and event for reopened; team alerted and the
	// escalation's deadline, kind, level and due date for escalated; empty
	// for received and survey (once per item).
	Scope string
	// Team is the team concerned: whose channels get a team notice, and
	// the team recorded in Notified for customer steps about one team.
	Team string
	// Locale picks the templates: the customer's for customer steps, empty
	// (the default templates) for team steps.
	Locale string
	// Data is what the templates and the webhook body are made of.
	Data Data
	// Covers lists the held messages a digest stands for: each gets its
	// own Notified record. Empty for every other step.
	Covers []Covered
	// StatusToken is the customer's status token in Data's links, masked
	// in what teams read (TeamsData).
	StatusToken string
	// OwnWords says Data.Text is the customer's text as they wrote it
	// (they are shown their own words), which teams read only redacted.
	OwnWords bool
}

// OwnWordsStandIn replaces the customer's own words in what teams read of
// a customer message: the item shows teams its text, redacted.
const OwnWordsStandIn = "[the customer's feedback, as the item shows it]"

// TeamsData is n's data as teams may read the message it makes (the
// Notified record's copy): the status links' token masked and the
// customer's unredacted words stood in for, whatever the templates do
// with them.
func (n Notice) TeamsData() Data {
	d := n.Data
	if n.StatusToken != "" {
		d.StatusURL = strings.ReplaceAll(d.StatusURL, n.StatusToken, MaskedToken)
		d.SurveyLinks = slices.Clone(d.SurveyLinks)
		for i := range d.SurveyLinks {
			d.SurveyLinks[i].URL = strings.ReplaceAll(d.SurveyLinks[i].URL, n.StatusToken, MaskedToken)
		}
	}
	if n.OwnWords {
		d.Text = OwnWordsStandIn
	}
	return d
}

// Covered is a message held back by the daily cap and sent in a digest.
type Covered struct {
	FeedbackID   string
	Team         string
	CauseEventID string
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

// Options are the deployment's choices that shape notices.
type Options struct {
	// StatusURL is the base of status links ("" for none).
	StatusURL string
	// CustomerRouted tells the customer which team their feedback reached.
	CustomerRouted bool
}

// Plan decides what to notify because of ev, published on subject. Events
// of no interest give an empty Decision; malformed events an ErrInvalidEvent.
func Plan(subject string, ev *feedloopv1.Event, o Options) (Decision, error) {
	switch p := ev.GetPayload().(type) {
	case *feedloopv1.Event_Received:
		return planReceived(subject, ev, p.Received, o)
	case *feedloopv1.Event_Routed:
		return planRouted(subject, ev, p.Routed, o)
	case *feedloopv1.Event_StatusChanged:
		return planStatus(subject, ev, p.StatusChanged, o)
	case *feedloopv1.Event_Escalated:
		return planEscalated(subject, ev, p.Escalated, o)
	case *feedloopv1.Event_Closed:
		return planClosed(subject, ev, p.Closed, o)
	default:
		// Commented and Replied are internal; Classified and Notified are
		// not the notifier's business.
		return Decision{}, nil
	}
}

// MaskedToken stands for the customer's status token where teams read a
// customer message (a preview, the Notified record's copy): the link is
// the customer's own, and a team holding it could answer as the customer.
const MaskedToken = "STATUS-TOKEN"

// StatusURL is the customer's status link: base + "/" + the escaped token,
// or "" when no base is configured or the item has no token.
func StatusURL(base, token string) string {
	if base == "" || token == "" {
		return ""
	}
	return strings.TrimRight(base, "/") + "/" + url.PathEscape(token)
}

// SurveyScores are the CSAT answers offered by the survey, worst first.
var SurveyScores = []int{1, 2, 3, 4, 5}

// SurveyLinks are the survey's one-click answers,
// <status url>/<token>/survey?csat=N; none without a status link.
func SurveyLinks(base, token string) []SurveyLink {
	s := StatusURL(base, token)
	if s == "" {
		return nil
	}
	out := make([]SurveyLink, 0, len(SurveyScores))
	for _, n := range SurveyScores {
		out = append(out, SurveyLink{Score: n, URL: s + "/survey?csat=" + strconv.Itoa(n)})
	}
	return out
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
	return "notify:sent:" + d.FeedbackID + ":" + stepScope(d.Step, d.Scope) + ":" + d.Channel + ":" + d.Recipient
}

// IdempotencyKey is a deterministic UUID of the delivery, given to receivers
// (Idempotency-Key header, email Message-ID) as a second line of defence.
func (d Delivery) IdempotencyKey() string {
	return bus.DeriveID(d.FeedbackID, "notify", d.Step, d.Scope, d.Channel, d.Recipient)
}

// NotifiedID is the id of the Notified event recording the delivery caused
// by event cause; the same delivery and cause always give the same id. The
// scope is part of it when set: one event may cause one step twice (an
// escalation alerts the team and its escalation target).
func (d Delivery) NotifiedID(cause string) string {
	if d.Scope == "" {
		return bus.DeriveID(cause, "notified", d.Step, d.Channel, d.Recipient)
	}
	return bus.DeriveID(cause, "notified", d.Step, d.Scope, d.Channel, d.Recipient)
}

// NoticeKey names a notice independently of its channels: the unit the
// daily cap counts, notify:notice:<feedback>:<step>[/<scope>].
func (n Notice) NoticeKey() string {
	return "notify:notice:" + n.FeedbackID + ":" + stepScope(n.Name, n.Scope)
}

func stepScope(step, scope string) string {
	if scope == "" {
		return step
	}
	return step + "/" + scope
}
