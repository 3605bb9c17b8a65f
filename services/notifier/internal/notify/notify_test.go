package notify_test

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/notifier/internal/notify"
)

const fid = "0195a3c4-0000-7000-8000-0000000000aa"

func feedback(consent bool) *feedloopv1.Feedback {
	return &feedloopv1.Feedback{
		Id: fid, Source: "zendesk", Channel: feedloopv1.Channel_CHANNEL_EMAIL,
		Subject: "Charged twice", Text: "Card 4111 1111 1111 1111 was charged twice",
		Customer: &feedloopv1.Customer{
			Id: "cus_1", Email: "ada@example.com", Name: "Ada", Locale: "de-CH",
			Consent: &feedloopv1.Consent{Contact: consent},
		},
		ReceivedAt: timestamppb.New(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)),
	}
}

func received(consent bool) *feedloopv1.Event {
	return &feedloopv1.Event{Id: "ev-received", FeedbackId: fid, Payload: &feedloopv1.Event_Received{Received: &feedloopv1.Received{Feedback: feedback(consent)}}}
}

func routed(team string) *feedloopv1.Event {
	return &feedloopv1.Event{Id: "ev-routed-" + team, FeedbackId: fid, Payload: &feedloopv1.Event_Routed{Routed: &feedloopv1.Routed{
		Feedback: feedback(false),
		Classification: &feedloopv1.Classification{
			Topics:       []*feedloopv1.TopicScore{{Topic: "billing", Confidence: 0.9}, {Topic: "refund", Confidence: 0.4}},
			Sentiment:    feedloopv1.Sentiment_SENTIMENT_NEGATIVE,
			Urgency:      feedloopv1.Urgency_URGENCY_HIGH,
			RedactedText: "Card [CARD] was charged twice",
		},
		Assignment: &feedloopv1.Assignment{Team: team, Route: "root/" + team, Priority: feedloopv1.Priority_PRIORITY_URGENT},
	}}}
}

func TestPlanReceivedWithConsent(t *testing.T) {
	d, err := notify.Plan(bus.SubjectReceived, received(true), "https://status.example.com/f/")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Notices) != 1 || len(d.Skipped) != 0 {
		t.Fatalf("decision = %+v, want one notice", d)
	}
	n := d.Notices[0]
	if n.Step != feedloopv1.Step_STEP_RECEIVED || n.Name != "received" || n.Audience != notify.AudienceCustomer {
		t.Errorf("step = %v %q %q", n.Step, n.Name, n.Audience)
	}
	if n.Scope != "" || n.Team != "" || n.Locale != "de-CH" || n.CauseEventID != "ev-received" || n.FeedbackID != fid {
		t.Errorf("notice = %+v", n)
	}
	if n.Data.Text != feedback(true).Text {
		t.Errorf("customer sees %q, want their own text", n.Data.Text)
	}
	if n.Data.StatusURL != "https://status.example.com/f/"+fid {
		t.Errorf("StatusURL = %q", n.Data.StatusURL)
	}
	if n.Data.Channel != "email" || n.Data.Customer.Email != "ada@example.com" || !n.Data.ReceivedAt.Equal(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("data = %+v", n.Data)
	}
}

func TestPlanReceivedWithoutConsentSkips(t *testing.T) {
	d, err := notify.Plan(bus.SubjectReceived, received(false), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Notices) != 0 || len(d.Skipped) != 1 || d.Skipped[0].Step.Name != "received" {
		t.Fatalf("decision = %+v, want one skip and no notice", d)
	}
}

func TestPlanRoutedUsesRedactedText(t *testing.T) {
	d, err := notify.Plan(bus.RoutedSubject("billing"), routed("billing"), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Notices) != 1 {
		t.Fatalf("decision = %+v", d)
	}
	n := d.Notices[0]
	if n.Audience != notify.AudienceTeam || n.Team != "billing" || n.Scope != "billing" || n.Locale != "" {
		t.Errorf("notice = %+v", n)
	}
	if n.Data.Text != "Card [CARD] was charged twice" {
		t.Errorf("team sees %q, want the redacted text", n.Data.Text)
	}
	if n.Data.Assignment.Priority != "urgent" || n.Data.Classification.Sentiment != "negative" || len(n.Data.Classification.Topics) != 2 || n.Data.StatusURL != "" {
		t.Errorf("data = %+v", n.Data)
	}
}

func TestPlanRoutedIgnoresConsent(t *testing.T) {
	// Consent is about contacting the customer; teams are always told.
	d, err := notify.Plan(bus.RoutedSubject("billing"), routed("billing"), "")
	if err != nil || len(d.Notices) != 1 {
		t.Fatalf("decision = %+v, err = %v", d, err)
	}
}

func TestPlanInvalidEvents(t *testing.T) {
	noFeedback := received(true)
	noFeedback.GetReceived().Feedback = nil
	noFeedbackID := received(true)
	noFeedbackID.FeedbackId = ""
	otherFeedback := received(true)
	otherFeedback.GetReceived().Feedback.Id = "someone-else"
	noTeam := routed("")
	cases := map[string]struct {
		subject string
		ev      *feedloopv1.Event
	}{
		"received without feedback":    {bus.SubjectReceived, noFeedback},
		"received without feedback id": {bus.SubjectReceived, noFeedbackID},
		"feedback ids disagree":        {bus.SubjectReceived, otherFeedback},
		"received on a routed subject": {bus.RoutedSubject("billing"), received(true)},
		"routed without team":          {bus.RoutedSubject("billing"), noTeam},
		"routed on another team":       {bus.RoutedSubject("product"), routed("billing")},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := notify.Plan(tc.subject, tc.ev, ""); !errors.Is(err, notify.ErrInvalidEvent) {
				t.Fatalf("err = %v, want ErrInvalidEvent", err)
			}
		})
	}
}

func TestPlanIgnoresOtherPayloads(t *testing.T) {
	ev := &feedloopv1.Event{Id: "x", FeedbackId: fid, Payload: &feedloopv1.Event_Notified{Notified: &feedloopv1.Notified{}}}
	d, err := notify.Plan(bus.SubjectNotified, ev, "")
	if err != nil || len(d.Notices) != 0 || len(d.Skipped) != 0 {
		t.Fatalf("decision = %+v, err = %v", d, err)
	}
}

func TestDeliveryIdentity(t *testing.T) {
	a := notify.Delivery{FeedbackID: fid, Step: "routed", Scope: "billing", Channel: "webhook", Recipient: "default-webhook"}
	b := a
	b.Scope = "product"
	if a.Key() != "notify:sent:"+fid+":routed/billing:webhook:default-webhook" {
		t.Errorf("Key = %q", a.Key())
	}
	// One webhook shared by two teams must still get one alert per team.
	if a.Key() == b.Key() || a.IdempotencyKey() == b.IdempotencyKey() {
		t.Error("deliveries for two teams share a key")
	}
	if a.IdempotencyKey() != a.IdempotencyKey() || a.NotifiedID("e1") != a.NotifiedID("e1") {
		t.Error("ids are not deterministic")
	}
	if a.NotifiedID("e1") == a.NotifiedID("e2") {
		t.Error("NotifiedID ignores the cause")
	}
	r := notify.Delivery{FeedbackID: fid, Step: "received", Channel: "email", Recipient: "ada@example.com"}
	if r.Key() != "notify:sent:"+fid+":received:email:ada@example.com" {
		t.Errorf("Key = %q", r.Key())
	}
}

func TestEveryStepHasASample(t *testing.T) {
	for _, s := range notify.Steps {
		d := notify.Sample(s.Name)
		if d.Step != s.Name || d.Audience != string(s.Audience) {
			t.Errorf("Sample(%s) = step %q audience %q", s.Name, d.Step, d.Audience)
		}
		if spec, ok := notify.SpecOf(s.Step); !ok || spec != s {
			t.Errorf("SpecOf(%v) = %+v, %v", s.Step, spec, ok)
		}
	}
}
