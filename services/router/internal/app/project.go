package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/rebuild"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router/internal/readmodel"
	"github.com/feedloop/feedloop/services/router/internal/sla"
	"github.com/feedloop/feedloop/services/router/internal/workflow"
)

// Projector sizing. Every event of every item passes the projector, so it
// folds them in batches: each of the consumer's workers hands one event to
// the committer and waits for the transaction it went into, and the
// committer folds what arrives within ProjectorLinger of a batch's first
// event (up to ProjectorBatch) in one read-model and one SLA-index
// transaction: a handful of Redis round trips per batch instead of about
// ten per event. The linger delays no customer or team: the routed event is
// published before the routing consumer folds it in, and the team API reads
// an item after its alert, so only the read model's lag (a millisecond)
// grows.
const (
	ProjectorBatch  = 64
	ProjectorLinger = time.Millisecond
)

// Projector is the use case "an event of the stream in, the read model and
// the SLA index up to date": the projector consumer's handler (Project) and
// its committer, which also folds the routing consumer's routed events at
// once (ApplyNow). New starts the committer; Close stops it.
type Projector struct {
	Bus   *bus.Bus
	Store *readmodel.Store
	SLA   *sla.Index
	Log   *slog.Logger
	// Tracer starts each batch's span; Timeout bounds a batch's Redis work
	// (the consumer's AckWait: past it the messages are redelivered anyway).
	Tracer  trace.Tracer
	Timeout time.Duration

	folds chan *fold
	// nows are the routing consumer's routed events, applied at once: the
	// committer takes them before the projector's own folds, and nobody
	// waits for them (see applyNow).
	nows chan *fold
	// appliedNow holds the ids of the events applyNow folded into the read
	// model, each with its feedback id; the projector's own delivery of one
	// then skips the read model (its reads would only find the event
	// applied): a routed event goes to the SLA index alone, a classified
	// one is acked at once, a received one keeps its trace only
	// (AppliedAtOnce). Bounded by appliedNowMax.
	mu         sync.Mutex
	appliedNow map[string]string
	done       chan struct{}
}

// appliedNowMax bounds appliedNow: an id the projector never sees (another
// replica's delivery) must not stay for ever. Forgetting one costs only
// the reads that find it applied. An id waits as long as the projector
// lags the routing consumer (two per item): at saturation the projector
// ran 16,000 events (4,000 items) behind, and a bound of 8,192 was reached
// and cleared about once per 10,000 items, which forgot half the ids
// before their deliveries came. Three ids per item since the received
// event is applied at once too. About 120 bytes an id with its feedback
// id: at most ≈ 4 MB.
const appliedNowMax = 64 * nowQueue

// nowQueue bounds the events waiting to be applied at once: a full queue
// holds the routing consumer back. It was sized for 256 items when each
// routed event came with its classified event alone; with the received
// event too it holds about 170 (one team each), and the bench's items per
// second did not fall (issue 18, docs/bench.md).
const nowQueue = 8 * ProjectorBatch

// fold is one event waiting for its batch.
type fold struct {
	ctx         context.Context
	ev          *feedloopv1.Event
	traceparent string // of a received event: the item's own trace
	// readModelOnly is a routed event applied at once (applyNow): the
	// projector folds it into the SLA index when its turn comes.
	readModelOnly bool
	// slaOnly is the projector's delivery of an event applyNow already
	// folded into the read model.
	slaOnly bool
	// traceOf is set, and ev nil, for the projector's delivery of a
	// received event applyNow already folded: only its traceparent is left
	// to keep, as the trace of item traceOf (KeepTrace).
	traceOf string
	// err gets the outcome; nil for an event applied at once, whose
	// failure is only logged.
	err chan error
}

// Start starts the committer; p's exported fields are set.
func (p *Projector) Start() {
	p.folds = make(chan *fold)
	p.nows = make(chan *fold, nowQueue)
	p.done = make(chan struct{})
	p.appliedNow = map[string]string{}
	go p.run()
}

// Close stops the committer once no handler can hand it more.
func (p *Projector) Close() {
	close(p.folds)
	<-p.done
}

// Project folds one event into the read model and the SLA index; both are
// idempotent by event id, so a redelivery or an event already applied by
// the team API changes nothing. traceparent is a received event's, the
// item's own trace, kept with the item.
func (p *Projector) Project(ctx context.Context, ev *feedloopv1.Event, traceparent string) error {
	f := &fold{ctx: ctx, ev: ev, err: make(chan error, 1)}
	if ev.GetReceived() != nil {
		f.traceparent = traceparent
	}
	select {
	case p.folds <- f:
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-f.err
}

// AppliedAtOnce reports whether the projector's own delivery of event id
// on subject was applied to the read model at once, so that its handler
// need not decode it: a classified event (which the SLA index ignores) has
// nothing left to do; a received event only its trace, to be kept as
// feedbackID's (KeepTrace). A routed event is never reported: the SLA index
// needs it. It is forgotten once asked for, as in commit: a redelivery goes
// through the read model again.
func (p *Projector) AppliedAtOnce(subject, id string) (feedbackID string, ok bool) {
	if (subject != bus.SubjectClassified && subject != bus.SubjectReceived) || id == "" {
		return "", false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if feedbackID, ok = p.appliedNow[id]; ok {
		delete(p.appliedNow, id)
	}
	return feedbackID, ok
}

// KeepTrace keeps traceparent, the header of a received event's message,
// as the trace of item feedbackID, as Project does for a received event
// it folds: in the committer's next batch. Nothing to keep, nothing done.
func (p *Projector) KeepTrace(ctx context.Context, feedbackID, traceparent string) error {
	if feedbackID == "" || traceparent == "" {
		return nil
	}
	f := &fold{ctx: ctx, traceOf: feedbackID, traceparent: traceparent, err: make(chan error, 1)}
	select {
	case p.folds <- f:
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-f.err
}

// ApplyNow queues a routed event, or the classified event it was routed
// from, or the received event that came from (projection.ReceivedOf),
// once stored, to be folded into the read model ahead of the
// projector's backlog, so its team can act on it at once; the projector's
// own delivery of it then skips the read model (see appliedNow), or
// applies it again, harmlessly. The routing consumer
// does not wait for the fold: routing must not slow down to the pace of
// the projector's batches (it did, when it waited for each commit). Only
// a full queue holds it back, so an alerted item never lags the read model
// by more than the queue. The SLA index is the projector's alone: it sees
// every event in stream order, and deadlines are seconds away at least.
func (p *Projector) ApplyNow(ctx context.Context, ev *feedloopv1.Event) {
	select {
	case p.nows <- &fold{ctx: context.WithoutCancel(ctx), ev: ev, readModelOnly: true}:
	case <-ctx.Done():
		// Stopping: the projector applies the event in its turn.
	}
}

// logNow reports what became of an event applied at once.
func (p *Projector) logNow(f *fold, err error) {
	if errors.Is(err, rebuild.ErrNotReady) {
		p.Log.DebugContext(f.ctx, "router: read model being rebuilt; the projector applies the event after it", "event_id", f.ev.GetId())
	} else if err != nil {
		p.Log.WarnContext(f.ctx, "router: read model not updated; the projector will catch up", "event_id", f.ev.GetId(), "err", err)
	}
}

// run is the committer: it folds batches until folds is closed. A batch
// starts with whatever waits, routed events to apply at once first, and
// lingers for more.
func (p *Projector) run() {
	defer close(p.done)
	batch := make([]*fold, 0, ProjectorBatch)
	linger := time.NewTimer(0)
	<-linger.C
	for open := true; open; {
		var f *fold
		select {
		case f = <-p.nows:
		case f, open = <-p.folds:
			if !open {
				return
			}
		}
		batch = append(batch[:0], f)
		linger.Reset(ProjectorLinger)
	more:
		for len(batch) < ProjectorBatch {
			select {
			case f := <-p.nows:
				batch = append(batch, f)
				continue
			default:
			}
			select {
			case f := <-p.nows:
				batch = append(batch, f)
			case f, ok := <-p.folds:
				if !ok {
					open = false
					break more
				}
				batch = append(batch, f)
			case <-linger.C:
				break more
			}
		}
		if !linger.Stop() {
			select {
			case <-linger.C:
			default:
			}
		}
		p.commit(batch)
	}
}

// commit folds a batch under a span of its own, linked both ways with the
// spans of the messages in it: a batch serves many items' traces.
func (p *Projector) commit(batch []*fold) {
	links := make([]trace.Link, len(batch))
	for i, f := range batch {
		links[i] = trace.Link{SpanContext: trace.SpanContextFromContext(f.ctx)}
	}
	ctx, span := p.Tracer.Start(context.Background(), "router.project",
		trace.WithNewRoot(), trace.WithLinks(links...),
		trace.WithAttributes(attribute.Int("feedloop.batch.size", len(batch))))
	defer span.End()
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	p.mu.Lock()
	for _, f := range batch {
		trace.SpanFromContext(f.ctx).AddLink(trace.Link{SpanContext: span.SpanContext()})
		if _, ok := p.appliedNow[f.ev.GetId()]; ok && f.ev != nil && !f.readModelOnly {
			f.slaOnly = true
			delete(p.appliedNow, f.ev.GetId())
		}
	}
	p.mu.Unlock()
	errs := p.foldSafely(ctx, batch)
	p.mu.Lock()
	for i, f := range batch {
		if f.err == nil && errs[i] == nil && f.readModelOnly {
			if len(p.appliedNow) >= appliedNowMax {
				clear(p.appliedNow)
			}
			p.appliedNow[f.ev.GetId()] = f.ev.GetFeedbackId()
		}
	}
	p.mu.Unlock()
	for i, f := range batch {
		if f.err == nil {
			p.logNow(f, errs[i])
			continue
		}
		f.err <- errs[i]
	}
}

// foldSafely is foldBatch surviving a panic: the committer runs outside
// the bus's Recoverer, and a poison event must not crash the router. A
// batch that panicked is folded event by event; an event that panics on
// its own gets a permanent error (dead-lettered), as Recoverer does.
// Folding again is harmless: every fold is idempotent by event id.
func (p *Projector) foldSafely(ctx context.Context, batch []*fold) (errs []error) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if len(batch) == 1 {
			p.Log.ErrorContext(ctx, "router: projector panicked on an event", "event_id", batch[0].ev.GetId(), "panic", r, "stack", string(debug.Stack()))
			errs = []error{bus.Permanent(fmt.Errorf("fold panicked: %v", r))}
			return
		}
		errs = make([]error, len(batch))
		for i := range batch {
			errs[i] = p.foldSafely(ctx, batch[i:i+1])[0]
		}
	}()
	return p.foldBatch(ctx, batch)
}

// foldBatch applies a batch; errs[i] is batch[i]'s outcome. When the batch
// as a whole fails, each event is folded alone, so one that cannot be
// folded fails by itself and the others go through.
func (p *Projector) foldBatch(ctx context.Context, batch []*fold) []error {
	errs := make([]error, len(batch))
	evs := make([]*feedloopv1.Event, len(batch))
	tps := make([]string, len(batch))
	var traces map[string]string // of received events applied at once
	for i, f := range batch {
		switch {
		case f.traceOf != "":
			if traces == nil {
				traces = map[string]string{}
			}
			traces[f.traceOf] = f.traceparent
		case !f.slaOnly:
			evs[i], tps[i] = f.ev, f.traceparent // nil: nothing to apply
		}
	}
	applied, err := p.Store.ApplyTraced(ctx, evs, tps, traces)
	if err != nil {
		if len(batch) == 1 {
			errs[0] = fmt.Errorf("read model: %w", err)
			return errs
		}
		for i := range batch {
			errs[i] = p.foldBatch(ctx, batch[i:i+1])[0]
		}
		return errs
	}
	for i, ev := range evs {
		if ev != nil && !applied[i] {
			// Applied before (by the routing consumer or the team API, or a
			// redelivery), or an event the projection ignores.
			trace.SpanFromContext(batch[i].ctx).AddEvent("event already applied", trace.WithAttributes(attribute.String("feedloop.event_id", ev.GetId())))
		}
	}
	// The SLA index and completions follow the stream's order: only the
	// projector's own events.
	var idx []int
	var projected []*feedloopv1.Event
	for i, f := range batch {
		if !f.readModelOnly && f.ev != nil {
			idx, projected = append(idx, i), append(projected, f.ev)
		}
	}
	for j, err := range p.SLA.ApplyBatch(ctx, projected) {
		i := idx[j]
		if err != nil {
			errs[i] = fmt.Errorf("sla index: %w", err)
			continue
		}
		errs[i] = p.complete(ctx, batch[i].ev)
	}
	return errs
}

// complete publishes what a status change should have been followed by (a
// reroute's Routed event, the Closed event) when the router that made the
// change died before publishing it (workflow.Completion); otherwise the ids
// match and nothing new is stored.
func (p *Projector) complete(ctx context.Context, ev *feedloopv1.Event) error {
	if ev.GetStatusChanged() == nil {
		return nil
	}
	item, err := p.Store.Item(ctx, ev.GetFeedbackId())
	if err != nil {
		if errors.Is(err, readmodel.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("read model: %w", err)
	}
	for _, out := range workflow.Completion(item, ev) {
		ack, err := p.Bus.Publish(ctx, out.Subject, out.Event)
		if err != nil {
			return fmt.Errorf("complete %s: %w", ev.GetFeedbackId(), err)
		}
		if !ack.Duplicate {
			p.Log.WarnContext(ctx, "router: published an event a team action left out", "feedback_id", ev.GetFeedbackId(), "subject", out.Subject, "event_id", out.Event.GetId())
		}
		if _, err := p.Store.Apply(ctx, out.Event); err != nil {
			return fmt.Errorf("read model: %w", err)
		}
	}
	return nil
}
