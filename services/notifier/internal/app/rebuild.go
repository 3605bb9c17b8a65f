package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/rebuild"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// replayConsumer is the consumer a rebuild reads the stream with; NATS
// permissions (pkg/natsauth) name it.
const replayConsumer = "notifier-rebuild"

// rebuildBatch is how many records one round trip restores.
const rebuildBatch = 256

// Rebuild puts the delivery records and the daily cap's admissions back
// from the feedback.notified events of stream, up to its last message:
// each record names its delivery (delivery_key) and, for a customer message
// that counted towards the cap, its admission (cap_*). Records are only
// added, never removed, so marks written meanwhile by sends that were in
// flight when Redis was lost stay. Every write checks fence. It returns
// how many Notified events it read.
//
// Not rebuilt: messages held for a digest (they are in no event), claims
// of sends in flight (the caller waits them out), records older than the
// dedup TTL, and records of events published before delivery_key existed.
func (h *Handler) Rebuild(ctx context.Context, rdb redis.UniversalClient, js jetstream.JetStream, stream string, fence rebuild.Guard) (int, error) {
	now := h.now()
	p := rdb.Pipeline()
	var cmds []*redis.Cmd
	flush := func() error {
		if p.Len() == 0 {
			return nil
		}
		_, err := p.Exec(ctx)
		if err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("notifier: rebuild: %w", err)
		}
		for _, c := range cmds {
			if n, err := c.Int(); err != nil || n != 1 {
				return fmt.Errorf("notifier: rebuild: %w", errors.Join(err, rebuild.ErrLockLost))
			}
		}
		cmds = cmds[:0]
		return nil
	}
	n, err := rebuild.Replay(ctx, js, stream, replayConsumer, bus.SubjectNotified, func(ctx context.Context, m jetstream.Msg) error {
		ev := &feedloopv1.Event{}
		if err := proto.Unmarshal(m.Data(), ev); err != nil || ev.GetNotified() == nil {
			return nil // not a record: the consumers dead-letter it
		}
		nf, at := ev.GetNotified(), ev.GetOccurredAt().AsTime()
		if nf.GetDeliveryKey() == "" {
			return nil
		}
		if c := h.Dedup.Restore(ctx, p, fence, nf.GetDeliveryKey(), nf.GetCauseEventId(), at, now); c != nil {
			cmds = append(cmds, c)
		}
		if h.Cap != nil && nf.GetCapNotice() != "" && nf.GetCapDay() != "" && nf.GetCapCustomer() != "" {
			if c := h.Cap.Restore(ctx, p, fence, nf.GetCapNotice(), nf.GetCapCustomer(), nf.GetCapDay(), at, now); c != nil {
				cmds = append(cmds, c)
			}
		}
		if p.Len() >= rebuildBatch {
			return flush()
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	return n, flush()
}
