package app

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/feedloop/feedloop/pkg/bus"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router/internal/itemlock"
	"github.com/feedloop/feedloop/services/router/internal/tracelink"
	"github.com/feedloop/feedloop/services/router/internal/workflow"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Store is the read model as the use cases write it.
type Store interface {
	Apply(ctx context.Context, ev *feedloopv1.Event) (bool, error)
	Item(ctx context.Context, id string) (*feedloopv1.Item, error)
}

// Answers is the use case of a customer's answer to an item: feedback that
// arrives through intake with in_reply_to set (a survey answer from the
// status page or the company's survey tool, or a reply). Instead of being
// routed as a new item, the answer is attributed to every team that handled
// the original item, and a bad score or a reply in words reopens the shares
// that were closed (package workflow decides).
type Answers struct {
	Store    Store
	NotFound func(error) bool
	Lock     *itemlock.Locker
	Bus      *bus.Bus
	Log      *slog.Logger
	// Traces finds items' traces, so the answer's trace links to the
	// answered item's; nil links nothing.
	Traces tracelink.Traces
}

// Answer takes a Classified event. It returns false when the event is not
// an answer to a known item, which is then routed like any feedback.
func (h *Answers) Answer(ctx context.Context, in *feedloopv1.Event) (bool, error) {
	cl := in.GetClassified()
	fb := cl.GetFeedback()
	target := fb.GetInReplyTo()
	if target == "" || target == in.GetFeedbackId() {
		return false, nil
	}
	unlock, err := h.Lock.Lock(ctx, target)
	if err != nil {
		return false, fmt.Errorf("answer %s: %w", in.GetFeedbackId(), err)
	}
	defer unlock()
	tracelink.Item(ctx, h.Traces, target)
	trace.SpanFromContext(ctx).AddEvent("answer to an earlier item", trace.WithAttributes(
		attribute.String("feedloop.answer_id", in.GetFeedbackId()), attribute.String("feedloop.in_reply_to", target)))
	item, err := h.Store.Item(ctx, target)
	switch {
	case err == nil:
	case h.NotFound(err):
		h.Log.WarnContext(ctx, "answer to an unknown item; routing it as new feedback", "feedback_id", in.GetFeedbackId(), "in_reply_to", target)
		return false, nil
	default:
		return false, fmt.Errorf("answer %s: %w", in.GetFeedbackId(), err)
	}
	if !sameCustomer(item.GetFeedback().GetCustomer(), fb.GetCustomer()) {
		// A wrongly threaded message must not reopen, or be read in,
		// another customer's item.
		h.Log.WarnContext(ctx, "answer from another customer than the item's; routing it as new feedback", "feedback_id", in.GetFeedbackId(), "in_reply_to", target)
		return false, nil
	}
	text := cl.GetClassification().GetRedactedText()
	if text == "" {
		text = fb.GetText()
	}
	outs := workflow.Reply(item, workflow.Answer{
		EventID:    in.GetId(),
		At:         in.GetOccurredAt().AsTime(),
		FeedbackID: in.GetFeedbackId(),
		CSAT:       fb.GetCsat(),
		Text:       text,
	})
	if len(outs) == 0 && fb.GetCsat() > 0 {
		// One survey answer per item counts, the first (workflow.Reply):
		// this one stays in the event log as received, but is neither
		// attributed nor routed as new feedback.
		h.Log.InfoContext(ctx, "survey already answered; the first answer counts", "feedback_id", target, "answer_id", in.GetFeedbackId(), "csat", fb.GetCsat(), "counted_csat", item.GetCsat())
		return true, nil
	}
	for _, o := range outs {
		if _, err := h.Bus.Publish(ctx, o.Subject, o.Event); err != nil {
			return false, fmt.Errorf("answer %s: %w", in.GetFeedbackId(), err)
		}
	}
	for _, o := range outs {
		if _, err := h.Store.Apply(ctx, o.Event); err != nil {
			h.Log.WarnContext(ctx, "answer: read model not updated; the projector will catch up", "event_id", o.Event.GetId(), "err", err)
		}
	}
	h.Log.InfoContext(ctx, "customer answer attributed", "feedback_id", target, "answer_id", in.GetFeedbackId(), "csat", fb.GetCsat(), "events", len(outs))
	return true, nil
}

// sameCustomer reports whether an answer comes from the item's customer:
// the same customer id when both have one, else the same email address.
func sameCustomer(item, answer *feedloopv1.Customer) bool {
	if item.GetId() != "" && answer.GetId() != "" {
		return item.GetId() == answer.GetId()
	}
	return item.GetEmail() != "" && strings.EqualFold(item.GetEmail(), answer.GetEmail())
}
