package redisx

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// QueueWatch queues a WATCH of keys on p, to go first in a transaction's
// reads: Redis runs it before them, so a write after the reads and before
// EXEC still fails the transaction, as with a WATCH of its own round trip,
// one round trip less. Check its Err before using the reads.
func QueueWatch(ctx context.Context, p redis.Pipeliner, keys ...string) *redis.Cmd {
	args := make([]any, 0, len(keys)+1)
	args = append(args, "watch")
	for _, k := range keys {
		args = append(args, k)
	}
	return p.Do(ctx, args...)
}

// Watch runs fn on one connection of rdb, as rdb.Watch with no keys does,
// for a transaction that sends its WATCH with its reads (QueueWatch). fn
// reports whether it sent EXEC, which ends a WATCH; when it did not
// (nothing to write, or an error first), Watch ends it with UNWATCH: go-redis
// does so only for the keys it watched itself, and a WATCH left on a pooled
// connection would fail the next transaction that borrows it.
func Watch(ctx context.Context, rdb redis.UniversalClient, fn func(tx *redis.Tx) (exec bool, err error)) error {
	return rdb.Watch(ctx, func(tx *redis.Tx) error {
		exec, err := fn(tx)
		if !exec {
			_ = tx.Unwatch(ctx).Err()
		}
		return err
	})
}
