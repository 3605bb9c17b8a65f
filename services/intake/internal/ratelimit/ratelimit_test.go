package ratelimit_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/feedloop/feedloop/pkg/testkit"
	"github.com/feedloop/feedloop/services/intake/access"
	"github.com/feedloop/feedloop/services/intake/internal/idem"
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

func mustAllow(t *testing.T, l *ratelimit.Limiter, source string, n int) ratelimit.Decision {
	t.Helper()
	d, err := l.Allow(t.Context(), source, n)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// AllowLookup answers the limit and the idempotency key in one round trip,
// with the same decisions as Allow, also when Redis lost the script.
func TestAllowLookupIsOneRoundTrip(t *testing.T) {
	rdb := testkit.RedisClient(t)
	var n testkit.RedisTrips
	rdb.AddHook(&n)
	ctx := t.Context()
	l := ratelimit.New(rdb, limits(access.Limit{Rate: access.Rate{N: 2, Per: time.Hour}}, map[string]access.Limit{"survey": {}, "web": {Rate: access.Rate{N: 100, Per: time.Second}}}))
	if err := idem.New(rdb, time.Hour).Remember(ctx, "helpdesk", "known", "fb-1"); err != nil {
		t.Fatal(err)
	}
	// The first run loads the script (EVALSHA fails, EVAL), as Allow's does.
	mustAllow(t, l, "web", 1)
	n.Take()

	d, pre, err := l.AllowLookup(ctx, "helpdesk", 1, "helpdesk", "known")
	if err != nil || !d.Allowed || pre != (idem.Prefetch{FeedbackID: "fb-1", Found: true}) {
		t.Fatalf("known key = %+v, %+v, %v; want allowed and found", d, pre, err)
	}
	if rt, cmds := n.Take(); rt != 1 || cmds != 2 {
		t.Fatalf("%d round trips, %d commands; want the script and the GET in 1", rt, cmds)
	}

	// A missing key (redis.Nil in the pipeline) keeps the connection.
	dials := n.Dials()
	for i := range 5 {
		if _, pre, err := l.AllowLookup(ctx, "web", 1, "web", fmt.Sprint("missing-", i)); err != nil || pre != (idem.Prefetch{}) {
			t.Fatalf("missing key = %+v, %v", pre, err)
		}
	}
	if d := n.Dials() - dials; d > 1 {
		t.Fatalf("%d dials for 5 lookups of missing keys, want the connection reused", d)
	}

	// Redis restarted empty of scripts: EVALSHA fails, redis_rate falls
	// back to EVAL, and the GET still rode on the first trip.
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	n.Take()
	d, pre, err = l.AllowLookup(ctx, "helpdesk", 1, "helpdesk", "new")
	if err != nil || !d.Allowed || pre != (idem.Prefetch{}) {
		t.Fatalf("after SCRIPT FLUSH = %+v, %+v, %v; want allowed, not found", d, pre, err)
	}
	if rt, _ := n.Take(); rt != 2 {
		t.Fatalf("%d round trips after SCRIPT FLUSH, want 2 (EVALSHA+GET, EVAL)", rt)
	}

	// The budget (2 an hour) is spent: refused like Allow.
	d, _, err = l.AllowLookup(ctx, "helpdesk", 1, "helpdesk", "new")
	if err != nil || d.Allowed || d.RetryAfter < 29*time.Minute {
		t.Fatalf("third = %+v, %v; want refused for about half an hour", d, err)
	}
	// No limit: the GET alone.
	n.Take()
	if d, pre, err := l.AllowLookup(ctx, "survey", 1, "helpdesk", "known"); err != nil || !d.Allowed || !pre.Found {
		t.Fatalf("unlimited = %+v, %+v, %v; want allowed and found", d, pre, err)
	}
	if rt, cmds := n.Take(); rt != 1 || cmds != 1 {
		t.Fatalf("unlimited: %d round trips, %d commands; want the GET only", rt, cmds)
	}
	// Over the burst: refused without asking Redis anything.
	if d, _, err := l.AllowLookup(ctx, "crm", 3, "crm", "x"); err != nil || d.Allowed || d.Burst != 2 {
		t.Fatalf("over the burst = %+v, %v; want refused naming the burst", d, err)
	}
	if rt, _ := n.Take(); rt != 0 {
		t.Fatalf("over the burst: %d round trips, want none", rt)
	}
}

// With intake's wiring (the limiter on the idempotency keys' Batcher), the
// lookups of submissions without a limit and the Remembers of others
// queued meanwhile share one round trip, each with its own answer.
func TestLookupsAndRemembersShareRoundTrips(t *testing.T) {
	rdb := testkit.RedisClient(t)
	ctx := t.Context()
	keys := idem.New(rdb, time.Hour)
	if err := keys.Remember(ctx, "helpdesk", "known", "fb-known"); err != nil {
		t.Fatal(err)
	}
	l := ratelimit.New(rdb, limits(access.Limit{}, nil), ratelimit.WithBatcher(keys.Batcher()))
	var trips testkit.RedisTrips
	rdb.AddHook(&trips)

	// A first batch is held until every caller is queued behind it.
	release, leading, first := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(first)
		keys.Batcher().Do(ctx, func(p redis.Pipeliner) {
			close(leading)
			<-release
			p.Ping(ctx)
		})
	}()
	<-leading
	const n = 10
	var wg sync.WaitGroup
	pres := make([]idem.Prefetch, n)
	errs := make([]error, 2*n)
	for i := range n {
		wg.Go(func() {
			id := "missing"
			if i%2 == 0 {
				id = "known"
			}
			var d ratelimit.Decision
			d, pres[i], errs[i] = l.AllowLookup(ctx, "helpdesk", 1, "helpdesk", id)
			if errs[i] == nil && !d.Allowed {
				errs[i] = fmt.Errorf("lookup %d refused", i)
			}
		})
		wg.Go(func() { errs[n+i] = keys.Remember(ctx, "web", fmt.Sprint("new-", i), fmt.Sprint("fb-", i)) })
	}
	testkit.Eventually(t, "every caller queued on the shared Batcher", func() bool { return keys.Batcher().Pending() >= 2*n })
	close(release)
	<-first
	wg.Wait()
	if rt, cmds := trips.Take(); rt != 2 || cmds != 1+2*n {
		t.Fatalf("%d round trips, %d commands; want 2 (the held batch, then all %d callers' commands)", rt, cmds, 2*n)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
	}
	for i, pre := range pres {
		want := idem.Prefetch{}
		if i%2 == 0 {
			want = idem.Prefetch{FeedbackID: "fb-known", Found: true}
		}
		if pre != want {
			t.Errorf("lookup %d = %+v, want %+v", i, pre, want)
		}
	}
	for i := range n {
		if id, ok, err := keys.Lookup(ctx, "web", fmt.Sprint("new-", i)); err != nil || !ok || id != fmt.Sprint("fb-", i) {
			t.Errorf("Remember %d: %q %v %v", i, id, ok, err)
		}
	}
}

// With Redis down both fail, each with its own error.
func TestAllowLookupRedisDown(t *testing.T) {
	dead := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t)), MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = dead.Close() })
	l := ratelimit.New(dead, limits(access.Limit{Rate: access.Rate{N: 2, Per: time.Hour}}, nil))
	_, pre, err := l.AllowLookup(t.Context(), "helpdesk", 1, "helpdesk", "x")
	if err == nil || pre.Err == nil {
		t.Fatalf("limiter err %v, lookup err %v; want both", err, pre.Err)
	}
}

// BenchmarkAllowThenLookup is the rate limit and the idempotency lookup of
// one submission: apart (two round trips) and in one pipeline.
func BenchmarkAllowThenLookup(b *testing.B) {
	rdb := testkit.RedisClient(b)
	l := ratelimit.New(rdb, limits(access.Limit{Rate: access.Rate{N: 1_000_000, Per: time.Second}}, nil))
	keys := idem.New(rdb, time.Hour)
	ctx := b.Context()
	b.Run("apart", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := l.Allow(ctx, "helpdesk", 1); err != nil {
				b.Fatal(err)
			}
			if _, _, err := keys.Lookup(ctx, "helpdesk", "x"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pipelined", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, pre, err := l.AllowLookup(ctx, "helpdesk", 1, "helpdesk", "x"); err != nil || pre.Err != nil {
				b.Fatal(err, pre.Err)
			}
		}
	})
}
