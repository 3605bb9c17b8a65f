package bus

import (
	"context"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
)

// DeadLetter copies a message to feedback.dlq.<consumer> when its error is
// permanent or its last delivery failed, then reports errDeadLettered so the
// runner terminates it. If the copy cannot be stored the message is retried:
// a message is never dropped without a copy.
func DeadLetter(b *Bus, consumer string, maxDeliver int) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Msg) error {
			err := next(ctx, m)
			if err == nil || (!IsPermanent(err) && m.NumDelivered < uint64(maxDeliver)) {
				return err
			}
			h := nats.Header{}
			for k, v := range m.Header {
				if k != nats.MsgIdHdr {
					h[k] = v
				}
			}
			h.Set(HeaderDLQError, err.Error())
			h.Set(HeaderDLQSubject, m.Subject)
			h.Set(HeaderDLQStream, m.Stream)
			h.Set(HeaderDLQSequence, strconv.FormatUint(m.StreamSeq, 10))
			h.Set(HeaderDLQDeliver, strconv.FormatUint(m.NumDelivered, 10))
			id := fmt.Sprintf("dlq:%s:%s:%d", consumer, m.Stream, m.StreamSeq)
			if _, perr := b.PublishData(ctx, DLQSubject(consumer), id, m.Data, h); perr != nil {
				return fmt.Errorf("dead-letter %s: %w (handler: %w)", m.Subject, perr, err)
			}
			b.log.WarnContext(ctx, "bus: message dead-lettered", "consumer", consumer, "subject", m.Subject, "seq", m.StreamSeq, "deliveries", m.NumDelivered, "err", err)
			return fmt.Errorf("%w: %w", errDeadLettered, err)
		}
	}
}
