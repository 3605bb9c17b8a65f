// Package assign turns one feedback.classified event into the
// feedback.routed.<team> events the routing tree calls for. It is pure: the
// same input event and tree always give the same output events, ids and
// times included, so a redelivered input republishes identical events that
// JetStream's duplicate window drops.
package assign

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router/routing"
)

// Errors for inputs no retry can fix.
var (
	ErrNotClassified = errors.New("payload is not Classified")
	ErrMalformed     = errors.New("malformed Classified event")
)

// Out is one event to publish and the match that caused it.
type Out struct {
	Subject string
	Event   *feedloopv1.Event
	Match   routing.Match
}

// Route returns one Routed event per team that tree gives in to. Each event
// id is derived from the input id and the team; occurred_at is the input's,
// and it is also the base of the SLA deadlines (a zero SLA duration leaves
// that deadline unset). The assignment carries the route's escalation
// chain, so the SLA timers need no routing tree (which may have changed
// by the time a deadline passes).
func Route(in *feedloopv1.Event, tree *routing.Tree) ([]Out, error) {
	cl := in.GetClassified()
	if cl == nil {
		return nil, fmt.Errorf("%w: event %s carries %s", ErrNotClassified, in.GetId(), bus.PayloadType(in))
	}
	fb := cl.GetFeedback()
	if fb == nil {
		return nil, fmt.Errorf("%w: event %s has no feedback", ErrMalformed, in.GetId())
	}
	feedbackID := in.GetFeedbackId()
	if feedbackID == "" {
		feedbackID = fb.GetId()
	}
	if feedbackID == "" {
		return nil, fmt.Errorf("%w: event %s has no feedback id", ErrMalformed, in.GetId())
	}
	// The deadlines must not depend on when the event is handled, or a
	// redelivery would publish a different assignment under the same id.
	if !in.GetOccurredAt().IsValid() {
		return nil, fmt.Errorf("%w: event %s has no valid occurred_at", ErrMalformed, in.GetId())
	}
	base := in.GetOccurredAt().AsTime()

	matches := tree.Match(fb, cl.GetClassification())
	out := make([]Out, 0, len(matches))
	for _, m := range matches {
		ev := &feedloopv1.Event{
			Id:         bus.DeriveID(in.GetId(), "routed", m.Team),
			FeedbackId: feedbackID,
			OccurredAt: in.GetOccurredAt(),
			Payload: &feedloopv1.Event_Routed{Routed: &feedloopv1.Routed{
				Feedback:       fb,
				Classification: cl.GetClassification(),
				Assignment: &feedloopv1.Assignment{
					Team:          m.Team,
					Route:         m.Route,
					Priority:      m.Priority,
					AcknowledgeBy: deadline(base, m.SLA.Acknowledge),
					ResolveBy:     deadline(base, m.SLA.Resolve),
					Escalation:    escalation(m.Escalation),
				},
			}},
		}
		out = append(out, Out{Subject: bus.RoutedSubject(m.Team), Event: ev, Match: m})
	}
	return out, nil
}

func escalation(chain []routing.EscalationStep) []*feedloopv1.EscalationStep {
	if len(chain) == 0 {
		return nil
	}
	out := make([]*feedloopv1.EscalationStep, len(chain))
	for i, s := range chain {
		out[i] = &feedloopv1.EscalationStep{Team: s.Team, After: durationpb.New(s.After)}
	}
	return out
}

func deadline(base time.Time, d time.Duration) *timestamppb.Timestamp {
	if d <= 0 {
		return nil
	}
	return timestamppb.New(base.Add(d))
}
