package ratelimit_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/feedloop/feedloop/pkg/testkit"
	"github.com/feedloop/feedloop/services/intake/access"
	"github.com/feedloop/feedloop/services/intake/internal/accept"
	"github.com/feedloop/feedloop/services/intake/internal/ratelimit"
)

func limits(def access.Limit, over map[string]access.Limit) func(string) access.Limit {
	return func(s string) access.Limit {
		if l, ok := over[s]; ok {
			return l
		}
		return def
	}
}

func client(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestBurstRetryIndependenceAndSharing(t *testing.T) {
	addr := testkit.RedisClient(t).Options().Addr
	// 10/s with a burst of 3: three at once, then one per 100ms.
	lim := limits(access.Limit{Rate: access.Rate{N: 10, Per: time.Second}, Burst: 3}, map[string]access.Limit{
		"survey": {}, // no limit
	})
	// Two replicas, two connections, one Redis.
	a := ratelimit.New(client(t, addr), lim)
	b := ratelimit.New(client(t, addr), lim)
	ctx := t.Context()

	for i := range 3 {
		l := a
		if i%2 == 1 {
			l = b
		}
		if d, err := l.Allow(ctx, "helpdesk", 1); err != nil || !d.Allowed {
			t.Fatalf("request %d of the burst = %+v, %v; want allowed", i, d, err)
		}
	}
	// The burst is spent across both replicas: the fourth is refused by either.
	d, e := mustAllow(t, a, "helpdesk", 1), mustAllow(t, b, "helpdesk", 1)
	if d.Allowed || e.Allowed {
		t.Fatalf("beyond the shared burst: %+v, %+v; want refused on both replicas", d, e)
	}
	if d.RetryAfter <= 0 || d.RetryAfter > 100*time.Millisecond || d.Burst != 3 {
		t.Fatalf("refusal = %+v, want a retry delay within one emission interval (100ms) and burst 3", d)
	}
	// Another source has its own budget; an unlimited one has none.
	if d := mustAllow(t, a, "crm", 3); !d.Allowed {
		t.Fatalf("crm = %+v, want allowed: budgets are per source", d)
	}
	for range 20 {
		if d := mustAllow(t, a, "survey", 1); !d.Allowed {
			t.Fatalf("survey = %+v, want no limit", d)
		}
	}
	// Waiting the delay lets one through.
	time.Sleep(d.RetryAfter)
	if d := mustAllow(t, b, "helpdesk", 1); !d.Allowed {
		t.Fatalf("after the retry delay = %+v, want allowed", d)
	}
	// More than the burst at once is never allowed, and takes nothing.
	if d := mustAllow(t, a, "web", 4); d.Allowed || d.Burst != 3 {
		t.Fatalf("4 over a burst of 3 = %+v, want refused naming the burst", d)
	}
	if d := mustAllow(t, a, "web", 3); !d.Allowed {
		t.Fatalf("web after an oversize request = %+v, want its full burst", d)
	}
}

func TestBurstDefaultsToOnePeriod(t *testing.T) {
	l := ratelimit.New(testkit.RedisClient(t), limits(access.Limit{Rate: access.Rate{N: 5, Per: time.Minute}}, nil))
	for i := range 5 {
		if d := mustAllow(t, l, "helpdesk", 1); !d.Allowed {
			t.Fatalf("request %d = %+v, want allowed (burst = 5)", i, d)
		}
	}
	if d := mustAllow(t, l, "helpdesk", 1); d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > 12*time.Second {
		t.Fatalf("sixth = %+v, want refused with a retry within 12s (one emission interval)", d)
	}
}

func mustAllow(t *testing.T, l *ratelimit.Limiter, source string, n int) accept.Decision {
	t.Helper()
	d, err := l.Allow(t.Context(), source, n)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
