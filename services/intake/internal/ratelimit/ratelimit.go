// Package ratelimit is the Redis adapter of intake's per-source rate limits:
// GCRA (generic cell rate algorithm, redis_rate) over one Redis key per
// source, so every intake replica spends the same budget.
package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/feedloop/feedloop/pkg/redisx"
	"github.com/feedloop/feedloop/services/intake/access"
	"github.com/feedloop/feedloop/services/intake/internal/idem"
)

// Decision is a Limiter's answer.
type Decision struct {
	Allowed bool
	// RetryAfter is how long until the same request would be allowed.
	RetryAfter time.Duration
	// Burst is the most one request may take; 0 when there is no limit.
	Burst int
}

// Limiter limits each source to its access.Limit.
type Limiter struct {
	rdb redis.UniversalClient
	// batch carries the scripts (and lookups) of concurrent submissions in
	// shared round trips.
	batch *redisx.Batcher
	rl    *redis_rate.Limiter
	limit func(source string) access.Limit
}

// New returns a Limiter on rdb. limit is called per request with the
// source, so limits reloaded from the keys file apply at once.
func New(rdb redis.UniversalClient, limit func(source string) access.Limit, opts ...Option) *Limiter {
	l := &Limiter{rdb: rdb, rl: redis_rate.NewLimiter(rdb), limit: limit}
	for _, o := range opts {
		o(l)
	}
	if l.batch == nil {
		l.batch = redisx.NewBatcher(rdb)
	}
	return l
}

// Option configures a Limiter.
type Option func(*Limiter)

// WithBatcher sends the Limiter's commands through b (on b's client), shared
// with b's other users: intake passes its idempotency keys' Batcher, so
// one round trip carries lookups and Remembers of concurrent submissions
// (two Batchers each made their own).
func WithBatcher(b *redisx.Batcher) Option { return func(l *Limiter) { l.batch = b } }

// Key is the Redis key of source's budget (redis_rate prefixes "rate:").
func Key(source string) string { return "intake:" + source }

// Burst is the burst of l: its own, else one period's worth of the rate.
func Burst(l access.Limit) int {
	if l.Burst > 0 {
		return l.Burst
	}
	return l.Rate.N
}

// Allow takes n units of source's budget if they are there.
func (l *Limiter) Allow(ctx context.Context, source string, n int) (Decision, error) {
	return l.allow(ctx, l.rl, source, n)
}

// AllowLookup is Allow of budget and the idempotency lookup of (source,
// externalID) in one round trip: the limit's script and the GET go in one
// pipeline. Without a limit for budget the GET goes alone; for a request
// over the burst nothing is sent, since it is refused whatever the key.
// err is the limiter's (the caller fails open on it); the lookup's own
// failure is in the Prefetch.
func (l *Limiter) AllowLookup(ctx context.Context, budget string, n int, source, externalID string) (d Decision, pre idem.Prefetch, err error) {
	var get *redis.StringCmd
	pb := &piggyback{UniversalClient: l.rdb, batch: l.batch, queue: func(p redis.Pipeliner) { get = idem.QueueLookup(ctx, p, source, externalID) }}
	d, err = l.allow(ctx, redis_rate.NewLimiter(pb), budget, n)
	if queue := pb.queue; queue != nil && (err != nil || d.Allowed) {
		// The script was not sent (no limit for budget): the lookup still
		// goes through the batch, sharing a round trip with concurrent
		// submissions' lookups and Remembers instead of taking one each.
		l.batch.Do(ctx, queue)
	}
	if get != nil {
		pre.FeedbackID, pre.Found, pre.Err = idem.LookupResult(get, source, externalID)
	}
	return d, pre, err
}

func (l *Limiter) allow(ctx context.Context, rl *redis_rate.Limiter, source string, n int) (Decision, error) {
	lim := l.limit(source)
	if lim.Rate.IsZero() {
		return Decision{Allowed: true}, nil
	}
	burst := Burst(lim)
	if n > burst {
		return Decision{Burst: burst}, nil
	}
	res, err := rl.AllowN(ctx, Key(source), redis_rate.Limit{Rate: lim.Rate.N, Burst: burst, Period: lim.Rate.Per}, n)
	if err != nil {
		return Decision{}, fmt.Errorf("ratelimit: %s: %w", source, err)
	}
	d := Decision{Allowed: res.Allowed >= n, Burst: burst}
	if !d.Allowed {
		d.RetryAfter = max(res.RetryAfter, time.Millisecond)
	}
	return d, nil
}

// piggyback is the client redis_rate runs its script on, sending queue's
// commands in the same pipeline as the script's first EVALSHA (or EVAL), so
// they cost no round trip of their own; the pipeline is batch's, shared
// with concurrent submissions. redis_rate's script is not
// exported and AllowN reads its reply at once, so it cannot be queued on a
// Pipeliner directly; this keeps its GCRA as is. redis_rate runs the script
// with redis.Script.Run: EVALSHA, then EVAL when Redis lacks the script.
type piggyback struct {
	redis.UniversalClient
	batch *redisx.Batcher
	// queue adds the commands to send along; nil once sent.
	queue func(redis.Pipeliner)
}

func (p *piggyback) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return p.along(ctx, func(pipe redis.Pipeliner) *redis.Cmd { return pipe.EvalSha(ctx, sha1, keys, args...) })
}

func (p *piggyback) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return p.along(ctx, func(pipe redis.Pipeliner) *redis.Cmd { return pipe.Eval(ctx, script, keys, args...) })
}

func (p *piggyback) along(ctx context.Context, script func(redis.Pipeliner) *redis.Cmd) *redis.Cmd {
	var cmd *redis.Cmd
	queue := p.queue
	p.queue = nil
	p.batch.Do(ctx, func(pipe redis.Pipeliner) {
		cmd = script(pipe)
		if queue != nil {
			queue(pipe)
		}
	})
	return cmd
}
