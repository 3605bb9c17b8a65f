// Package natsport is the router's NATS port: it takes feedback.classified
// messages from the bus, hands each event to the routing use case
// (app.Routing) and tells the bus whether to retry or dead-letter.
package natsport

import (
	"context"
	"errors"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/services/router/internal/app"
)

// Durable is the router's consumer name; its dead letters go to
// feedback.dlq.router.
const Durable = bus.ConsumerRouter

// Config is the durable consumer of feedback.classified.
func Config(concurrency int) bus.ConsumerConfig {
	return bus.ConsumerConfig{
		Stream:         bus.StreamFeedback,
		Durable:        Durable,
		FilterSubjects: []string{bus.SubjectClassified},
		Concurrency:    concurrency,
	}
}

// Handler routes one classified message. A message that is not a
// well-formed Classified event is dead-lettered at once; any other failure
// is retried.
func Handler(r *app.Routing) bus.Handler {
	return func(ctx context.Context, m *bus.Msg) error {
		in, err := m.Event()
		if err != nil {
			return err // permanent already
		}
		if err := r.Route(ctx, in); err != nil {
			if errors.Is(err, app.ErrUnroutable) {
				return bus.Permanent(err)
			}
			return err
		}
		return nil
	}
}

// ProjectorConfig is the consumer of every event, folding it into the read
// model: an item's events one at a time in stream order (PerItemOrder),
// different items in parallel on workers, and together in the projector's
// batches.
func ProjectorConfig(durable string, workers int) bus.ConsumerConfig {
	return bus.ConsumerConfig{
		Stream:         bus.StreamFeedback,
		Durable:        durable,
		FilterSubjects: []string{bus.AllFeedback},
		Concurrency:    workers,
		PerItemOrder:   true,
	}
}

// ProjectorHandler hands each event to the projector with its trace
// context header, kept with a received item; one the routing consumer
// applied at once (AppliedAtOnce) is acked without being decoded, a
// received one once its trace is kept.
func ProjectorHandler(p *app.Projector) bus.Handler {
	return func(ctx context.Context, m *bus.Msg) error {
		if fid, ok := p.AppliedAtOnce(m.Subject, m.MsgID()); ok {
			if m.Subject == bus.SubjectReceived {
				return p.KeepTrace(ctx, fid, m.Header.Get("traceparent"))
			}
			return nil
		}
		ev, err := m.Event()
		if err != nil {
			return err // permanent already
		}
		return p.Project(ctx, ev, m.Header.Get("traceparent"))
	}
}
