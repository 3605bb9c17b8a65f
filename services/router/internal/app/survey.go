package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/intake/validate"
	"github.com/feedloop/feedloop/services/router/internal/tracelink"
)

// SurveySource is the intake source of survey answers made on the status
// page (subject feedback.submit.survey).
const SurveySource = bus.SourceSurvey

// MaxCommentBytes bounds the comment sent with a survey answer.
const MaxCommentBytes = 4 << 10

// Survey is the use case of a customer's survey answer on the status page:
// checked against the item and intake's own rules, then sent through intake
// as feedback with in_reply_to set, like any answer, where Answers
// attributes it (and workflow.Reply decides what it reopens).
type Survey struct {
	Bus *bus.Bus
	// Traces finds items' traces, so a survey answer's trace links to the
	// item's; nil links nothing.
	Traces tracelink.Traces
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// SurveyAnswer is what the customer sent.
type SurveyAnswer struct {
	CSAT    int
	Comment string
	// TooLong says the comment was cut off in transit, too long to read.
	TooLong bool
}

// SurveyError is an answer refused before anything is published, for the
// customer to correct.
type SurveyError struct {
	// Conflict says the survey is not open for the item (not closed yet,
	// or answered already), rather than that a field is wrong.
	Conflict bool
	// Field names the answer's field at fault ("csat", "comment"), if any.
	Field string
	Msg   string
	// Reason is why, for a page that says it in the customer's language
	// (Msg is the API's English).
	Reason SurveyReason
}

// SurveyReason is why a survey answer was refused.
type SurveyReason int

const (
	// SurveyNotOpen: a team is still working on the item.
	SurveyNotOpen SurveyReason = iota + 1
	// SurveyAnswered: the item has its answer already.
	SurveyAnswered
	// SurveyCommentTooLong: the comment is over MaxCommentBytes.
	SurveyCommentTooLong
	// SurveyNoScore: no score from 1 to 5.
	SurveyNoScore
	// SurveyInvalid: intake's rules refuse the answer (e.g. control
	// characters in the comment).
	SurveyInvalid
)

func (e *SurveyError) Error() string { return e.Msg }

// Submit checks ans against item and sends it to intake. Its errors: a
// *SurveyError, or the bus's, worth a retry.
func (s *Survey) Submit(ctx context.Context, item *feedloopv1.Item, ans SurveyAnswer) error {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	answered := item.GetCsat() > 0
	switch {
	case item.GetClosedAt() == nil && !answered:
		// One answer per case counts: taken before the teams are done, it
		// would stand for an outcome the customer has not seen yet.
		return &SurveyError{Conflict: true, Reason: SurveyNotOpen, Msg: "the survey opens once every team has finished with your feedback"}
	case answered:
		// The first answer counts (see SurveyFeedback): it is the one the teams
		// acted on (a low score reopened the item), so a later one may not
		// silently replace it.
		return &SurveyError{Conflict: true, Reason: SurveyAnswered, Field: "csat", Msg: fmt.Sprintf("csat: already answered (%d of 5); thank you", item.GetCsat())}
	case ans.TooLong || len(ans.Comment) > MaxCommentBytes:
		return &SurveyError{Field: "comment", Reason: SurveyCommentTooLong, Msg: fmt.Sprintf("comment: at most %d bytes", MaxCommentBytes)}
	case ans.CSAT < 1 || ans.CSAT > 5:
		return &SurveyError{Field: "csat", Reason: SurveyNoScore, Msg: "csat: choose a score from 1 to 5"}
	}
	// Intake's own rules, before anything is published: an answer intake
	// would dead-letter must be refused here, where the customer can still
	// correct it.
	fb := SurveyFeedback(item, int32(ans.CSAT), ans.Comment, now())
	if vs := validate.Feedback(fb, now()); len(vs) > 0 {
		field := formField(vs[0].Field)
		return &SurveyError{Field: field, Reason: SurveyInvalid, Msg: field + ": " + vs[0].Description}
	}
	tracelink.Item(ctx, s.Traces, item.GetFeedbackId())
	data, err := proto.Marshal(fb)
	if err != nil {
		return err
	}
	// The message id and intake's idempotency key (source, external_id)
	// are the answer's identity: a second click on the same answer is a
	// duplicate, a different answer is not (see SurveyFeedback).
	_, err = s.Bus.PublishData(ctx, bus.SubmitSubject(SurveySource), fb.GetExternalId(), data, nil)
	return err
}

// formField is the survey's name of a violated Feedback field: the score
// and comment are the answer's csat and text.
func formField(path string) string {
	switch f := strings.TrimPrefix(path, validate.Prefix+"."); f {
	case "text":
		return "comment"
	default:
		return f
	}
}

// SurveyFeedback is the survey answer to item as intake takes it: a feedback item
// of source "survey" replying to item, from the same customer.
//
// Its external id (and so the bus message id and intake's idempotency key)
// is the item's and the answer's: the same answer sent twice is one
// submission, while a different answer is another, so an answer that was
// refused or dead-lettered can never shadow a later, valid one through the
// duplicate window. Which answer counts is decided where answers are
// attributed, one per item: the first (workflow.Reply).
func SurveyFeedback(item *feedloopv1.Item, csat int32, comment string, now time.Time) *feedloopv1.Feedback {
	var cust *feedloopv1.Customer
	if c := item.GetFeedback().GetCustomer(); c != nil {
		cust = proto.CloneOf(c)
	}
	text := strings.TrimSpace(comment)
	return &feedloopv1.Feedback{
		Source:     SurveySource,
		ExternalId: AnswerID(item.GetFeedbackId(), csat, text),
		Channel:    feedloopv1.Channel_CHANNEL_SURVEY,
		Customer:   cust,
		Text:       text,
		Csat:       proto.Int32(csat),
		InReplyTo:  item.GetFeedbackId(),
		OccurredAt: timestamppb.New(now),
	}
}

// AnswerID is the external id of an answer: "csat-<item>-<hash>", the hash
// over the score and the comment (length-prefixed, so no two answers
// collide by where one field ends).
func AnswerID(itemID string, csat int32, text string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%d\n%d\n%s", csat, len(text), text)
	return "csat-" + itemID + "-" + hex.EncodeToString(h.Sum(nil)[:8])
}
