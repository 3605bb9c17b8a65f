package app

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

type classifierFunc func(context.Context, *feedloopv1.Feedback) (*feedloopv1.Classification, error)

func (f classifierFunc) Classify(ctx context.Context, fb *feedloopv1.Feedback) (*feedloopv1.Classification, error) {
	return f(ctx, fb)
}

var byText = classifierFunc(func(_ context.Context, fb *feedloopv1.Feedback) (*feedloopv1.Classification, error) {
	return &feedloopv1.Classification{Topics: []*feedloopv1.TopicScore{{Topic: fb.GetText(), Confidence: 1}}}, nil
})

func received(id string, fb *feedloopv1.Feedback) *feedloopv1.Event {
	return &feedloopv1.Event{Id: id, FeedbackId: fb.GetId(), Payload: &feedloopv1.Event_Received{Received: &feedloopv1.Received{Feedback: fb}}}
}

func TestClassifyBuildsTheClassifiedEvent(t *testing.T) {
	fb := &feedloopv1.Feedback{Id: "fb-1", Text: "billing"}
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	out, err := Classify(context.Background(), byText, received("ev-1", fb), now)
	if err != nil {
		t.Fatal(err)
	}
	if out.GetId() != bus.DeriveID("ev-1", "classified") {
		t.Errorf("id = %s, want the id derived from the input", out.GetId())
	}
	if out.GetFeedbackId() != "fb-1" || !out.GetOccurredAt().AsTime().Equal(now) {
		t.Errorf("feedback_id/occurred_at = %s/%v", out.GetFeedbackId(), out.GetOccurredAt().AsTime())
	}
	c := out.GetClassified()
	if !proto.Equal(c.GetFeedback(), fb) || c.GetClassification().GetTopics()[0].GetTopic() != "billing" {
		t.Errorf("payload = %v", c)
	}
	// Same input, later: same id (idempotency by construction).
	again, _ := Classify(context.Background(), byText, received("ev-1", fb), now.Add(time.Hour))
	other, _ := Classify(context.Background(), byText, received("ev-2", fb), now)
	if again.GetId() != out.GetId() || other.GetId() == out.GetId() {
		t.Errorf("ids: first %s, redelivered %s, other input %s", out.GetId(), again.GetId(), other.GetId())
	}
}

// The classified event carries the rest of the received event, so that a
// reader can rebuild that event whole from it.
func TestClassifiedCarriesTheReceivedEvent(t *testing.T) {
	fb := &feedloopv1.Feedback{Id: "fb-1", Text: "billing"}
	at := timestamppb.New(time.Date(2025, 6, 1, 11, 59, 0, 0, time.UTC))
	in := &feedloopv1.Event{Id: "ev-1", FeedbackId: "fb-1", OccurredAt: at,
		Payload: &feedloopv1.Event_Received{Received: &feedloopv1.Received{Feedback: fb, StatusToken: "tok-1"}}}
	out, err := Classify(context.Background(), byText, in, at.AsTime().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	want := &feedloopv1.ReceivedRef{EventId: "ev-1", OccurredAt: at, StatusToken: "tok-1"}
	if got := out.GetClassified().GetReceived(); !proto.Equal(got, want) {
		t.Errorf("received = %v, want %v", got, want)
	}
}

func TestClassifyFallsBackToTheFeedbackID(t *testing.T) {
	in := received("ev-1", &feedloopv1.Feedback{Id: "fb-9"})
	in.FeedbackId = ""
	out, err := Classify(context.Background(), byText, in, time.Now())
	if err != nil || out.GetFeedbackId() != "fb-9" {
		t.Errorf("feedback_id = %q, %v; want fb-9", out.GetFeedbackId(), err)
	}
}

func TestMalformedInputIsPermanent(t *testing.T) {
	notified := &feedloopv1.Event{Id: "ev-1", Payload: &feedloopv1.Event_Notified{Notified: &feedloopv1.Notified{}}}
	_, err := Classify(context.Background(), byText, notified, time.Now())
	if !bus.IsPermanent(err) || !errors.Is(err, ErrNotReceived) {
		t.Errorf("Notified payload: err = %v, want permanent ErrNotReceived", err)
	}
	empty := &feedloopv1.Event{Id: "ev-2", Payload: &feedloopv1.Event_Received{Received: &feedloopv1.Received{}}}
	_, err = Classify(context.Background(), byText, empty, time.Now())
	if !bus.IsPermanent(err) || !errors.Is(err, ErrNoFeedback) {
		t.Errorf("no feedback: err = %v, want permanent ErrNoFeedback", err)
	}
}

func TestClassifierFailureIsRetried(t *testing.T) {
	boom := errors.New("model unavailable")
	failing := classifierFunc(func(context.Context, *feedloopv1.Feedback) (*feedloopv1.Classification, error) { return nil, boom })
	_, err := Classify(context.Background(), failing, received("ev-1", &feedloopv1.Feedback{Id: "fb"}), time.Now())
	if !errors.Is(err, boom) || bus.IsPermanent(err) {
		t.Errorf("err = %v, want the transient classifier error", err)
	}
}
