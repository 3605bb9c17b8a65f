// Package idem is the Redis adapter that remembers which (source,
// external_id) pairs intake has accepted, so a resubmission is answered as a
// duplicate without publishing again. The keys are derived state: losing
// them only costs a republish, which JetStream's duplicate window and every
// consumer's dedup by event id absorb. After Redis lost them they are
// rebuilt from the stream's feedback.received events (Rebuild, run by the
// service under a rebuild.Gate), so that `duplicate` stays right for
// resubmissions older than JetStream's duplicate window.
package idem

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/rebuild"
	"github.com/feedloop/feedloop/pkg/redisx"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// replayConsumer is the consumer a rebuild reads the stream with; NATS
// permissions (pkg/natsauth) name it.
const replayConsumer = bus.ConsumerIntakeReplay

// Prefetch is a Lookup answered ahead of the submission it is for (with
// the rate limit, ratelimit.Limiter.AllowLookup).
type Prefetch struct {
	FeedbackID string
	Found      bool
	Err        error
}

// Store keeps the keys in Redis with a TTL.
type Store struct {
	rdb *redis.Client
	ttl time.Duration
	// batch carries the Remembers of concurrent submissions in shared
	// round trips.
	batch *redisx.Batcher
}

// New returns a Store whose keys live for ttl.
func New(rdb *redis.Client, ttl time.Duration) *Store {
	return &Store{rdb: rdb, ttl: ttl, batch: redisx.NewBatcher(rdb)}
}

// Batcher is the Batcher the Store's Remembers go through: the rate
// limiter sends on it too (ratelimit.WithBatcher), so that one
// submission's lookup and another's Remember share a round trip.
func (s *Store) Batcher() *redisx.Batcher { return s.batch }

// Key is the Redis key of (source, externalID). source is a subject token
// (no ':'), so the key is unambiguous whatever externalID holds.
func Key(source, externalID string) string {
	return "intake:idem:" + source + ":" + externalID
}

// Lookup returns the feedback id stored for (source, externalID) and whether
// there was one.
func (s *Store) Lookup(ctx context.Context, source, externalID string) (string, bool, error) {
	return LookupResult(s.rdb.Get(ctx, Key(source, externalID)), source, externalID)
}

// QueueLookup sends Lookup's GET on c; on a Pipeliner it is queued, so it
// shares a round trip with other commands (the rate limit's script). Read
// it with LookupResult once it ran.
func QueueLookup(ctx context.Context, c redis.Cmdable, source, externalID string) *redis.StringCmd {
	return c.Get(ctx, Key(source, externalID))
}

// LookupResult is Lookup's answer from its GET.
func LookupResult(cmd *redis.StringCmd, source, externalID string) (string, bool, error) {
	id, err := cmd.Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("idem: lookup %s/%s: %w", source, externalID, err)
	}
	return id, true, nil
}

// Remember records that (source, externalID) was accepted as feedbackID.
// Call it only after the event is stored.
func (s *Store) Remember(ctx context.Context, source, externalID, feedbackID string) error {
	var set *redis.StatusCmd
	s.batch.Do(ctx, func(p redis.Pipeliner) { set = p.Set(ctx, Key(source, externalID), feedbackID, s.ttl) })
	if err := set.Err(); err != nil {
		return fmt.Errorf("idem: remember %s/%s: %w", source, externalID, err)
	}
	return nil
}

// restoreScript: KEYS[1] the rebuild lock, KEYS[2] the key; ARGV[1] the
// lock's token, ARGV[2] the feedback id, ARGV[3] the TTL in ms. It writes
// only while the lock is the caller's, and returns 0 otherwise.
var restoreScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
redis.call("SET", KEYS[2], ARGV[2], "PX", ARGV[3])
return 1
`)

// Rebuild puts the keys back from the stream's feedback.received events,
// up to its last message, each for what is left of its TTL (counted from
// the event's time); every write checks fence (the rebuild lock). Keys
// written meanwhile by Remember hold the same derived id, so the two never
// disagree. It returns how many events it read.
func (s *Store) Rebuild(ctx context.Context, js jetstream.JetStream, stream string, fence rebuild.Guard, now time.Time) (int, error) {
	batch := rebuild.NewBatch(s.rdb)
	n, err := rebuild.Replay(ctx, js, stream, replayConsumer, bus.SubjectReceived, func(ctx context.Context, m jetstream.Msg) error {
		ev := &feedloopv1.Event{}
		if err := proto.Unmarshal(m.Data(), ev); err != nil {
			return nil // not an event: the consumers dead-letter it
		}
		fb := ev.GetReceived().GetFeedback()
		if fb.GetSource() == "" || fb.GetExternalId() == "" || ev.GetFeedbackId() == "" {
			return nil
		}
		left := s.ttl - now.Sub(ev.GetOccurredAt().AsTime())
		if left <= 0 {
			return nil
		}
		batch.Fenced(restoreScript.Eval(ctx, batch.Pipe(), []string{fence.Key, Key(fb.GetSource(), fb.GetExternalId())},
			fence.Token, ev.GetFeedbackId(), left.Milliseconds()))
		return batch.FlushIfFull(ctx)
	})
	if err == nil {
		err = batch.Flush(ctx)
	}
	if err != nil {
		return n, fmt.Errorf("idem: rebuild: %w", err)
	}
	return n, nil
}
