package notify

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
	// Team is the team concerned (team steps).
	Team     string
	Customer Customer
	// Source is the submitting system, e.g. "zendesk".
	Source string
	// Channel is how the customer gave the feedback, e.g. "email".
	Channel string
	Subject string
	// Text is the feedback text: the customer's own words for customer
	// steps, the redacted text for team steps.
	Text       string
	Product    string
	Area       string
	ReceivedAt time.Time
	// StatusURL is the customer's status link, "" when not configured.
	StatusURL string
	// Classification is set for team steps.
	Classification Classification
	// Assignment is set for team steps.
	Assignment Assignment
}

// Customer is the customer as templates see them.
type Customer struct {
	ID     string
	Name   string
	Email  string
	Locale string
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

// Sample returns Data with every field set, for step, to validate templates
// at start: a template that executes on it can only fail at run time on
// data that it treats differently (e.g. an index out of range).
func Sample(step string) Data {
	at := time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	audience := AudienceCustomer
	team := ""
	for _, s := range Steps {
		if s.Name == step {
			audience = s.Audience
		}
	}
	if audience == AudienceTeam {
		team = "billing"
	}
	return Data{
		Step:       step,
		Audience:   string(audience),
		FeedbackID: "0195a3c4-0000-7000-8000-000000000001",
		Team:       team,
		Customer:   Customer{ID: "cus_42", Name: "Ada Lovelace", Email: "ada@example.com", Locale: "en"},
		Source:     "zendesk",
		Channel:    "email",
		Subject:    "Charged twice",
		Text:       "I was charged twice for my March invoice, please refund one.",
		Product:    "Pro plan",
		Area:       "invoices",
		ReceivedAt: at,
		StatusURL:  "https://status.example.com/feedback/0195a3c4-0000-7000-8000-000000000001",
		Classification: Classification{
			Topics: []string{"billing", "refund"}, Sentiment: "negative", Urgency: "high", Language: "en",
		},
		Assignment: Assignment{
			Route: "root/billing", Priority: "high",
			AcknowledgeBy: at.Add(4 * time.Hour), ResolveBy: at.Add(72 * time.Hour),
		},
	}
}
