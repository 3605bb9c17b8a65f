// Package app is the notifier's use case: one lifecycle event in, at most
// one message per (feedback, step, scope, recipient) out, each recorded by a
// feedback.notified event; customer messages over the daily cap are held
// and sent later in one digest per customer and day (digest.go).
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/notifier/internal/channel"
	"github.com/feedloop/feedloop/services/notifier/internal/dailycap"
	"github.com/feedloop/feedloop/services/notifier/internal/dedup"
	"github.com/feedloop/feedloop/services/notifier/internal/recipients"
	"github.com/feedloop/feedloop/services/notifier/internal/steps"
	"github.com/feedloop/feedloop/services/notifier/internal/templates"
)

// ErrInFlight means another sender holds the delivery's claim: retry later,
// when it will be sent (or its claim expired).
var ErrInFlight = errors.New("delivery in flight elsewhere")

// Publisher publishes events; *bus.Bus is one.
type Publisher interface {
	Publish(ctx context.Context, subject string, ev *feedloopv1.Event) (*jetstream.PubAck, error)
}

// Handler turns lifecycle events into notifications.
type Handler struct {
	Templates  *templates.Set
	Recipients *recipients.Directory
	Dedup      *dedup.Store
	Publisher  Publisher
	Log        *slog.Logger
	// Options shape the notices (status links, the optional routed note).
	Options steps.Options
	// Cap holds customer messages over CapLimit per customer and UTC day
	// for the digest; nil or CapLimit 0: no cap.
	Cap      *dailycap.Store
	CapLimit int
	// DigestDelay is how long after the end of a UTC day its digests are due.
	DigestDelay time.Duration
	// Now is the clock: it stamps Notified events and tells the day (default time.Now).
	Now func() time.Time
	// Metrics counts the results; nil counts nothing (span events are
	// added all the same).
	Metrics *Metrics
	// TracerProvider receives the digest.send spans; nil is the global one.
	TracerProvider trace.TracerProvider
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// Handle is the bus handler: it plans the event's notices and delivers each
// to every target. Deliveries already made are not repeated; the error
// returned is permanent only if every failed delivery failed for good.
func (h *Handler) Handle(ctx context.Context, m *bus.Msg) error {
	ev, err := m.Event()
	if err != nil {
		return err
	}
	dec, err := steps.Plan(m.Subject, ev, h.Options)
	if err != nil {
		return bus.Permanent(err)
	}
	for _, s := range dec.Skipped {
		h.Log.InfoContext(ctx, "notification skipped", "feedback_id", ev.GetFeedbackId(), "event_id", ev.GetId(), "step", s.Step.Name, "reason", s.Reason)
		h.Metrics.count(ctx, s.Step.Name, s.Step.Audience, "", ResultSkipped, attribute.String("feedloop.reason", s.Reason))
	}
	var errs []error
	permanent := true
	for _, n := range dec.Notices {
		targets := h.Recipients.For(n)
		if len(targets) == 0 {
			h.Log.InfoContext(ctx, "notification skipped: no contact address on any configured channel",
				"feedback_id", n.FeedbackID, "step", n.Name, "audience", n.Audience, "team", n.Team)
			h.Metrics.count(ctx, n.Name, n.Audience, "", ResultSkipped, attribute.String("feedloop.reason", "no contact address"))
			continue
		}
		var counted *capRecord
		if n.Audience == steps.AudienceCustomer {
			held, rec, err := h.admit(ctx, n)
			if err != nil {
				h.Log.WarnContext(ctx, "notification not admitted", "feedback_id", n.FeedbackID, "step", n.Name, "err", err)
				errs = append(errs, err)
				if !bus.IsPermanent(err) {
					permanent = false
				}
				continue
			}
			if held {
				h.Metrics.count(ctx, n.Name, n.Audience, "", ResultHeld)
				continue
			}
			counted = rec
		}
		r := &rendering{}
		for _, t := range targets {
			if err := h.deliver(ctx, n, t, counted, r); err != nil {
				h.Log.WarnContext(ctx, "notification failed", "feedback_id", n.FeedbackID, "step", n.Name,
					"channel", t.Channel, "recipient", logged(t.Recipient), "err", err)
				errs = append(errs, err)
				if !bus.IsPermanent(err) {
					permanent = false
				}
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	err = errors.Join(errs...)
	if permanent {
		return bus.Permanent(err)
	}
	return err
}

// deliver sends n to t at most once and publishes its Notified record;
// counted, when set, is the daily-cap admission the record carries; r
// holds n rendered, shared by n's targets.
//
// The record is published before the delivery is marked sent in Redis, so
// that whenever Redis loses the mark (a flush, a failover) the record is
// either in the stream already, where a rebuild finds it, or the mark is
// written after the loss and survives it.
func (h *Handler) deliver(ctx context.Context, n steps.Notice, t recipients.Target, counted *capRecord, r *rendering) error {
	d := steps.Delivery{FeedbackID: n.FeedbackID, Step: n.Name, Scope: n.Scope, Channel: t.Channel, Recipient: t.Recipient}
	claim, err := h.Dedup.Claim(ctx, d.Key())
	if err != nil {
		return err
	}
	switch claim.State {
	case dedup.Held:
		return fmt.Errorf("%s: %w", d.Key(), ErrInFlight)
	case dedup.Sent:
		// Already sent, maybe because of another event: republish the
		// record under the original cause. Its id is the one first
		// published, so the stream drops it, unless a crash came between
		// send and publish, in which case this restores the record.
		h.Log.DebugContext(ctx, "notification already sent", "key", d.Key(), "cause_event_id", claim.Cause)
		h.Metrics.count(ctx, n.Name, n.Audience, t.Channel, ResultDuplicate, attribute.String("feedloop.cause_event_id", claim.Cause))
		return h.publish(ctx, n, t, d, claim.Cause, counted, r)
	}

	msg, err := h.message(n, t, d, r)
	if err == nil {
		start := time.Now()
		err = t.Sender.Send(ctx, msg)
		h.Metrics.sent(ctx, t.Channel, time.Since(start))
	}
	if err != nil {
		if errors.Is(err, channel.ErrRejected) {
			h.Metrics.count(ctx, n.Name, n.Audience, t.Channel, ResultRejected)
		} else {
			h.Metrics.count(ctx, n.Name, n.Audience, t.Channel, ResultFailed)
		}
		// Release even when ctx has expired mid-send, or retries wait for the claim TTL.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		rerr := h.Dedup.Release(rctx, claim)
		cancel()
		if rerr != nil {
			// The claim expires on its own; until then retries see Held.
			h.Log.WarnContext(ctx, "release of delivery claim failed", "key", d.Key(), "err", rerr)
		}
		if errors.Is(err, channel.ErrRejected) {
			return bus.Permanent(err)
		}
		return err
	}
	h.Log.InfoContext(ctx, "notification sent", "feedback_id", n.FeedbackID, "step", n.Name,
		"audience", n.Audience, "channel", t.Channel, "recipient", logged(t.Recipient), "team", n.Team)
	h.Metrics.count(ctx, n.Name, n.Audience, t.Channel, ResultSent)
	perr := h.publish(ctx, n, t, d, n.CauseEventID, counted, r)
	// Marked even when the record failed to publish: the retry then finds
	// the mark and publishes the record again, instead of sending again
	// when the claim expires. The claim is kept if marking fails:
	// releasing it would let a retry send again at once; it expires after
	// the claim TTL instead.
	if err := h.Dedup.MarkSent(ctx, claim, n.CauseEventID); err != nil {
		return errors.Join(perr, err)
	}
	return perr
}

// rendering is one notice rendered, once, when its first target is sent
// (targets already sent need no rendering): the same for every target.
// Customer messages are also rendered for teams, for their record
// (Notice.TeamsData), once too.
type rendering struct{ sent, teams lazy }

// lazy is one rendering, made at its first use.
type lazy struct {
	done bool
	r    templates.Rendered
	err  error
}

// get renders n with data() the first time.
func (l *lazy) get(h *Handler, n steps.Notice, data func() steps.Data) (templates.Rendered, error) {
	if !l.done {
		l.r, l.err = h.Templates.Render(n.Name, n.Locale, data())
		l.done = true
	}
	return l.r, l.err
}

func (h *Handler) message(n steps.Notice, t recipients.Target, d steps.Delivery, rd *rendering) (channel.Message, error) {
	r, err := rd.sent.get(h, n, func() steps.Data { return n.Data })
	if err != nil {
		// Templates were validated at start; data they cannot render now
		// will not render on a retry either.
		return channel.Message{}, fmt.Errorf("%w: %w", channel.ErrRejected, err)
	}
	return channel.Message{
		Key:     d.IdempotencyKey(),
		To:      t.To,
		ToName:  t.ToName,
		Subject: r.Subject,
		Text:    r.Text,
		HTML:    r.HTML,
		Data:    n.Data,
	}, nil
}

// publish records the delivery of n to t, caused by event cause, as a
// Notified event; a digest records one per message it stands for, each
// under that message's feedback item and cause.
func (h *Handler) publish(ctx context.Context, n steps.Notice, t recipients.Target, d steps.Delivery, cause string, counted *capRecord, rd *rendering) error {
	// What a customer was told, for the teams to read; not a digest's,
	// which speaks of other items too.
	var subject, text string
	if n.Audience == steps.AudienceCustomer && len(n.Covers) == 0 {
		if r, err := rd.teams.get(h, n, n.TeamsData); err == nil {
			subject, text = r.Subject, r.Text
		}
	}
	covers := n.Covers
	if len(covers) == 0 {
		covers = []steps.Covered{{FeedbackID: n.FeedbackID, Team: n.Team, CauseEventID: cause}}
	}
	for _, c := range covers {
		ev := &feedloopv1.Event{
			Id:         d.NotifiedID(c.CauseEventID),
			FeedbackId: c.FeedbackID,
			OccurredAt: timestamppb.New(h.now()),
			Payload: &feedloopv1.Event_Notified{Notified: &feedloopv1.Notified{
				Step:         n.Step,
				Audience:     string(n.Audience),
				Channel:      t.Channel,
				Recipient:    t.Recipient,
				Team:         c.Team,
				CauseEventId: c.CauseEventID,
				DeliveryKey:  d.Key(),
				Subject:      subject,
				Text:         text,
			}},
		}
		if counted != nil {
			nf := ev.GetNotified()
			nf.CapNotice, nf.CapDay, nf.CapCustomer = counted.notice, counted.day, counted.customer
		}
		if _, err := h.Publisher.Publish(ctx, bus.SubjectNotified, ev); err != nil {
			return fmt.Errorf("publish notified for %s: %w", d.Key(), err)
		}
	}
	return nil
}
