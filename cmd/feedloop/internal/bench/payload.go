package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/classifier/classify"
	"github.com/feedloop/feedloop/services/classifier/rules"
	"github.com/feedloop/feedloop/services/router/routing"
)

// Source is the source every bench item is submitted from.
const Source = "bench"

// Item is the feedback the bench submits: with the example rules and routes
// it is classified as billing and routed to exactly one team, and the
// customer gave no contact consent, so every item costs four stream writes
// (received, classified, routed, notified) in the pipeline as in the
// baseline, and one team webhook.
func Item() *feedloopv1.Feedback {
	return &feedloopv1.Feedback{
		Source:  Source,
		Channel: feedloopv1.Channel_CHANNEL_EMAIL,
		Customer: &feedloopv1.Customer{
			Id:     "cus_bench",
			Name:   "Ada Lovelace",
			Email:  "ada@example.com",
			Locale: "en",
		},
		Subject:    "Wrong amount on my invoice",
		Text:       "The invoice for March shows the wrong amount. Could you please check it and send me a corrected one before the end of the month?",
		Product:    "webshop",
		Area:       "checkout",
		Attributes: map[string]string{"plan": "pro", "region": "uk", "order": "A-1009"},
	}
}

// itemAt returns Item with the external id of the n-th item of run.
func itemAt(run string, n int) *feedloopv1.Feedback {
	fb := Item()
	fb.ExternalId = run + "-" + strconv.Itoa(n)
	return fb
}

// Payloads are the payloads of the events one item causes in the pipeline,
// built with the public classifier and routing packages from the example
// rules and routes, so the baseline's pass-through stages publish events of
// the same size as the real services.
type Payloads struct {
	Classified *feedloopv1.Event_Classified
	Routed     *feedloopv1.Event_Routed
	Notified   *feedloopv1.Event_Notified
	// Team is the one team Item is routed to.
	Team string
}

// BuildPayloads classifies and routes Item with the rules and routes in
// examples (deploy/examples). The language comes from the customer's
// locale, which is what detection gives for this English text too.
func BuildPayloads(ctx context.Context, examples string) (*Payloads, error) {
	rc, err := rules.Load(filepath.Join(examples, "rules.yaml"))
	if err != nil {
		return nil, fmt.Errorf("bench: rules: %w", err)
	}
	tree, err := routing.Load(filepath.Join(examples, "routes.yaml"))
	if err != nil {
		return nil, fmt.Errorf("bench: routes: %w", err)
	}
	fb := Item()
	fb.ExternalId = "payload"
	fb.Id = bus.DeriveID("feedback", fb.GetSource(), fb.GetExternalId())
	now := time.Now().UTC()
	fb.ReceivedAt, fb.OccurredAt = timestamppb.New(now), timestamppb.New(now)
	cls, err := (&classify.Pipeline{Model: rc}).Classify(ctx, fb)
	if err != nil {
		return nil, fmt.Errorf("bench: classify: %w", err)
	}
	matches := tree.Match(fb, cls)
	if len(matches) != 1 {
		return nil, fmt.Errorf("bench: the bench item must reach exactly one team with %s, it reaches %d", examples, len(matches))
	}
	routed := RoutedFor(fb, cls, matches[0], now)
	classified := &feedloopv1.Classified{Feedback: fb, Classification: cls,
		// What the classifier carries over from the received event.
		Received: &feedloopv1.ReceivedRef{EventId: bus.DeriveID(fb.GetId(), "received"), OccurredAt: fb.GetReceivedAt(), StatusToken: bus.NewID()}}
	return &Payloads{
		Classified: &feedloopv1.Event_Classified{Classified: classified},
		Routed:     &feedloopv1.Event_Routed{Routed: routed},
		Notified: &feedloopv1.Event_Notified{Notified: &feedloopv1.Notified{
			Step:         feedloopv1.Step_STEP_ROUTED,
			Audience:     "team",
			Channel:      "webhook",
			Recipient:    "default-webhook",
			Team:         matches[0].Team,
			CauseEventId: bus.DeriveID(fb.GetId(), "routed", matches[0].Team),
		}},
		Team: matches[0].Team,
	}, nil
}

// RoutedFor builds the Routed payload the router publishes for match m, as
// its assign package does (deadlines counted from base).
func RoutedFor(fb *feedloopv1.Feedback, cls *feedloopv1.Classification, m routing.Match, base time.Time) *feedloopv1.Routed {
	a := &feedloopv1.Assignment{Team: m.Team, Route: m.Route, Priority: m.Priority}
	if m.SLA.Acknowledge > 0 {
		a.AcknowledgeBy = timestamppb.New(base.Add(m.SLA.Acknowledge))
	}
	if m.SLA.Resolve > 0 {
		a.ResolveBy = timestamppb.New(base.Add(m.SLA.Resolve))
	}
	for _, s := range m.Escalation {
		a.Escalation = append(a.Escalation, &feedloopv1.EscalationStep{Team: s.Team, After: durationpb.New(s.After)})
	}
	return &feedloopv1.Routed{Feedback: fb, Classification: cls, Assignment: a}
}

// receivedEvent is the feedback.received event intake publishes for fb.
func receivedEvent(fb *feedloopv1.Feedback, now time.Time) *feedloopv1.Event {
	fb = proto.CloneOf(fb)
	fb.Id = bus.DeriveID("feedback", fb.GetSource(), fb.GetExternalId())
	fb.ReceivedAt = timestamppb.New(now)
	fb.OccurredAt = fb.ReceivedAt
	return &feedloopv1.Event{
		Id:         bus.DeriveID(fb.GetId(), "received"),
		FeedbackId: fb.GetId(),
		OccurredAt: fb.ReceivedAt,
		Payload: &feedloopv1.Event_Received{Received: &feedloopv1.Received{
			Feedback:    fb,
			StatusToken: bus.NewID(),
		}},
	}
}
