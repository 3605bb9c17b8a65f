// Package dedup makes sure a delivery is sent at most once, across
// redeliveries and replicas, with a two-phase claim in Redis:
//
//  1. Claim sets the delivery's key to "claim:<token>" if it is absent, for
//     a short ClaimTTL: one sender at a time.
//  2. After a successful send, MarkSent sets it to "sent:<cause event id>"
//     for the long TTL; later claims see Sent with the original cause.
//  3. After a failed send, Release deletes the claim (only if still ours),
//     so a retry can send.
//
// A claim held by someone else means a send is in flight (or its sender
// died; the claim then expires): the caller retries later.
//
// The records are derived state: every delivery made is also recorded by a
// feedback.notified event carrying its key, and Restore puts a record back
// from one (see the notifier's rebuild). A guarded Store (Guarded) refuses
// new claims while its ready key is missing, so that a record lost with
// Redis is not taken for a delivery never made.
package dedup

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/feedloop/feedloop/pkg/rebuild"
	"github.com/feedloop/feedloop/pkg/redisx"
)

// State is the outcome of a Claim.
type State int

const (
	// Acquired: the caller holds the claim and must send, then MarkSent or Release.
	Acquired State = iota + 1
	// Sent: the delivery was made; Claim.Cause tells which event caused it.
	Sent
	// Held: another sender holds the claim.
	Held
)

func (s State) String() string {
	switch s {
	case Acquired:
		return "acquired"
	case Sent:
		return "sent"
	case Held:
		return "held"
	}
	return "unknown"
}

const (
	prefixClaim = "claim:"
	prefixSent  = "sent:"
)

// Claim is one attempt to claim a delivery.
type Claim struct {
	Key   string
	State State
	// Cause is the event id recorded when the delivery was sent (State Sent).
	Cause string
	token string
}

// Store keeps delivery records in Redis.
type Store struct {
	rdb redis.Cmdable
	// batch carries claims and marks of concurrent deliveries in shared
	// round trips: each is a round trip of its own otherwise, two per
	// delivery, and the notifier runs many deliveries at once.
	batch    *redisx.Batcher
	claimTTL time.Duration
	sentTTL  time.Duration
	ready    string
}

// Guarded is a copy of s that grants a claim only while readyKey exists
// (checked in the claim's script); otherwise Claim fails with an error
// wrapping rebuild.ErrNotReady. A record of a delivery made is answered
// all the same: it is never wrong.
func (s *Store) Guarded(readyKey string) *Store {
	c := *s
	c.ready = readyKey
	return &c
}

// SentTTL is how long a delivery is remembered.
func (s *Store) SentTTL() time.Duration { return s.sentTTL }

// New returns a Store. claimTTL must outlast one send (a crashed sender's
// claim expires after it); sentTTL is how long a delivery is remembered.
func New(rdb redis.Cmdable, claimTTL, sentTTL time.Duration) *Store {
	return &Store{rdb: rdb, batch: redisx.NewBatcher(rdb), claimTTL: claimTTL, sentTTL: sentTTL}
}

// claimScript sets KEYS[1] to ARGV[1] for ARGV[2] ms unless it exists, and
// returns the existing value, or nil when the claim was taken; with a
// ready key KEYS[2] that is missing it takes nothing and returns "notready".
var claimScript = redis.NewScript(`
local v = redis.call("GET", KEYS[1])
if v then return v end
if KEYS[2] and redis.call("EXISTS", KEYS[2]) == 0 then return "notready" end
redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
return false
`)

// restoreScript: KEYS[1] the rebuild lock, KEYS[2] the record; ARGV[1] the
// lock's token, ARGV[2] the record, ARGV[3] its TTL in ms. It writes only
// while the lock is the caller's, and returns 0 otherwise.
var restoreScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
redis.call("SET", KEYS[2], ARGV[2], "PX", ARGV[3])
return 1
`)

// releaseScript deletes KEYS[1] only if it still holds the caller's claim.
var releaseScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0
`)

// Claim tries to claim the delivery recorded at key.
func (s *Store) Claim(ctx context.Context, key string) (Claim, error) {
	token := prefixClaim + uuid.NewString()
	keys := []string{key}
	if s.ready != "" {
		keys = append(keys, s.ready)
	}
	var cmd *redis.Cmd
	s.batch.Do(ctx, func(p redis.Pipeliner) { cmd = claimScript.EvalSha(ctx, p, keys, token, s.claimTTL.Milliseconds()) })
	if err := cmd.Err(); err != nil && !errors.Is(err, redis.Nil) && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// Redis lost its scripts (a restart, SCRIPT FLUSH): EVAL loads it.
		cmd = claimScript.Run(ctx, s.rdb, keys, token, s.claimTTL.Milliseconds())
	}
	v, err := cmd.Text()
	switch {
	case err == nil && v == "notready":
		return Claim{}, fmt.Errorf("dedup: claim %s: delivery records %w", key, rebuild.ErrNotReady)
	case errors.Is(err, redis.Nil):
		return Claim{Key: key, State: Acquired, token: token}, nil
	case err != nil:
		return Claim{}, fmt.Errorf("dedup: claim %s: %w", key, err)
	case strings.HasPrefix(v, prefixSent):
		return Claim{Key: key, State: Sent, Cause: strings.TrimPrefix(v, prefixSent)}, nil
	default:
		return Claim{Key: key, State: Held}, nil
	}
}

// MarkSent records that c's delivery was made because of event cause.
func (s *Store) MarkSent(ctx context.Context, c Claim, cause string) error {
	var set *redis.StatusCmd
	s.batch.Do(ctx, func(p redis.Pipeliner) { set = p.Set(ctx, c.Key, prefixSent+cause, s.sentTTL) })
	if err := set.Err(); err != nil {
		return fmt.Errorf("dedup: mark %s sent: %w", c.Key, err)
	}
	return nil
}

// Restore queues on p the record of a delivery made at sentAt because of
// event cause, as MarkSent wrote it, for what is left of the TTL; nothing
// when the TTL has run out by now. The write checks fence (the rebuild's
// lock); the command's result is 0 when the lock was lost.
func (s *Store) Restore(ctx context.Context, p redis.Pipeliner, fence rebuild.Guard, key, cause string, sentAt, now time.Time) *redis.Cmd {
	left := s.sentTTL - now.Sub(sentAt)
	if left <= 0 {
		return nil
	}
	return restoreScript.Eval(ctx, p, []string{fence.Key, key}, fence.Token, prefixSent+cause, left.Milliseconds())
}

// Release gives c up after a failed send, unless it expired and someone
// else claimed the delivery since.
func (s *Store) Release(ctx context.Context, c Claim) error {
	if c.State != Acquired {
		return nil
	}
	if err := releaseScript.Run(ctx, s.rdb, []string{c.Key}, c.token).Err(); err != nil {
		return fmt.Errorf("dedup: release %s: %w", c.Key, err)
	}
	return nil
}
