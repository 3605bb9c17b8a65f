package redisx

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Batcher sends the commands of concurrent callers in shared pipelines
// (group commit): a caller queues its commands and waits; whoever finds no
// pipeline in flight sends everything queued by then in one round trip,
// and hands the next batch to a caller still waiting. Under load many
// callers share a round trip (one write and one read instead of one each);
// alone, a caller's commands go at once, as they would without it. No
// goroutine of its own, so nothing to close.
//
// Each caller reads its own commands' results, as after a pipeline's Exec:
// one command's error is that command's, not the batch's.
type Batcher struct {
	rdb     redis.Cmdable
	mu      sync.Mutex
	pending []*batchReq
	busy    bool // a leader is sending or about to
}

type batchReq struct {
	ctx   context.Context
	queue func(redis.Pipeliner)
	// wake is signalled once: the commands ran (done), or the caller is
	// to send the next batch (not done).
	wake chan struct{}
	done bool
}

// NewBatcher returns a Batcher sending on rdb.
func NewBatcher(rdb redis.Cmdable) *Batcher { return &Batcher{rdb: rdb} }

// Pending is how many callers wait for the next batch: tests use it to
// know their callers are queued.
func (b *Batcher) Pending() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending)
}

// Do queues the commands queue adds to a pipeline and returns once they
// ran; read their results from the commands queue created. queue must only
// add commands (it runs on whichever caller sends the batch). A batch of
// one runs under ctx, so its span is the caller's child; a shared one
// runs under a context of its own (its span a root, which
// telemetry.QuietBackground drops), since it serves many traces. Once
// queued, the commands are sent even if ctx ends meanwhile, as a command
// already written would be.
func (b *Batcher) Do(ctx context.Context, queue func(redis.Pipeliner)) {
	r := &batchReq{ctx: ctx, queue: queue, wake: make(chan struct{}, 1)}
	b.mu.Lock()
	b.pending = append(b.pending, r)
	lead := !b.busy
	b.busy = true
	b.mu.Unlock()
	if !lead {
		<-r.wake
		if r.done {
			return
		}
	}
	// r leads: send what is queued (r among it), then wake the first caller
	// queued meanwhile to send the next batch, or stand down.
	b.mu.Lock()
	batch := b.pending
	b.pending = nil
	b.mu.Unlock()
	b.send(batch)
	b.mu.Lock()
	if len(b.pending) > 0 {
		next := b.pending[0]
		b.mu.Unlock()
		next.wake <- struct{}{}
		return
	}
	b.busy = false
	b.mu.Unlock()
}

func (b *Batcher) send(batch []*batchReq) {
	ctx := batch[0].ctx
	if len(batch) > 1 {
		ctx = context.Background()
	}
	pipe := b.rdb.Pipeline()
	for _, r := range batch {
		r.queue(pipe)
	}
	_, _ = pipe.Exec(ctx) // each command carries its own error
	for _, r := range batch[1:] {
		r.done = true
		r.wake <- struct{}{}
	}
}
