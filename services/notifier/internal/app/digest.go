package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/services/notifier/internal/channel"
	"github.com/feedloop/feedloop/services/notifier/internal/dailycap"
	"github.com/feedloop/feedloop/services/notifier/internal/steps"
)

// digestBatch bounds the digests one tick sends; the rest wait a tick.
const digestBatch = 100

// held is a customer message held back by the daily cap, as stored until
// its digest: rendered when held, in the customer's locale.
type held struct {
	Notice     string         `json:"notice"`
	FeedbackID string         `json:"feedback_id"`
	Name       string         `json:"name"`
	Team       string         `json:"team,omitempty"`
	Cause      string         `json:"cause"`
	Subject    string         `json:"subject"`
	Text       string         `json:"text"`
	Customer   steps.Customer `json:"customer"`
	At         time.Time      `json:"at"`
}

func (h *Handler) capped() bool { return h.Cap != nil && h.CapLimit > 0 }

// capRecord is a notice's admission under the daily cap, as its Notified
// records carry it so the cap can be rebuilt from the stream.
type capRecord struct{ notice, day, customer string }

// admit applies the daily cap to customer notice n: false to send it now
// (with its admission when it counted towards the cap), true when it was
// held for the digest.
func (h *Handler) admit(ctx context.Context, n steps.Notice) (bool, *capRecord, error) {
	who := steps.CapIdentity(n.Data.Customer)
	if !h.capped() || who == "" {
		return false, nil, nil
	}
	now := h.now()
	dec, err := h.Cap.Admit(ctx, n.NoticeKey(), who, steps.Day(now), h.CapLimit)
	if err != nil {
		return false, nil, err
	}
	if !dec.Hold {
		return false, &capRecord{notice: n.NoticeKey(), day: dec.Day, customer: who}, nil
	}
	r, err := h.Templates.Render(n.Name, n.Locale, n.Data)
	if err != nil {
		return false, nil, bus.Permanent(err)
	}
	b, err := json.Marshal(held{
		Notice: n.NoticeKey(), FeedbackID: n.FeedbackID, Name: n.Name, Team: n.Team,
		Cause: n.CauseEventID, Subject: r.Subject, Text: r.Text, Customer: n.Data.Customer, At: now,
	})
	if err != nil {
		return false, nil, bus.Permanent(fmt.Errorf("encode held message: %w", err))
	}
	batch := dailycap.Batch{Day: dec.Day, Customer: who}
	due := steps.DigestDueAt(dec.Day, h.DigestDelay)
	if err := h.Cap.Hold(ctx, batch, n.NoticeKey(), b, due); err != nil {
		return false, nil, err
	}
	h.Log.InfoContext(ctx, "notification held for the daily digest: customer over the daily cap",
		"feedback_id", n.FeedbackID, "step", n.Name, "team", n.Team, "day", dec.Day, "digest_due", due)
	return true, nil, nil
}

// RunDigests sends due digests every interval until ctx is cancelled.
func (h *Handler) RunDigests(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := h.SendDigests(ctx); err != nil && ctx.Err() == nil {
			h.Log.WarnContext(ctx, "digests: not all sent; retrying at the next tick", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// SendDigests sends every digest due now, each at most once across
// replicas (the delivery claims of Deliver), and retires those sent. A
// digest another replica is sending is left for a later tick.
func (h *Handler) SendDigests(ctx context.Context) error {
	if h.Cap == nil {
		return nil
	}
	due, err := h.Cap.Due(ctx, h.now(), digestBatch)
	if err != nil {
		return err
	}
	var errs []error
	for _, b := range due {
		if err := h.sendDigest(ctx, b); err != nil && !errors.Is(err, ErrInFlight) {
			errs = append(errs, fmt.Errorf("digest %s: %w", steps.DigestID(b.Day, b.Customer), err))
		}
	}
	return errors.Join(errs...)
}

func (h *Handler) sendDigest(ctx context.Context, b dailycap.Batch) (err error) {
	// A due digest is work worth following: its span keeps its Redis
	// calls, send and publish in one trace (telemetry.QuietBackground drops
	// root Redis calls); polls that find nothing due never get here.
	tp := h.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	ctx, span := tp.Tracer("github.com/feedloop/feedloop/services/notifier").Start(ctx, "digest.send",
		trace.WithAttributes(attribute.String("feedloop.digest.day", b.Day)))
	defer func() {
		if err != nil && !errors.Is(err, ErrInFlight) {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	raw, err := h.Cap.Held(ctx, b)
	if err != nil {
		return err
	}
	items := make([]held, 0, len(raw))
	for k, v := range raw {
		var it held
		if err := json.Unmarshal(v, &it); err != nil {
			h.Log.ErrorContext(ctx, "digest: held message does not decode; left out", "notice", k, "err", err)
			continue
		}
		items = append(items, it)
	}
	n, ok := digestNotice(b, items)
	if !ok {
		return h.Cap.Done(ctx, b)
	}
	targets := h.Recipients.For(n)
	if len(targets) == 0 {
		h.Log.InfoContext(ctx, "digest skipped: no contact address on any configured channel", "digest", n.FeedbackID)
		return h.Cap.Done(ctx, b)
	}
	var errs []error
	r := &rendering{}
	for _, t := range targets {
		if err := h.deliver(ctx, n, t, nil, r); err != nil {
			if !errors.Is(err, channel.ErrRejected) {
				errs = append(errs, err)
				continue
			}
			// A receiver that refuses the digest will refuse it again.
			h.Log.WarnContext(ctx, "digest rejected", "digest", n.FeedbackID, "channel", t.Channel, "recipient", logged(t.Recipient), "err", err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return h.Cap.Done(ctx, b)
}

// digestNotice is the digest of b's held items, oldest first, addressed as
// the latest of them was; false when there is nothing to send.
func digestNotice(b dailycap.Batch, items []held) (steps.Notice, bool) {
	if len(items) == 0 {
		return steps.Notice{}, false
	}
	sort.Slice(items, func(i, j int) bool {
		if !items[i].At.Equal(items[j].At) {
			return items[i].At.Before(items[j].At)
		}
		return items[i].Notice < items[j].Notice
	})
	last := items[len(items)-1]
	spec, _ := steps.SpecNamed(steps.StepDigest)
	id := steps.DigestID(b.Day, b.Customer)
	n := steps.Notice{
		Spec:         spec,
		FeedbackID:   id,
		CauseEventID: id,
		Locale:       last.Customer.Locale,
		Data: steps.Data{
			Step:     spec.Name,
			Audience: string(spec.Audience),
			Customer: last.Customer,
		},
	}
	for _, it := range items {
		n.Data.Digest = append(n.Data.Digest, steps.DigestItem{FeedbackID: it.FeedbackID, Step: it.Name, Subject: it.Subject, Text: it.Text})
		n.Covers = append(n.Covers, steps.Covered{FeedbackID: it.FeedbackID, Team: it.Team, CauseEventID: it.Cause})
	}
	return n, true
}
