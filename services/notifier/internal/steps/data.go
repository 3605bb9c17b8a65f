package steps

import "time"

// Data is what templates see (as .) and what the webhook body is built
// from. Nested parts are values, not pointers, so a template that reads
// .Assignment.Priority on a customer step gets "" instead of failing.
type Data struct {
	// Step is the step's template name, e.g. "received".
	Step string
	// Audience is "customer" or "team".
	Audience   string
	FeedbackID string
	// Team is the team concerned: the team alerted or escalated (team
	// steps), the team that planned, resolved or declined (customer steps).
	Team     string
	Customer Customer
	// Source is the submitting system, e.g. "zendesk".
	Source string
	// Channel is how the customer gave the feedback, e.g. "email".
	Channel string
	Subject string
	// Text is the feedback text: the customer's own words on received,
	// the redacted text for team steps, empty on other customer steps.
	Text       string
	Product    string
	Area       string
	ReceivedAt time.Time
	// StatusURL is the customer's status link, "" when not configured or
	// the event carries no status token.
	StatusURL string
	// Message is the team's message to the customer (planned, plan
	// changed, resolved).
	Message string
	// Reason is why the team declined (declined) or reopened (reopened).
	Reason string
	// Actor is who made the change (reopened: "customer" when the
	// customer's answer reopened it).
	Actor string
	// DueAt is the promised date (planned, plan changed); PreviousDueAt the
	// date promised before (plan changed).
	DueAt         time.Time
	PreviousDueAt time.Time
	// RerouteFrom is the team that passed the item on (routed after a reroute).
	RerouteFrom string
	// Teams are the teams that handled the item (survey).
	Teams []string
	// SurveyLinks are the one-click CSAT answers (survey); empty without a
	// status link, when only a reply can answer.
	SurveyLinks []SurveyLink
	// Escalation is set for escalated.
	Escalation Escalation
	// Digest lists the messages held back by the daily cap (digest).
	Digest []DigestItem
	// Classification is set for routed.
	Classification Classification
	// Assignment is set for routed (priority also for escalated).
	Assignment Assignment
}

// Customer is the customer as templates see them.
type Customer struct {
	ID     string `json:"id,omitempty"`
	Name   string `json:"name,omitempty"`
	Email  string `json:"email,omitempty"`
	Locale string `json:"locale,omitempty"`
}

// Classification summarises what the classifier found.
type Classification struct {
	Topics    []string
	Sentiment string
	Urgency   string
	Language  string
}

// IsZero reports whether nothing was classified.
func (c Classification) IsZero() bool {
	return len(c.Topics) == 0 && c.Sentiment == "" && c.Urgency == "" && c.Language == ""
}

// Assignment summarises a team's assignment.
type Assignment struct {
	Route         string
	Priority      string
	AcknowledgeBy time.Time
	ResolveBy     time.Time
}

// IsZero reports whether there is no assignment.
func (a Assignment) IsZero() bool {
	return a.Route == "" && a.Priority == "" && a.AcknowledgeBy.IsZero() && a.ResolveBy.IsZero()
}

// SurveyLink is one answer of the survey's CSAT question.
type SurveyLink struct {
	Score int
	URL   string
}

// Escalation describes an SLA warning or breach.
type Escalation struct {
	// Kind is "warning" (level 0) or "breach" (level 1 and up).
	Kind       string
	Level      int
	EscalateTo string
	// Deadline is which deadline, e.g. "acknowledge" or "resolve".
	Deadline string
	DueAt    time.Time
}

// IsZero reports whether there is no escalation.
func (e Escalation) IsZero() bool { return e == Escalation{} }

// IsBreach reports whether the deadline has passed.
func (e Escalation) IsBreach() bool { return e.Kind == "breach" }

// DigestItem is one held message, as rendered when it was held.
type DigestItem struct {
	FeedbackID string `json:"feedback_id"`
	Step       string `json:"step"`
	Subject    string `json:"subject"`
	Text       string `json:"text"`
}

// Sample returns Data with every field set, for step, to validate templates
// at start: a template that executes on it can only fail at run time on
// data that it treats differently (e.g. an index out of range).
func Sample(step string) Data {
	at := time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	audience := AudienceCustomer
	team := "billing"
	if s, ok := SpecNamed(step); ok {
		audience = s.Audience
	}
	fid := "0195a3c4-0000-7000-8000-000000000001"
	status := "https://status.example.com/feedback/3f2a9c0e5b7d41e8a6c2f0d9b8e7a615"
	return Data{
		Step:          step,
		Audience:      string(audience),
		FeedbackID:    fid,
		Team:          team,
		Customer:      Customer{ID: "cus_42", Name: "Ada Lovelace", Email: "ada@example.com", Locale: "en"},
		Source:        "zendesk",
		Channel:       "email",
		Subject:       "Charged twice",
		Text:          "I was charged twice for my March invoice, please refund one.",
		Product:       "Pro plan",
		Area:          "invoices",
		ReceivedAt:    at,
		StatusURL:     status,
		Message:       "We found the duplicate charge and will refund it with your next invoice.",
		Reason:        "The charge was correct: the second one is the annual add-on you ordered.",
		Actor:         "customer",
		DueAt:         time.Date(2025, 3, 28, 0, 0, 0, 0, time.UTC),
		PreviousDueAt: time.Date(2025, 3, 21, 0, 0, 0, 0, time.UTC),
		RerouteFrom:   "product",
		Teams:         []string{"billing", "product"},
		SurveyLinks:   SurveyLinks("https://status.example.com/feedback", "3f2a9c0e5b7d41e8a6c2f0d9b8e7a615"),
		Escalation: Escalation{
			Kind: "breach", Level: 1, EscalateTo: "support-leads", Deadline: "acknowledge", DueAt: at.Add(4 * time.Hour),
		},
		Digest: []DigestItem{
			{FeedbackID: fid, Step: StepPlanned, Subject: "We have a plan: Charged twice", Text: "Our billing team plans to refund you by 28 March 2025."},
			{FeedbackID: fid, Step: StepResolved, Subject: "Resolved: Charged twice", Text: "The duplicate charge was refunded."},
		},
		Classification: Classification{
			Topics: []string{"billing", "refund"}, Sentiment: "negative", Urgency: "high", Language: "en",
		},
		Assignment: Assignment{
			Route: "root/billing", Priority: "high",
			AcknowledgeBy: at.Add(4 * time.Hour), ResolveBy: at.Add(72 * time.Hour),
		},
	}
}
