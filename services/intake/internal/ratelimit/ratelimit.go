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

	"github.com/feedloop/feedloop/services/intake/access"
	"github.com/feedloop/feedloop/services/intake/internal/accept"
)

// Limiter limits each source to its access.Limit.
type Limiter struct {
	rl    *redis_rate.Limiter
	limit func(source string) access.Limit
}

// New returns a Limiter on rdb. limit is called per request with the
// source, so limits reloaded from the keys file apply at once.
func New(rdb redis.UniversalClient, limit func(source string) access.Limit) *Limiter {
	return &Limiter{rl: redis_rate.NewLimiter(rdb), limit: limit}
}

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
func (l *Limiter) Allow(ctx context.Context, source string, n int) (accept.Decision, error) {
	lim := l.limit(source)
	if lim.Rate.IsZero() {
		return accept.Decision{Allowed: true}, nil
	}
	burst := Burst(lim)
	if n > burst {
		return accept.Decision{Burst: burst}, nil
	}
	res, err := l.rl.AllowN(ctx, Key(source), redis_rate.Limit{Rate: lim.Rate.N, Burst: burst, Period: lim.Rate.Per}, n)
	if err != nil {
		return accept.Decision{}, fmt.Errorf("ratelimit: %s: %w", source, err)
	}
	d := accept.Decision{Allowed: res.Allowed >= n, Burst: burst}
	if !d.Allowed {
		d.RetryAfter = max(res.RetryAfter, time.Millisecond)
	}
	return d, nil
}
