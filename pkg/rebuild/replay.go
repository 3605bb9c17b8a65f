package rebuild

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Replay reads the messages of stream on subject (empty: all of them) with
// the consumer named consumer, from the first to the last one stored when
// Replay starts, and hands each to fn in stream order. fn's error stops it.
// It returns how many messages it handed to fn.
//
// The consumer is named so that NATS permissions can grant exactly it and
// its filter: a service allowed to replay its own subject can pull no
// other consumer's messages. Only one rebuilder runs at a time (the Gate's
// lock), so one name suffices. An empty name uses an ordered consumer
// (random name), for a user allowed to read the whole stream anyway.
func Replay(ctx context.Context, js jetstream.JetStream, stream, consumer, subject string, fn func(context.Context, jetstream.Msg) error) (int, error) {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("replay: stream %s: %w", stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("replay: stream %s info: %w", stream, err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return 0, nil
	}
	cons, err := replayConsumer(ctx, st, consumer, subject)
	if err != nil {
		return 0, fmt.Errorf("replay: consumer on %s: %w", stream, err)
	}
	if consumer != "" {
		defer func() {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = st.DeleteConsumer(dctx, consumer) // else InactiveThreshold removes it
		}()
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("replay: consumer on %s: %w", stream, err)
	}
	if ci.NumPending == 0 {
		return 0, nil // nothing matches the subject
	}
	msgs, err := cons.Messages()
	if err != nil {
		return 0, fmt.Errorf("replay: read %s: %w", stream, err)
	}
	defer msgs.Stop()
	stop := context.AfterFunc(ctx, msgs.Stop) // unblocks Next on cancel
	defer stop()
	n := 0
	for {
		m, err := msgs.Next()
		if err != nil {
			if ctx.Err() != nil {
				return n, fmt.Errorf("replay %s: %w", stream, context.Cause(ctx))
			}
			return n, fmt.Errorf("replay %s: next: %w", stream, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return n, fmt.Errorf("replay %s: metadata: %w", stream, err)
		}
		if md.Sequence.Stream > last {
			return n, nil
		}
		// Unacknowledged delivery has no redelivery: a message the client
		// dropped would be a silent hole in the rebuilt state.
		if consumer != "" && md.Sequence.Consumer != uint64(n)+1 {
			return n, fmt.Errorf("replay %s: delivery %d after %d: a message was missed", stream, md.Sequence.Consumer, n)
		}
		if err := fn(ctx, m); err != nil {
			return n, fmt.Errorf("replay %s: seq %d: %w", stream, md.Sequence.Stream, err)
		}
		n++
		// NumPending 0: nothing more matches now, so nothing up to last is
		// left either.
		if md.Sequence.Stream >= last || md.NumPending == 0 {
			return n, nil
		}
	}
}

// replayConsumer creates the consumer Replay reads with: the named one
// afresh, or an ordered one (which recreates itself across gaps).
func replayConsumer(ctx context.Context, st jetstream.Stream, name, subject string) (jetstream.Consumer, error) {
	if name == "" {
		var filters []string
		if subject != "" {
			filters = []string{subject}
		}
		return st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: filters, DeliverPolicy: jetstream.DeliverAllPolicy})
	}
	// A consumer left by a rebuilder that died is where it stopped: start afresh.
	if err := st.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("remove %s: %w", name, err)
	}
	return st.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Name:              name,
		FilterSubject:     subject,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		InactiveThreshold: time.Minute, // gone by itself if this process dies
	})
}
