// Package app is the classifier's use case: a feedback.received event in,
// its feedback.classified event out. It is a pure function of the input
// event (and the clock for occurred_at), so a redelivered input yields an
// event with the same id, which the stream's duplicate window drops.
package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// Classifier classifies one feedback item (classify.Pipeline in the service).
type Classifier interface {
	Classify(ctx context.Context, fb *feedloopv1.Feedback) (*feedloopv1.Classification, error)
}

var (
	// ErrNotReceived: the event on feedback.received is not a Received.
	ErrNotReceived = errors.New("event is not a Received")
	// ErrNoFeedback: the Received event carries no feedback.
	ErrNoFeedback = errors.New("received event carries no feedback")
)

// ClassifiedIDPart is the part that derives the output event id from the
// input event id.
const ClassifiedIDPart = "classified"

// Classify classifies the feedback of a Received event and returns the
// Classified event to publish. Malformed input is a bus.Permanent error (no
// retry will fix it); a classifier failure is returned as is, to be retried.
func Classify(ctx context.Context, c Classifier, in *feedloopv1.Event, now time.Time) (*feedloopv1.Event, error) {
	rc := in.GetReceived()
	if rc == nil {
		return nil, bus.Permanent(fmt.Errorf("event %s carries %q: %w", in.GetId(), bus.PayloadType(in), ErrNotReceived))
	}
	fb := rc.GetFeedback()
	if fb == nil {
		return nil, bus.Permanent(fmt.Errorf("event %s: %w", in.GetId(), ErrNoFeedback))
	}
	cls, err := c.Classify(ctx, fb)
	if err != nil {
		return nil, fmt.Errorf("classify feedback %s: %w", fb.GetId(), err)
	}
	feedbackID := in.GetFeedbackId()
	if feedbackID == "" {
		feedbackID = fb.GetId()
	}
	return &feedloopv1.Event{
		Id:         bus.DeriveID(in.GetId(), ClassifiedIDPart),
		FeedbackId: feedbackID,
		OccurredAt: timestamppb.New(now),
		Payload: &feedloopv1.Event_Classified{Classified: &feedloopv1.Classified{
			Feedback:       fb,
			Classification: cls,
			// The rest of the received event, for the router's read model
			// to fold both at once.
			Received: &feedloopv1.ReceivedRef{EventId: in.GetId(), OccurredAt: in.GetOccurredAt(), StatusToken: rc.GetStatusToken()},
		}},
	}, nil
}
