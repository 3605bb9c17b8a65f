package bus

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// Msg is one delivery handed to a Handler.
type Msg struct {
	Subject      string
	Data         []byte
	Header       nats.Header
	Stream       string
	StreamSeq    uint64
	NumDelivered uint64
	// progress tells the server the message is still being worked on.
	progress func() error
}

// InProgress resets the message's AckWait on the server, for a handler that
// must hold a message longer (waiting for a rebuild, say) without a
// redelivery and without spending a delivery.
func (m *Msg) InProgress() error {
	if m.progress == nil {
		return nil
	}
	return m.progress()
}

// MsgID is the message's Nats-Msg-Id.
func (m *Msg) MsgID() string { return m.Header.Get(jetstream.MsgIDHeader) }

// Event decodes the message as an Event. A message that does not decode can
// never succeed, so the error is permanent.
func (m *Msg) Event() (*feedloopv1.Event, error) {
	ev := &feedloopv1.Event{}
	if err := proto.Unmarshal(m.Data, ev); err != nil {
		return nil, Permanent(fmt.Errorf("decode event on %s: %w", m.Subject, err))
	}
	if ev.GetId() == "" || ev.GetPayload() == nil {
		return nil, Permanent(fmt.Errorf("event on %s: missing id or payload", m.Subject))
	}
	return ev, nil
}

// Handler handles one message. nil acks it; an error wrapped by Permanent
// dead-letters it; any other error retries it with backoff until MaxDeliver,
// then dead-letters it.
type Handler func(ctx context.Context, m *Msg) error

// Middleware wraps a Handler with a cross-cutting concern.
type Middleware func(Handler) Handler

// ConsumerConfig describes a durable pull consumer.
type ConsumerConfig struct {
	// Stream to consume.
	Stream string
	// Durable name, shared by every replica of a service (competing consumers);
	// also names the dead-letter subject feedback.dlq.<Durable>.
	Durable string
	// FilterSubjects limit the consumer to these subjects; empty means all.
	FilterSubjects []string
	// MaxDeliver bounds deliveries of one message (default 5).
	MaxDeliver int
	// Backoff is the delay before the n-th retry; the last entry repeats
	// (default 200ms, 1s, 5s, 15s).
	Backoff []time.Duration
	// AckWait is how long a delivery may take before it is redelivered (default 30s).
	AckWait time.Duration
	// MaxAckPending bounds unacknowledged messages across replicas (default 1000).
	MaxAckPending int
	// Concurrency is how many messages this replica handles at once (default 1).
	Concurrency int
	// StartNew makes a newly created consumer start with the messages
	// stored after its creation instead of the stream's first (it cannot
	// be changed on an existing consumer).
	StartNew bool
	// PerItemOrder keeps the messages of one feedback item (header
	// Feedloop-Feedback-Id) in delivery order: each item is handled by one
	// of Concurrency workers, one message at a time, while other items run
	// on the other workers. For folds such as a read model.
	PerItemOrder bool
	// Middleware wraps the handler inside the standard chain.
	Middleware []Middleware
}

// DefaultBackoff is the retry schedule for transient errors.
var DefaultBackoff = []time.Duration{200 * time.Millisecond, time.Second, 5 * time.Second, 15 * time.Second}

func (c ConsumerConfig) withDefaults() ConsumerConfig {
	if c.MaxDeliver == 0 {
		c.MaxDeliver = 5
	}
	if len(c.Backoff) == 0 {
		c.Backoff = DefaultBackoff
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = 1000
	}
	if c.Concurrency < 1 {
		c.Concurrency = 1
	}
	return c
}

// EnsureConsumer creates or updates the durable consumer described by c.
func (b *Bus) EnsureConsumer(ctx context.Context, c ConsumerConfig) (jetstream.Consumer, error) {
	c = c.withDefaults()
	cc := jetstream.ConsumerConfig{
		Durable:        c.Durable,
		FilterSubjects: c.FilterSubjects,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        c.AckWait,
		MaxDeliver:     c.MaxDeliver,
		MaxAckPending:  c.MaxAckPending,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}
	if c.StartNew {
		cc.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	if len(cc.FilterSubjects) == 1 {
		// One subject needs no 2.10 multi-filter support on the server.
		cc.FilterSubject, cc.FilterSubjects = cc.FilterSubjects[0], nil
	}
	// Creating a replicated consumer can outlast one API timeout on a busy
	// cluster although the server completes it; the call is idempotent, so
	// it is simply made again.
	var (
		cons jetstream.Consumer
		err  error
	)
	for attempt := 1; attempt <= 6; attempt++ {
		if cons, err = b.js.CreateOrUpdateConsumer(ctx, c.Stream, cc); err == nil || ctx.Err() != nil || !retryable(err) {
			break
		}
		b.log.Warn("bus: creating consumer timed out; trying again", "consumer", c.Durable, "attempt", attempt, "err", err)
	}
	if err != nil {
		return nil, fmt.Errorf("bus: ensure consumer %s on %s: %w", c.Durable, c.Stream, err)
	}
	return cons, nil
}

// Consume runs h for every message of the durable consumer c until ctx is
// cancelled, then stops pulling and waits for the messages in hand to finish
// (drain). The standard chain is tracing → metrics → dead letter → retry →
// recover → c.Middleware → h. While it runs, the consumer's lag is reported
// with the bus's metrics.
func (b *Bus) Consume(ctx context.Context, c ConsumerConfig, h Handler) error {
	c = c.withDefaults()
	cons, err := b.EnsureConsumer(ctx, c)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started: not a failure
		}
		return err
	}
	for i := len(c.Middleware) - 1; i >= 0; i-- {
		h = c.Middleware[i](h)
	}
	h = Tracing(b.tracer, b.propagator, c.Durable)(
		Metrics(b.meter, c.Durable)(
			DeadLetter(b, c.Durable, c.MaxDeliver)(
				Retry(c.Backoff)(
					Recoverer(b.log)(h)))))
	defer b.metrics.watch(c.Stream, c.Durable, cons)()

	it, err := cons.Messages(jetstream.PullMaxMessages(max(2*c.Concurrency, 64)))
	if err != nil {
		return fmt.Errorf("bus: consume %s: %w", c.Durable, err)
	}
	stop := context.AfterFunc(ctx, it.Drain)
	defer stop()

	dispatch, wait := b.dispatcher(ctx, c, h)
	defer wait()
	for {
		jm, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			// The iterator reconnects by itself; pause so a lasting fault
			// (consumer deleted, server gone) is not a busy loop.
			b.log.Warn("bus: pull failed", "consumer", c.Durable, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(250 * time.Millisecond):
			}
			continue
		}
		dispatch(jm)
	}
}

// dispatcher returns how messages are handed to handlers, and the wait for
// the ones in hand: Concurrency workers take the next message each, or,
// with PerItemOrder, each item has a fixed worker (chosen by hashing its
// id). Long-lived workers keep their grown stacks; a goroutine per message
// grew one for every message.
func (b *Bus) dispatcher(ctx context.Context, c ConsumerConfig, h Handler) (func(jetstream.Msg), func()) {
	var wg sync.WaitGroup
	if !c.PerItemOrder {
		q := make(chan jetstream.Msg)
		for range c.Concurrency {
			wg.Go(func() {
				for jm := range q {
					b.handle(ctx, c, h, jm)
				}
			})
		}
		return func(jm jetstream.Msg) { q <- jm }, func() {
			close(q)
			wg.Wait()
		}
	}
	queues := make([]chan jetstream.Msg, c.Concurrency)
	for i := range queues {
		queues[i] = make(chan jetstream.Msg, 16)
		wg.Go(func() {
			for jm := range queues[i] {
				b.handle(ctx, c, h, jm)
			}
		})
	}
	return func(jm jetstream.Msg) {
			f := fnv.New32a()
			f.Write([]byte(jm.Headers().Get(HeaderFeedbackID)))
			queues[f.Sum32()%uint32(len(queues))] <- jm
		}, func() {
			for _, q := range queues {
				close(q)
			}
			wg.Wait()
		}
}

// handle runs h on one message and settles it. In-flight work finishes even
// when ctx is cancelled (drain), bounded by AckWait.
func (b *Bus) handle(ctx context.Context, c ConsumerConfig, h Handler, jm jetstream.Msg) {
	m := &Msg{Subject: jm.Subject(), Data: jm.Data(), Header: jm.Headers(), progress: jm.InProgress}
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	if md, err := jm.Metadata(); err == nil {
		m.Stream, m.StreamSeq, m.NumDelivered = md.Stream, md.Sequence.Stream, md.NumDelivered
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.AckWait)
	defer cancel()
	err := h(hctx, m)
	var retry *RetryError
	switch {
	case err == nil:
		err = jm.Ack()
	case errors.Is(err, errDeadLettered):
		err = jm.Term()
	case errors.As(err, &retry):
		err = jm.NakWithDelay(retry.Delay)
	default:
		err = jm.NakWithDelay(backoffFor(c.Backoff, m.NumDelivered))
	}
	if err != nil {
		b.log.Warn("bus: settle message failed; it will be redelivered", "consumer", c.Durable, "subject", m.Subject, "err", err)
	}
}
