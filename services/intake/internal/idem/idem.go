// Package idem is the Redis adapter that remembers which (source,
// external_id) pairs intake has accepted, so a resubmission is answered as a
// duplicate without publishing again. The keys are derived state: losing
// them only costs a republish, which JetStream's duplicate window and every
// consumer's dedup by event id absorb.
package idem

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Store keeps the keys in Redis with a TTL.
type Store struct {
	rdb *redis.Client
	ttl time.Duration
}

// New returns a Store whose keys live for ttl.
func New(rdb *redis.Client, ttl time.Duration) *Store { return &Store{rdb: rdb, ttl: ttl} }

// Key is the Redis key of (source, externalID). source is a subject token
// (no ':'), so the key is unambiguous whatever externalID holds.
func Key(source, externalID string) string {
	return "intake:idem:" + source + ":" + externalID
}

// Lookup returns the feedback id stored for (source, externalID) and whether
// there was one.
func (s *Store) Lookup(ctx context.Context, source, externalID string) (string, bool, error) {
	id, err := s.rdb.Get(ctx, Key(source, externalID)).Result()
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
	if err := s.rdb.Set(ctx, Key(source, externalID), feedbackID, s.ttl).Err(); err != nil {
		return fmt.Errorf("idem: remember %s/%s: %w", source, externalID, err)
	}
	return nil
}
