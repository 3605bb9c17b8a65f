package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/natsembed"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/classifier"
	"github.com/feedloop/feedloop/services/notifier"
	"github.com/feedloop/feedloop/services/router"
)

// stage is one pass-through stage of the baseline: it consumes like a
// service (same stream, filter, consumer runner and concurrency), decodes
// the event and publishes the next one with a derived id, waiting for the
// stream's ack as the services do, and does nothing else.
type stage struct {
	durable     string
	filter      string
	concurrency int
	subject     string
	part        string
	// fill sets the payload of the event the stage publishes.
	fill func(ev *feedloopv1.Event)
	last bool
}

// baselineStages mirrors the pipeline: intake's publish is the load
// generator's, then classifier, router and notifier.
func baselineStages(p *Payloads) []stage {
	return []stage{
		{
			durable: "bench-classifier", filter: bus.SubjectReceived, concurrency: classifier.DefaultConfig().Concurrency,
			subject: bus.SubjectClassified, part: "classified", fill: func(ev *feedloopv1.Event) { ev.Payload = p.Classified },
		},
		{
			durable: "bench-router", filter: bus.SubjectClassified, concurrency: router.DefaultConcurrency,
			subject: bus.RoutedSubject(p.Team), part: "routed", fill: func(ev *feedloopv1.Event) { ev.Payload = p.Routed },
		},
		{
			durable: "bench-notifier", filter: bus.AllRouted, concurrency: notifier.DefaultConcurrency,
			subject: bus.SubjectNotified, part: "notified", fill: func(ev *feedloopv1.Event) { ev.Payload = p.Notified }, last: true,
		},
	}
}

// baseline runs the four chained stages on their own embedded NATS and
// saturates them with o.Items items.
func baseline(ctx context.Context, o Options, p *Payloads, run string) (outcome, float64, error) {
	dir, err := os.MkdirTemp("", "feedloop-bench-baseline-")
	if err != nil {
		return outcome{}, 0, fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(dir)
	ns, err := natsembed.Start(natsembed.Options{StoreDir: dir, ServerName: "feedloop-bench", SyncAlways: o.SyncAlways})
	if err != nil {
		return outcome{}, 0, err
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	nc, err := bus.Connect(ns.ClientURL(), "feedloop-bench-baseline")
	if err != nil {
		return outcome{}, 0, err
	}
	defer nc.Close()
	b, err := bus.New(nc, bus.WithLogger(o.Log))
	if err != nil {
		return outcome{}, 0, err
	}
	if err := b.EnsureStreams(ctx, bus.StreamsConfig{}); err != nil {
		return outcome{}, 0, err
	}

	t := newTracker(false, o.progress(PhaseBaseline))
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for _, s := range baselineStages(p) {
		wg.Go(func() {
			cfg := bus.ConsumerConfig{Stream: bus.StreamFeedback, Durable: s.durable, FilterSubjects: []string{s.filter}, Concurrency: s.concurrency}
			if err := b.Consume(cctx, cfg, s.handler(b, t)); err != nil {
				errs <- fmt.Errorf("bench: baseline %s: %w", s.durable, err)
			}
		})
	}
	send := func(ctx context.Context, n int) (string, error) {
		ev := receivedEvent(itemAt(run, n), time.Now().UTC())
		if _, err := b.Publish(ctx, bus.SubjectReceived, ev); err != nil {
			return "", err
		}
		return ev.GetFeedbackId(), nil
	}
	saturate(cctx, o.Items, o.Concurrency, send, t)
	t.wait(cctx, o.Items, o.DrainTimeout)
	cancel()
	wg.Wait()
	close(errs)
	if err := errors.Join(collect(errs)...); err != nil {
		return outcome{}, 0, err
	}
	return t.outcome(o.Items), eventBytes(ctx, b), nil
}

func (s stage) handler(b *bus.Bus, t *tracker) bus.Handler {
	return func(ctx context.Context, m *bus.Msg) error {
		in, err := m.Event()
		if err != nil {
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

// eventBytes is the mean size of the events stored on FEEDBACK.
func eventBytes(ctx context.Context, b *bus.Bus) float64 {
	st, err := b.JetStream().Stream(ctx, bus.StreamFeedback)
	if err != nil {
		return 0
	}
	info, err := st.Info(ctx)
	if err != nil || info.State.Msgs == 0 {
		return 0
	}
	return float64(info.State.Bytes) / float64(info.State.Msgs)
}

func collect(ch <-chan error) []error {
	var out []error
	for err := range ch {
		out = append(out, err)
	}
	return out
}
