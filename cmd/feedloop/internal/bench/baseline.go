package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/feedloop/feedloop/cmd/feedloop/internal/stack"
	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/natsembed"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/classifier"
	"github.com/feedloop/feedloop/services/notifier"
	"github.com/feedloop/feedloop/services/router"
)

// stage is one pass-through stage of the baseline: it consumes like a
// service (same stream, filters, consumer runner and concurrency), decodes
// the event and, for an event on from, publishes the next one with a
// derived id, waiting for the stream's ack as the services do, and does
// nothing else. Events on its other filters it decodes and acknowledges.
type stage struct {
	// service is the part of the pipeline the stage stands for (its CPU's
	// label, see Flow.CPUByPart).
	service     string
	durable     string
	filters     []string
	concurrency int
	perItem     bool
	// from is the input subject (a filter: wildcards match) that makes the
	// stage publish on subject; "" publishes nothing.
	from    string
	subject string
	part    string
	// fill sets the payload of the event the stage publishes.
	fill func(ev *feedloopv1.Event)
	last bool
}

// baselineStages mirrors the pipeline: intake's publish is the load
// generator's, then classifier, router and notifier.
func baselineStages(p *Payloads) []stage {
	return []stage{
		{
			service: "classifier", durable: "bench-classifier", filters: []string{bus.SubjectReceived}, concurrency: classifier.DefaultConfig().Concurrency,
			from: bus.SubjectReceived, subject: bus.SubjectClassified, part: "classified", fill: func(ev *feedloopv1.Event) { ev.Payload = p.Classified },
		},
		{
			service: "router", durable: "bench-router", filters: []string{bus.SubjectClassified}, concurrency: router.DefaultConfig().Concurrency,
			from: bus.SubjectClassified, subject: bus.RoutedSubject(p.Team), part: "routed", fill: func(ev *feedloopv1.Event) { ev.Payload = p.Routed },
		},
		{
			service: "notifier", durable: "bench-notifier", filters: []string{bus.AllRouted}, concurrency: notifier.DefaultConfig().Concurrency,
			from: bus.AllRouted, subject: bus.SubjectNotified, part: "notified", fill: func(ev *feedloopv1.Event) { ev.Payload = p.Notified }, last: true,
		},
	}
}

// ceilingStages are the pipeline's own event flow with pass-through
// handlers: the baseline's stages, but the notifier also receives every
// received event (it decides about the customer's notice there) and the
// router's read-model projector receives every event of the item. It is
// what the pipeline would carry if its handlers cost nothing.
func ceilingStages(p *Payloads) []stage {
	st := baselineStages(p)
	st[2].filters = []string{bus.SubjectReceived, bus.AllRouted}
	return append(st, stage{
		service: "router", durable: "bench-projector", filters: []string{bus.AllFeedback}, concurrency: router.ProjectorWorkers, perItem: true,
	})
}

// connected, when set (by a test), is called with a pass-through phase's
// server once its stages have connected.
var connected func(*server.Server)

// passThrough runs stages on their own embedded NATS and saturates them
// with o.Items items, published as intake does.
func passThrough(ctx context.Context, o Options, phase string, stages []stage, run string) (outcome, Flow, error) {
	dir, err := os.MkdirTemp("", "feedloop-bench-baseline-")
	if err != nil {
		return outcome{}, Flow{}, fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(dir)
	// Labelled as the pipeline's stack labels its server, connection and
	// services, so that both phases' CPU splits into the same parts.
	var ns *server.Server
	pprof.Do(ctx, pprof.Labels(stack.PartLabel, stack.PartNATSServer), func(context.Context) {
		ns, err = natsembed.Start(natsembed.Options{StoreDir: dir, ServerName: "feedloop-bench", SyncAlways: o.SyncAlways})
	})
	if err != nil {
		return outcome{}, Flow{}, err
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	// A connection per service, as each of the pipeline's has its own: the
	// load's stands for intake's. The server then writes to as many.
	var conns []*nats.Conn
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()
	buses := map[string]*bus.Bus{}
	connect := func(service string) (*bus.Bus, error) {
		if b, ok := buses[service]; ok {
			return b, nil
		}
		var nc *nats.Conn
		var err error
		pprof.Do(ctx, pprof.Labels(stack.PartLabel, stack.PartNATSClient), func(context.Context) {
			nc, err = bus.Connect(ns.ClientURL(), "feedloop-bench-"+service)
		})
		if err != nil {
			return nil, err
		}
		conns = append(conns, nc)
		b, err := bus.New(nc, bus.WithLogger(o.Log))
		buses[service] = b
		return b, err
	}
	b, err := connect("intake")
	if err != nil {
		return outcome{}, Flow{}, err
	}
	if err := b.EnsureStreams(ctx, bus.StreamsConfig{}); err != nil {
		return outcome{}, Flow{}, err
	}
	stageBus := make([]*bus.Bus, len(stages))
	for i, s := range stages {
		if stageBus[i], err = connect(s.service); err != nil {
			return outcome{}, Flow{}, err
		}
	}

	t := newTracker(false, o.progress(phase))
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, len(stages))
	for i, s := range stages {
		sb := stageBus[i]
		wg.Go(func() {
			cfg := bus.ConsumerConfig{Stream: bus.StreamFeedback, Durable: s.durable, FilterSubjects: s.filters, Concurrency: s.concurrency, PerItemOrder: s.perItem}
			pprof.Do(cctx, pprof.Labels(stack.PartLabel, s.service), func(ctx context.Context) {
				if err := sb.Consume(ctx, cfg, s.handler(sb, t)); err != nil {
					errs <- fmt.Errorf("bench: baseline %s: %w", s.durable, err)
				}
			})
		})
	}
	send := func(ctx context.Context, n int) (string, error) {
		ev := receivedEvent(itemAt(run, n), time.Now().UTC())
		if _, err := b.Publish(ctx, bus.SubjectReceived, ev); err != nil {
			return "", err
		}
		return ev.GetFeedbackId(), nil
	}
	if connected != nil {
		connected(ns)
	}
	// Profiled as the pipeline phase is: the profiler's own cost, in
	// every phase, leaves the ratios between phases alone.
	cpu := startCPU(ctx, nil, true)
	saturate(cctx, o.Items, o.Concurrency, send, t)
	t.wait(cctx, o.Items, o.DrainTimeout)
	durables := make([]string, len(stages))
	for i, s := range stages {
		durables[i] = s.durable
	}
	// The stages that publish nothing (the projector) may still be behind.
	_ = settle(cctx, b, durables, settleTimeout)
	fl := measureFlow(cctx, b, durables, o.Items, flowMark{})
	cerr := cpu.stop(ctx, &fl, o.Items)
	cancel()
	wg.Wait()
	close(errs)
	if err := errors.Join(append(collect(errs), cerr)...); err != nil {
		return outcome{}, Flow{}, err
	}
	return t.outcome(o.Items), fl, nil
}

func (s stage) handler(b *bus.Bus, t *tracker) bus.Handler {
	return func(ctx context.Context, m *bus.Msg) error {
		in, err := m.Event()
		if err != nil || s.from == "" || !server.SubjectMatchesFilter(m.Subject, s.from) {
			return err
		}
		out := &feedloopv1.Event{
			Id:         bus.DeriveID(in.GetId(), s.part),
			FeedbackId: in.GetFeedbackId(),
			OccurredAt: in.GetOccurredAt(),
		}
		s.fill(out)
		if _, err := b.Publish(ctx, s.subject, out); err != nil {
			return err
		}
		if s.last {
			t.arrive(in.GetFeedbackId(), time.Now())
		}
		return nil
	}
}

func collect(ch <-chan error) []error {
	var out []error
	for err := range ch {
		out = append(out, err)
	}
	return out
}
