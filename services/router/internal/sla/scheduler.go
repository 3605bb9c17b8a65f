package sla

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/feedloop/feedloop/pkg/bus"
)

// batchSize is how many due timers one read takes.
const batchSize = 256

// Scheduler publishes the firings that fall due. Every router replica may
// run one on the same index: see the package comment.
type Scheduler struct {
	idx   *Index
	pub   *bus.Bus
	tick  time.Duration
	clock func() time.Time
	log   *slog.Logger
	ticks atomic.Int64 // ticks completed, so tests know a tick saw their clock
	trace trace.Tracer
}

// NewScheduler returns a scheduler of idx's timers that publishes on pub.
// clock tells the time (nil: time.Now); only its whole seconds count.
// cfg gives Tick and Logger; its other fields are idx's business.
func NewScheduler(idx *Index, pub *bus.Bus, cfg Config, clock func() time.Time) *Scheduler {
	cfg = cfg.withDefaults()
	if clock == nil {
		clock = time.Now
	}
	tp := cfg.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return &Scheduler{idx: idx, pub: pub, tick: cfg.Tick, clock: clock, log: cfg.Logger,
		trace: tp.Tracer("github.com/feedloop/feedloop/services/router/sla")}
}

// Run fires due timers at once (a restart catches up on what fell due
// while no scheduler ran) and then every Tick, until ctx is cancelled; it
// returns nil then. A failed tick (Redis or NATS away) is logged, and its
// timers fire on a later tick.
func (s *Scheduler) Run(ctx context.Context) error {
	t := time.NewTicker(s.tick)
	defer t.Stop()
	for {
		if _, err := s.Fire(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("sla: tick failed; due timers fire on a later tick", "err", err)
		}
		s.ticks.Add(1)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Fire publishes every firing due by the clock's second, each followed by
// applying its event to the index, and reports how many it published (a
// replica that lost a race counts its duplicate too). A firing whose next
// level is due at once fires in the same call.
func (s *Scheduler) Fire(ctx context.Context) (int, error) {
	// A missing or partial index (Redis lost, rebuild running) would fire
	// from stale levels: nothing fires until it is complete again.
	if ok, err := s.idx.Ready(ctx); err != nil || !ok {
		return 0, err
	}
	now := s.clock().Unix()
	fired := 0
	// Bounded so that a pathological index cannot hold a tick for ever.
	for range 1000 {
		ms, err := s.idx.due(ctx, now, batchSize)
		if err != nil {
			return fired, err
		}
		progress := false
		for _, m := range ms {
			ok, err := s.fire(ctx, m, now)
			if err != nil {
				return fired, err
			}
			if ok {
				fired++
				progress = true
			}
		}
		// Read again while firings happen: they may have armed levels due
		// now. Members that did not fire were put right by reconcile.
		if !progress {
			break
		}
	}
	return fired, nil
}

// fire publishes the firing m names if it is still due, then applies it,
// which moves the timer on for every replica.
func (s *Scheduler) fire(ctx context.Context, m string, now int64) (_ bool, err error) {
	// A due timer is work worth following: its span keeps the firing's
	// Redis calls and publish in one trace (telemetry.QuietBackground drops
	// them as roots); idle ticks never get here and start nothing.
	ctx, span := s.trace.Start(ctx, "sla.fire", trace.WithAttributes(attribute.String("feedloop.sla.timer", m)))
	defer func() {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	ev, err := s.idx.firing(ctx, m, now)
	if err != nil {
		return false, err
	}
	if ev == nil {
		return false, s.idx.reconcile(ctx, m)
	}
	e := ev.GetEscalated()
	ack, err := s.pub.Publish(ctx, bus.EscalatedSubject(e.GetTeam()), ev)
	if err != nil {
		return false, fmt.Errorf("sla: publish %s: %w", m, err)
	}
	if err := s.idx.Apply(ctx, ev); err != nil {
		return false, err
	}
	if !ack.Duplicate {
		s.log.Info("sla escalated", "feedback_id", ev.GetFeedbackId(), "team", e.GetTeam(),
			"deadline", e.GetDeadline(), "kind", e.GetKind().String(), "level", e.GetLevel(),
			"escalate_to", e.GetEscalateTo(), "due_at", e.GetDueAt().AsTime(), "event_id", ev.GetId())
	}
	return true, nil
}
