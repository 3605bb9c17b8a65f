package steps_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/notifier/internal/steps"
)

const (
	fid        = "0195a3c4-0000-7000-8000-0000000000aa"
	token      = "9f86d081884c7d659a2feaa0c55ad015"
	statusBase = "https://status.example.com/f/"
)

var (
	due  = time.Date(2025, 4, 30, 0, 0, 0, 0, time.UTC)
	prev = time.Date(2025, 4, 15, 0, 0, 0, 0, time.UTC)
)

func feedback(contact, survey bool) *feedloopv1.Feedback {
	return &feedloopv1.Feedback{
		Id: fid, Source: "zendesk", Channel: feedloopv1.Channel_CHANNEL_EMAIL,
		Subject: "Charged twice", Text: "Card 4111 1111 1111 1111 was charged twice",
		Customer: &feedloopv1.Customer{
			Id: "cus_1", Email: "ada@example.com", Name: "Ada", Locale: "de-CH",
			Consent: &feedloopv1.Consent{Contact: contact, Survey: survey},
		},
		ReceivedAt: timestamppb.New(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)),
	}
}

func event(id string, p any) *feedloopv1.Event {
	ev := &feedloopv1.Event{Id: id, FeedbackId: fid}
	switch p := p.(type) {
	case *feedloopv1.Received:
		ev.Payload = &feedloopv1.Event_Received{Received: p}
	case *feedloopv1.Routed:
		ev.Payload = &feedloopv1.Event_Routed{Routed: p}
	case *feedloopv1.StatusChanged:
		ev.Payload = &feedloopv1.Event_StatusChanged{StatusChanged: p}
	case *feedloopv1.Escalated:
		ev.Payload = &feedloopv1.Event_Escalated{Escalated: p}
	case *feedloopv1.Closed:
		ev.Payload = &feedloopv1.Event_Closed{Closed: p}
	case *feedloopv1.Commented:
		ev.Payload = &feedloopv1.Event_Commented{Commented: p}
	case *feedloopv1.Replied:
		ev.Payload = &feedloopv1.Event_Replied{Replied: p}
	case *feedloopv1.Notified:
		ev.Payload = &feedloopv1.Event_Notified{Notified: p}
	default:
		panic("unknown payload")
	}
	return ev
}

func received(consent bool) *feedloopv1.Event {
	return event("ev-received", &feedloopv1.Received{Feedback: feedback(consent, false), StatusToken: token})
}

func routed(team string) *feedloopv1.Event {
	return event("ev-routed-"+team, &feedloopv1.Routed{
		Feedback: feedback(true, false),
		Classification: &feedloopv1.Classification{
			Topics:       []*feedloopv1.TopicScore{{Topic: "billing", Confidence: 0.9}, {Topic: "refund", Confidence: 0.4}},
			Sentiment:    feedloopv1.Sentiment_SENTIMENT_NEGATIVE,
			Urgency:      feedloopv1.Urgency_URGENCY_HIGH,
			RedactedText: "Card [CARD] was charged twice",
		},
		Assignment: &feedloopv1.Assignment{Team: team, Route: "root/" + team, Priority: feedloopv1.Priority_PRIORITY_URGENT, ReroutedFrom: "product"},
	})
}

// status is a StatusChanged of billing from → to; the feedback text is
// redacted as the router sends it.
func status(from, to feedloopv1.Status, mod func(*feedloopv1.StatusChanged)) *feedloopv1.Event {
	fb := feedback(true, true)
	fb.Text = "Card [CARD] was charged twice"
	sc := &feedloopv1.StatusChanged{Team: "billing", From: from, To: to, Actor: "bob", Feedback: fb, StatusToken: token}
	if mod != nil {
		mod(sc)
	}
	return event("ev-status", sc)
}

func escalated(kind feedloopv1.EscalationKind, level int32, to string) *feedloopv1.Event {
	fb := feedback(true, true)
	fb.Text = "Card [CARD] was charged twice"
	return event("ev-esc", &feedloopv1.Escalated{
		Team: "billing", Level: level, EscalateTo: to, Deadline: "acknowledge", DueAt: timestamppb.New(prev),
		Kind: kind, Feedback: fb, Priority: feedloopv1.Priority_PRIORITY_HIGH,
	})
}

func closed(round int32, contact, survey bool) *feedloopv1.Event {
	return event("ev-closed", &feedloopv1.Closed{Teams: []string{"billing", "product"}, Feedback: feedback(contact, survey), StatusToken: token, Round: round})
}

// want is the part of a Notice a case checks.
type want struct {
	name, scope, team, locale string
}

func summary(d steps.Decision) (got []want, skipped []string) {
	for _, n := range d.Notices {
		got = append(got, want{n.Name, n.Scope, n.Team, n.Locale})
	}
	for _, s := range d.Skipped {
		skipped = append(skipped, s.Step.Name+": "+s.Reason)
	}
	return got, skipped
}

func TestPlan(t *testing.T) {
	const (
		P  = feedloopv1.Status_STATUS_PLANNED
		A  = feedloopv1.Status_STATUS_ACKNOWLEDGED
		R  = feedloopv1.Status_STATUS_ROUTED
		RO = feedloopv1.Status_STATUS_REOPENED
	)
	withDue := func(sc *feedloopv1.StatusChanged) { sc.DueAt = timestamppb.New(due) }
	moved := func(sc *feedloopv1.StatusChanged) {
		sc.DueAt, sc.PreviousDueAt = timestamppb.New(due), timestamppb.New(prev)
	}
	sameDate := func(sc *feedloopv1.StatusChanged) {
		sc.DueAt, sc.PreviousDueAt = timestamppb.New(due), timestamppb.New(due)
	}
	noConsent := func(sc *feedloopv1.StatusChanged) { sc.Feedback.Customer.Consent = nil }
	upd := bus.UpdatedSubject("billing")
	cases := []struct {
		name    string
		subject string
		ev      *feedloopv1.Event
		opts    steps.Options
		want    []want
		skipped []string
	}{
		{name: "received", subject: bus.SubjectReceived, ev: received(true),
			want: []want{{"received", "", "", "de-CH"}}},
		{name: "received without consent", subject: bus.SubjectReceived, ev: received(false),
			skipped: []string{"received: customer gave no contact consent"}},
		{name: "routed alerts the team only", subject: bus.RoutedSubject("billing"), ev: routed("billing"),
			want: []want{{"routed", "billing", "billing", ""}}},
		{name: "routed tells the customer when configured", subject: bus.RoutedSubject("billing"), ev: routed("billing"), opts: steps.Options{CustomerRouted: true},
			want: []want{{"routed", "billing", "billing", ""}, {"customer_routed", "billing", "billing", "de-CH"}}},
		{name: "acknowledged", subject: upd, ev: status(R, A, nil)},
		{name: "first plan", subject: upd, ev: status(A, P, withDue),
			want: []want{{"planned", "billing/ev-status", "billing", "de-CH"}}},
		{name: "plan after reopen", subject: upd, ev: status(RO, P, withDue),
			want: []want{{"planned", "billing/ev-status", "billing", "de-CH"}}},
		{name: "plan date moved", subject: upd, ev: status(P, P, moved),
			want: []want{{"plan_changed", "billing/ev-status", "billing", "de-CH"}}},
		{name: "re-plan keeping the date", subject: upd, ev: status(P, P, sameDate)},
		{name: "re-plan without previous date", subject: upd, ev: status(P, P, withDue)},
		{name: "resolved", subject: upd, ev: status(P, feedloopv1.Status_STATUS_RESOLVED, nil),
			want: []want{{"resolved", "billing/ev-status", "billing", "de-CH"}}},
		{name: "declined", subject: upd, ev: status(A, feedloopv1.Status_STATUS_DECLINED, nil),
			want: []want{{"declined", "billing/ev-status", "billing", "de-CH"}}},
		{name: "declined without consent", subject: upd, ev: status(A, feedloopv1.Status_STATUS_DECLINED, noConsent),
			skipped: []string{"declined: customer gave no contact consent"}},
		{name: "rerouted", subject: upd, ev: status(A, feedloopv1.Status_STATUS_REROUTED, func(sc *feedloopv1.StatusChanged) { sc.RerouteTo = "product" })},
		{name: "reopened alerts the team, consent or not", subject: upd, ev: status(feedloopv1.Status_STATUS_RESOLVED, RO, noConsent),
			want: []want{{"reopened", "billing/ev-status", "billing", ""}}},
		{name: "commented is internal", subject: upd, ev: event("c", &feedloopv1.Commented{Team: "billing", Text: "call them"})},
		{name: "replied is internal", subject: upd, ev: event("r", &feedloopv1.Replied{Team: "billing", Csat: 1})},
		{name: "warning alerts the team only", subject: bus.EscalatedSubject("billing"), ev: escalated(feedloopv1.EscalationKind_ESCALATION_KIND_WARNING, 0, "support"),
			want: []want{{"escalated", "billing/billing/acknowledge/warning0/20250415T000000Z", "billing", ""}}},
		{name: "breach alerts the team and its target", subject: bus.EscalatedSubject("billing"), ev: escalated(feedloopv1.EscalationKind_ESCALATION_KIND_BREACH, 1, "support"),
			want: []want{
				{"escalated", "billing/billing/acknowledge/breach1/20250415T000000Z", "billing", ""},
				{"escalated", "support/billing/acknowledge/breach1/20250415T000000Z", "support", ""},
			}},
		{name: "breach kind inferred from the level", subject: bus.EscalatedSubject("billing"), ev: escalated(feedloopv1.EscalationKind_ESCALATION_KIND_UNSPECIFIED, 2, "cto"),
			want: []want{
				{"escalated", "billing/billing/acknowledge/breach2/20250415T000000Z", "billing", ""},
				{"escalated", "cto/billing/acknowledge/breach2/20250415T000000Z", "cto", ""},
			}},
		{name: "breach escalated to itself alerts once", subject: bus.EscalatedSubject("billing"), ev: escalated(feedloopv1.EscalationKind_ESCALATION_KIND_BREACH, 1, "billing"),
			want: []want{{"escalated", "billing/billing/acknowledge/breach1/20250415T000000Z", "billing", ""}}},
		{name: "closed asks the survey", subject: bus.SubjectClosed, ev: closed(1, true, true),
			want: []want{{"survey", "", "", "de-CH"}}},
		{name: "closed round 0 counts as the first", subject: bus.SubjectClosed, ev: closed(0, true, true),
			want: []want{{"survey", "", "", "de-CH"}}},
		{name: "closed again asks nothing", subject: bus.SubjectClosed, ev: closed(2, true, true),
			skipped: []string{"survey: survey already asked (closing round 2)"}},
		{name: "survey needs survey consent", subject: bus.SubjectClosed, ev: closed(1, true, false),
			skipped: []string{"survey: customer gave no survey consent"}},
		{name: "survey needs contact consent", subject: bus.SubjectClosed, ev: closed(1, false, true),
			skipped: []string{"survey: customer gave no contact consent"}},
		{name: "notified is ignored", subject: bus.SubjectNotified, ev: event("n", &feedloopv1.Notified{})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.StatusURL = statusBase
			d, err := steps.Plan(tc.subject, tc.ev, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			got, skipped := summary(d)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("notices = %+v\nwant      %+v", got, tc.want)
			}
			if !reflect.DeepEqual(skipped, tc.skipped) {
				t.Errorf("skipped = %q, want %q", skipped, tc.skipped)
			}
			for _, n := range d.Notices {
				if n.CauseEventID != tc.ev.GetId() || n.FeedbackID != fid || n.Data.Step != n.Name || n.Data.Audience != string(n.Audience) {
					t.Errorf("notice identity = %+v", n)
				}
				if spec, ok := steps.SpecNamed(n.Name); !ok || spec != n.Spec {
					t.Errorf("notice spec %+v is not All's %+v", n.Spec, spec)
				}
			}
		})
	}
}

func plan1(t *testing.T, subject string, ev *feedloopv1.Event, o steps.Options) steps.Notice {
	t.Helper()
	d, err := steps.Plan(subject, ev, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Notices) == 0 {
		t.Fatalf("no notice: %+v", d)
	}
	return d.Notices[0]
}

func TestReceivedData(t *testing.T) {
	n := plan1(t, bus.SubjectReceived, received(true), steps.Options{StatusURL: statusBase})
	if n.Data.Text != feedback(true, false).Text {
		t.Errorf("customer sees %q, want their own text", n.Data.Text)
	}
	if n.Data.StatusURL != "https://status.example.com/f/"+token {
		t.Errorf("StatusURL = %q, want the base and the status token", n.Data.StatusURL)
	}
	if n.Data.Channel != "email" || n.Data.Customer.Email != "ada@example.com" || !n.Data.ReceivedAt.Equal(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("data = %+v", n.Data)
	}
	noToken := received(true)
	noToken.GetReceived().StatusToken = ""
	if n := plan1(t, bus.SubjectReceived, noToken, steps.Options{StatusURL: statusBase}); n.Data.StatusURL != "" {
		t.Errorf("StatusURL without a token = %q, want none", n.Data.StatusURL)
	}
	if n := plan1(t, bus.SubjectReceived, received(true), steps.Options{}); n.Data.StatusURL != "" {
		t.Errorf("StatusURL without a base = %q, want none", n.Data.StatusURL)
	}
}

func TestRoutedData(t *testing.T) {
	d, err := steps.Plan(bus.RoutedSubject("billing"), routed("billing"), steps.Options{StatusURL: statusBase, CustomerRouted: true})
	if err != nil || len(d.Notices) != 2 {
		t.Fatal(d, err)
	}
	team, customer := d.Notices[0], d.Notices[1]
	if team.Data.Text != "Card [CARD] was charged twice" {
		t.Errorf("team sees %q, want the redacted text", team.Data.Text)
	}
	if team.Data.Assignment.Priority != "urgent" || team.Data.Classification.Sentiment != "negative" || len(team.Data.Classification.Topics) != 2 || team.Data.RerouteFrom != "product" {
		t.Errorf("team data = %+v", team.Data)
	}
	if customer.Data.Team != "billing" || customer.Data.Text != "" || customer.Data.StatusURL != "" {
		t.Errorf("customer data = %+v (no text, no status link: Routed carries no token)", customer.Data)
	}
}

func TestStatusData(t *testing.T) {
	o := steps.Options{StatusURL: statusBase}
	planned := plan1(t, bus.UpdatedSubject("billing"), status(feedloopv1.Status_STATUS_ACKNOWLEDGED, feedloopv1.Status_STATUS_PLANNED, func(sc *feedloopv1.StatusChanged) {
		sc.CustomerMessage, sc.DueAt = "We will refund you.", timestamppb.New(due)
	}), o)
	if planned.Data.Message != "We will refund you." || !planned.Data.DueAt.Equal(due) || planned.Data.Team != "billing" || planned.Data.StatusURL != statusBase+token {
		t.Errorf("planned data = %+v", planned.Data)
	}
	if planned.Data.Text != "" {
		t.Errorf("planned shows text %q; the customer gets no redacted copy of their words", planned.Data.Text)
	}
	changed := plan1(t, bus.UpdatedSubject("billing"), status(feedloopv1.Status_STATUS_PLANNED, feedloopv1.Status_STATUS_PLANNED, func(sc *feedloopv1.StatusChanged) {
		sc.DueAt, sc.PreviousDueAt = timestamppb.New(due), timestamppb.New(prev)
	}), o)
	if !changed.Data.DueAt.Equal(due) || !changed.Data.PreviousDueAt.Equal(prev) {
		t.Errorf("plan_changed data = %+v", changed.Data)
	}
	declined := plan1(t, bus.UpdatedSubject("billing"), status(feedloopv1.Status_STATUS_ACKNOWLEDGED, feedloopv1.Status_STATUS_DECLINED, func(sc *feedloopv1.StatusChanged) {
		sc.Reason = "Out of scope."
	}), o)
	if declined.Data.Reason != "Out of scope." {
		t.Errorf("declined data = %+v", declined.Data)
	}
	reopened := plan1(t, bus.UpdatedSubject("billing"), status(feedloopv1.Status_STATUS_RESOLVED, feedloopv1.Status_STATUS_REOPENED, func(sc *feedloopv1.StatusChanged) {
		sc.Actor, sc.Reason = "customer", "CSAT 1"
	}), o)
	if reopened.Audience != steps.AudienceTeam || reopened.Data.Actor != "customer" || reopened.Data.Text != "Card [CARD] was charged twice" {
		t.Errorf("reopened = %+v", reopened)
	}
}

// A plan change is scoped by its event: a redelivery is the same message,
// another move (even back to a date told before) is news.
func TestPlanChangedScopeIsTheEvent(t *testing.T) {
	at := func(id string, newDue time.Time) string {
		ev := status(feedloopv1.Status_STATUS_PLANNED, feedloopv1.Status_STATUS_PLANNED, func(sc *feedloopv1.StatusChanged) {
			sc.DueAt, sc.PreviousDueAt = timestamppb.New(newDue), timestamppb.New(prev)
		})
		ev.Id = id
		n := plan1(t, bus.UpdatedSubject("billing"), ev, steps.Options{})
		return steps.Delivery{FeedbackID: n.FeedbackID, Step: n.Name, Scope: n.Scope, Channel: "email", Recipient: "ada@example.com"}.Key()
	}
	if at("ev-a", due) != at("ev-a", due) {
		t.Error("a redelivered plan change gives two delivery keys")
	}
	if at("ev-a", due) == at("ev-b", due) {
		t.Error("two moves to the same date share a delivery key: the second would not be told")
	}
}

func TestEscalationData(t *testing.T) {
	d, err := steps.Plan(bus.EscalatedSubject("billing"), escalated(feedloopv1.EscalationKind_ESCALATION_KIND_BREACH, 1, "support"), steps.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range d.Notices {
		e := n.Data.Escalation
		if n.Data.Team != "billing" || e.Kind != "breach" || !e.IsBreach() || e.Level != 1 || e.EscalateTo != "support" || e.Deadline != "acknowledge" || !e.DueAt.Equal(prev) || n.Data.Assignment.Priority != "high" {
			t.Errorf("escalation to %s: data = %+v", n.Team, n.Data)
		}
	}
}

func TestSurveyData(t *testing.T) {
	n := plan1(t, bus.SubjectClosed, closed(1, true, true), steps.Options{StatusURL: statusBase})
	if !reflect.DeepEqual(n.Data.Teams, []string{"billing", "product"}) {
		t.Errorf("Teams = %v", n.Data.Teams)
	}
	if len(n.Data.SurveyLinks) != 5 {
		t.Fatalf("SurveyLinks = %+v, want 5", n.Data.SurveyLinks)
	}
	for i, l := range n.Data.SurveyLinks {
		if want := statusBase + token + "/survey?csat=" + string(rune('1'+i)); l.Score != i+1 || l.URL != want {
			t.Errorf("link %d = %+v, want %s", i, l, want)
		}
	}
	if n := plan1(t, bus.SubjectClosed, closed(1, true, true), steps.Options{}); len(n.Data.SurveyLinks) != 0 {
		t.Errorf("survey links without a status URL: %+v (want reply only)", n.Data.SurveyLinks)
	}
}

func TestPlanInvalidEvents(t *testing.T) {
	noFeedback := received(true)
	noFeedback.GetReceived().Feedback = nil
	noFeedbackID := received(true)
	noFeedbackID.FeedbackId = ""
	otherFeedback := received(true)
	otherFeedback.GetReceived().Feedback.Id = "someone-else"
	noDue := status(feedloopv1.Status_STATUS_PLANNED, feedloopv1.Status_STATUS_PLANNED, func(sc *feedloopv1.StatusChanged) {
		sc.PreviousDueAt = timestamppb.New(prev)
	})
	statusNoFeedback := status(feedloopv1.Status_STATUS_ACKNOWLEDGED, feedloopv1.Status_STATUS_RESOLVED, func(sc *feedloopv1.StatusChanged) { sc.Feedback = nil })
	cases := map[string]struct {
		subject string
		ev      *feedloopv1.Event
	}{
		"received without feedback":    {bus.SubjectReceived, noFeedback},
		"received without feedback id": {bus.SubjectReceived, noFeedbackID},
		"feedback ids disagree":        {bus.SubjectReceived, otherFeedback},
		"received on a routed subject": {bus.RoutedSubject("billing"), received(true)},
		"routed without team":          {bus.RoutedSubject("billing"), routed("")},
		"routed on another team":       {bus.RoutedSubject("product"), routed("billing")},
		"status on another team":       {bus.UpdatedSubject("product"), status(feedloopv1.Status_STATUS_ACKNOWLEDGED, feedloopv1.Status_STATUS_RESOLVED, nil)},
		"status without team":          {bus.UpdatedSubject("billing"), status(0, feedloopv1.Status_STATUS_RESOLVED, func(sc *feedloopv1.StatusChanged) { sc.Team = "" })},
		"status without feedback":      {bus.UpdatedSubject("billing"), statusNoFeedback},
		"plan change without a date":   {bus.UpdatedSubject("billing"), noDue},
		"escalated on another team":    {bus.EscalatedSubject("product"), escalated(feedloopv1.EscalationKind_ESCALATION_KIND_BREACH, 1, "")},
		"closed on an updated subject": {bus.UpdatedSubject("billing"), closed(1, true, true)},
		"closed without feedback":      {bus.SubjectClosed, event("c", &feedloopv1.Closed{Round: 1})},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := steps.Plan(tc.subject, tc.ev, steps.Options{}); !errors.Is(err, steps.ErrInvalidEvent) {
				t.Fatalf("err = %v, want ErrInvalidEvent", err)
			}
		})
	}
}

func TestDeliveryIdentity(t *testing.T) {
	a := steps.Delivery{FeedbackID: fid, Step: "routed", Scope: "billing", Channel: "webhook", Recipient: "default-webhook"}
	b := a
	b.Scope = "product"
	if a.Key() != "notify:sent:"+fid+":routed/billing:webhook:default-webhook" {
		t.Errorf("Key = %q", a.Key())
	}
	// One webhook shared by two teams must still get one alert per team.
	if a.Key() == b.Key() || a.IdempotencyKey() == b.IdempotencyKey() || a.NotifiedID("e1") == b.NotifiedID("e1") {
		t.Error("deliveries for two teams share a key")
	}
	if a.IdempotencyKey() != a.IdempotencyKey() || a.NotifiedID("e1") != a.NotifiedID("e1") {
		t.Error("ids are not deterministic")
	}
	if a.NotifiedID("e1") == a.NotifiedID("e2") {
		t.Error("NotifiedID ignores the cause")
	}
	r := steps.Delivery{FeedbackID: fid, Step: "received", Channel: "email", Recipient: "ada@example.com"}
	if r.Key() != "notify:sent:"+fid+":received:email:ada@example.com" {
		t.Errorf("Key = %q", r.Key())
	}
	// Unscoped ids keep the form records were first published with.
	if r.NotifiedID("e1") != bus.DeriveID("e1", "notified", "received", "email", "ada@example.com") {
		t.Error("unscoped NotifiedID changed")
	}
	// The survey has no scope: a second closing round finds the first's key.
	s1 := plan1(t, bus.SubjectClosed, closed(1, true, true), steps.Options{})
	s0 := plan1(t, bus.SubjectClosed, closed(0, true, true), steps.Options{})
	if s1.NoticeKey() != s0.NoticeKey() || s1.Scope != "" {
		t.Errorf("survey keys %q / %q differ", s1.NoticeKey(), s0.NoticeKey())
	}
}

func TestCapIdentity(t *testing.T) {
	byID := steps.CapIdentity(steps.Customer{ID: "c1", Email: "a@example.com"})
	if byID != steps.CapIdentity(steps.Customer{ID: "c1", Email: "other@example.com"}) {
		t.Error("the id does not decide")
	}
	byEmail := steps.CapIdentity(steps.Customer{Email: " A@Example.com"})
	if byEmail != steps.CapIdentity(steps.Customer{Email: "a@example.com"}) || byEmail == byID {
		t.Error("email identity is not case-insensitive, or equals an id identity")
	}
	if steps.CapIdentity(steps.Customer{Name: "Ada"}) != "" {
		t.Error("a customer without id or email has an identity")
	}
	if strings.Contains(byEmail, "example") {
		t.Errorf("identity %q leaks the address", byEmail)
	}
}

func TestDigestTiming(t *testing.T) {
	late := time.Date(2025, 3, 14, 23, 59, 59, 0, time.FixedZone("CET", 3600))
	if got := steps.Day(late); got != "2025-03-14" {
		t.Errorf("Day = %s, want the UTC day", got)
	}
	if got := steps.DigestDueAt("2025-03-14", 5*time.Minute); !got.Equal(time.Date(2025, 3, 15, 0, 5, 0, 0, time.UTC)) {
		t.Errorf("DigestDueAt = %v", got)
	}
	if got := steps.DigestDueAt("2025-12-31", 0); !got.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("DigestDueAt across the year = %v", got)
	}
}

func TestEveryStepHasASample(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range steps.All {
		if seen[s.Name] {
			t.Errorf("step %s listed twice", s.Name)
		}
		seen[s.Name] = true
		d := steps.Sample(s.Name)
		if d.Step != s.Name || d.Audience != string(s.Audience) {
			t.Errorf("Sample(%s) = step %q audience %q", s.Name, d.Step, d.Audience)
		}
	}
}
