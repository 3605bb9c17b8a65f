package rebuild

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Replay reads stream, only subjects if any are given, with an ordered
// consumer from its first message to the last one stored when Replay
// starts, and hands each to fn in stream order. fn's error stops it. It
// returns how many messages it handed to fn.
func Replay(ctx context.Context, js jetstream.JetStream, stream string, subjects []string, fn func(context.Context, jetstream.Msg) error) (int, error) {
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
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: subjects, DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return 0, fmt.Errorf("replay: consumer on %s: %w", stream, err)
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("replay: consumer on %s: %w", stream, err)
	}
	if ci.NumPending == 0 {
		return 0, nil // nothing matches the subjects
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
