package app_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router/internal/app"
)

// submitted reads the survey answers sent to intake.
func (w *world) submitted() []*feedloopv1.Feedback {
	w.t.Helper()
	var out []*feedloopv1.Feedback
	for _, m := range testkit.Messages(w.t, w.bus, bus.StreamSubmit, bus.SubmitSubject(app.SurveySource)) {
		fb := &feedloopv1.Feedback{}
		if err := proto.Unmarshal(m.Data, fb); err != nil {
			w.t.Fatal(err)
		}
		out = append(out, fb)
	}
	return out
}

func surveyErr(t *testing.T, err error) *app.SurveyError {
	t.Helper()
	var se *app.SurveyError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want a *SurveyError", err)
	}
	return se
}

// The survey opens once the item closes; a too-long comment is refused
// naming the field; the first answer goes to intake as a reply to the item;
// once it is attributed, another answer is refused.
func TestSurveySubmit(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.routed("fb-open", "billing")
	if se := surveyErr(t, w.survey.Submit(ctx, w.item("fb-open"), app.SurveyAnswer{CSAT: 4})); !se.Conflict || se.Reason != app.SurveyNotOpen {
		t.Errorf("answer to an open item: %+v, want a conflict", se)
	}
	// Intake's rules want a feedback id for in_reply_to, as intake makes.
	id := w.closedItem("123e4567-e89b-12d3-a456-426614174000")

	long := app.SurveyAnswer{CSAT: 4, Comment: strings.Repeat("x", app.MaxCommentBytes+1)}
	if se := surveyErr(t, w.survey.Submit(ctx, w.item(id), long)); se.Field != "comment" || se.Conflict || se.Reason != app.SurveyCommentTooLong {
		t.Errorf("too-long comment: %+v, want field comment", se)
	}
	// The status page words each refusal in the customer's language by
	// its reason.
	for _, c := range []struct {
		ans  app.SurveyAnswer
		want app.SurveyReason
	}{
		{app.SurveyAnswer{CSAT: 0}, app.SurveyNoScore},
		{app.SurveyAnswer{CSAT: 6}, app.SurveyNoScore},
		{app.SurveyAnswer{CSAT: 3, Comment: "bad\x00"}, app.SurveyInvalid},
	} {
		if se := surveyErr(t, w.survey.Submit(ctx, w.item(id), c.ans)); se.Reason != c.want {
			t.Errorf("answer %+v: reason %d, want %d", c.ans, se.Reason, c.want)
		}
	}
	if n := len(w.submitted()); n != 0 {
		t.Fatalf("refused answers published %d messages", n)
	}

	if err := w.survey.Submit(ctx, w.item(id), app.SurveyAnswer{CSAT: 4, Comment: " fine "}); err != nil {
		t.Fatal(err)
	}
	sent := w.submitted()
	if len(sent) != 1 || sent[0].GetInReplyTo() != id || sent[0].GetCsat() != 4 || sent[0].GetText() != "fine" ||
		sent[0].GetSource() != app.SurveySource || sent[0].GetCustomer().GetId() != "c-"+id {
		t.Fatalf("sent %v, want one answer of 4 replying to %s from its customer", sent, id)
	}

	// Intake and the classifier bring it back; Answers attributes it.
	ev := classified("ans-1")
	ev.GetClassified().Feedback, ev.OccurredAt = sent[0], timestamppb.Now()
	if done, err := w.answers.Answer(ctx, ev); err != nil || !done {
		t.Fatalf("Answer = %v, %v", done, err)
	}
	se := surveyErr(t, w.survey.Submit(ctx, w.item(id), app.SurveyAnswer{CSAT: 1}))
	if !se.Conflict || se.Field != "csat" || se.Reason != app.SurveyAnswered {
		t.Errorf("second answer: %+v, want a csat conflict", se)
	}
	if n := len(w.submitted()); n != 1 {
		t.Errorf("%d answers sent, want only the first", n)
	}
}
