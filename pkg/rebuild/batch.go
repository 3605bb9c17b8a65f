package rebuild

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// BatchSize is how many fenced writes one round trip carries.
const BatchSize = 256

// Batch pipelines a rebuild's fenced writes — scripts that check the
// Guard and return 1 while the lock holds — and checks them when flushed:
// a write that did not return 1 means the lock was lost (another replica
// took over, or Redis was flushed again), and the rebuild must stop.
type Batch struct {
	p    redis.Pipeliner
	cmds []*redis.Cmd
}

// NewBatch returns an empty batch on rdb.
func NewBatch(rdb redis.Cmdable) *Batch { return &Batch{p: rdb.Pipeline()} }

// Pipe is where the fenced writes are queued.
func (b *Batch) Pipe() redis.Pipeliner { return b.p }

// Fenced records c, a queued write whose result must be 1; nil is ignored.
func (b *Batch) Fenced(c *redis.Cmd) {
	if c != nil {
		b.cmds = append(b.cmds, c)
	}
}

// FlushIfFull flushes once BatchSize writes are queued.
func (b *Batch) FlushIfFull(ctx context.Context) error {
	if b.p.Len() < BatchSize {
		return nil
	}
	return b.Flush(ctx)
}

// Flush sends what is queued and checks every fenced write.
func (b *Batch) Flush(ctx context.Context) error {
	if b.p.Len() == 0 {
		return nil
	}
	// Exec reports the first failed command; a fenced write that found the
	// lock gone answers nil, which the check below names.
	if _, err := b.p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("rebuild: write: %w", err)
	}
	for _, c := range b.cmds {
		if n, err := c.Int(); err != nil || n != 1 {
			return errors.Join(err, ErrLockLost)
		}
	}
	b.cmds = b.cmds[:0]
	return nil
}
