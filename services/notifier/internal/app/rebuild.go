package app

import (
	"context"
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
const replayConsumer = bus.ConsumerNotifierReplay

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
	batch := rebuild.NewBatch(rdb)
	n, err := rebuild.Replay(ctx, js, stream, replayConsumer, bus.SubjectNotified, func(ctx context.Context, m jetstream.Msg) error {
		ev := &feedloopv1.Event{}
		if err := proto.Unmarshal(m.Data(), ev); err != nil || ev.GetNotified() == nil {
			return nil // not a record: the consumers dead-letter it
		}
		nf, at := ev.GetNotified(), ev.GetOccurredAt().AsTime()
		if nf.GetDeliveryKey() == "" {
			return nil
		}
		batch.Fenced(h.Dedup.Restore(ctx, batch.Pipe(), fence, nf.GetDeliveryKey(), nf.GetCauseEventId(), at, now))
		if h.Cap != nil && nf.GetCapNotice() != "" && nf.GetCapDay() != "" && nf.GetCapCustomer() != "" {
			batch.Fenced(h.Cap.Restore(ctx, batch.Pipe(), fence, nf.GetCapNotice(), nf.GetCapCustomer(), nf.GetCapDay(), at, now))
		}
		return batch.FlushIfFull(ctx)
	})
	if err == nil {
		err = batch.Flush(ctx)
	}
	if err != nil {
		return n, fmt.Errorf("notifier: rebuild: %w", err)
	}
	return n, nil
}
