// Package itemlock serialises actions on one feedback item across router
// replicas: a team action reads the item, decides and publishes under the
// lock, so two concurrent actions cannot both pass the same state check.
// The lock is a Redis key with a random owner value and a TTL, released only
// by its owner (a compare-and-delete script), so a crashed holder blocks the
// item for at most the TTL.
package itemlock

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrBusy is returned when the item stayed locked for the whole wait.
var ErrBusy = errors.New("item is busy: another action on it is in progress")

// Locker takes per-item locks.
type Locker struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration
	wait   time.Duration
}

// New returns a Locker whose locks expire after ttl and which waits up to
// wait for a held lock.
func New(rdb redis.UniversalClient, prefix string, ttl, wait time.Duration) *Locker {
	return &Locker{rdb: rdb, prefix: prefix, ttl: ttl, wait: wait}
}

// TTL is how long a lock lasts when its holder never releases it; work done
// under a lock must end before it.
func (l *Locker) TTL() time.Duration { return l.ttl }

var release = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// Lock takes the lock of id and returns the function that releases it.
func (l *Locker) Lock(ctx context.Context, id string) (func(), error) {
	key := l.prefix + id
	owner := rand.Text()
	deadline := time.Now().Add(l.wait)
	pause := 5 * time.Millisecond
	for {
		ok, err := l.rdb.SetNX(ctx, key, owner, l.ttl).Result()
		if err != nil {
			return nil, fmt.Errorf("itemlock: %w", err)
		}
		if ok {
			return func() {
				// Release even if the caller's context is done.
				ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
				defer cancel()
				_ = release.Run(ctx, l.rdb, []string{key}, owner).Err()
			}, nil
		}
		if time.Now().Add(pause).After(deadline) {
			return nil, ErrBusy
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, 100*time.Millisecond)
	}
}
