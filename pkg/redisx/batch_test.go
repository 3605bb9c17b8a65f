package redisx_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/feedloop/feedloop/pkg/redisx"
	"github.com/feedloop/feedloop/pkg/testkit"
)

// Callers queued while a batch is in flight share the next round trip, and
// each reads its own results: a failing command fails its caller only.
func TestBatcherSharesRoundTrips(t *testing.T) {
	rdb := testkit.RedisClient(t)
	ctx := t.Context()
	if err := rdb.Set(ctx, "str", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	trips := &testkit.RedisTrips{}
	rdb.AddHook(trips)
	b := redisx.NewBatcher(rdb)

	// The first caller's batch is held until the others are queued behind it.
	const others = 20
	release := make(chan struct{})
	first, leading := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(first)
		b.Do(ctx, func(p redis.Pipeliner) {
			close(leading)
			<-release
			p.Set(ctx, "k:first", "1", 0)
		})
	}()
	<-leading
	var wg sync.WaitGroup
	results := make([]string, others)
	errs := make([]error, others)
	for i := range others {
		wg.Go(func() {
			var get *redis.StringCmd
			var incr *redis.IntCmd
			b.Do(ctx, func(p redis.Pipeliner) {
				p.Set(ctx, fmt.Sprintf("k:%d", i), i, 0)
				get = p.Get(ctx, fmt.Sprintf("k:%d", i))
				if i == 7 {
					incr = p.Incr(ctx, "str") // WRONGTYPE: not an integer
				}
			})
			results[i], errs[i] = get.Val(), get.Err()
			if incr != nil && incr.Err() == nil {
				errs[i] = fmt.Errorf("INCR of a string succeeded")
			} else if incr != nil {
				errs[i] = fmt.Errorf("incr: %w", incr.Err())
			}
		})
	}
	testkit.Eventually(t, "the other callers queued", func() bool { return b.Pending() >= others })
	close(release)
	<-first
	wg.Wait()
	roundTrips, _ := trips.Take()

	for i := range others {
		if results[i] != fmt.Sprint(i) {
			t.Errorf("caller %d read %q", i, results[i])
		}
		switch {
		case i == 7 && (errs[i] == nil || !strings.Contains(errs[i].Error(), "not an integer")):
			t.Errorf("caller 7: got %v, want its INCR's error", errs[i])
		case i != 7 && errs[i] != nil:
			t.Errorf("caller %d: %v", i, errs[i])
		}
	}
	if v, err := rdb.Get(ctx, "k:first").Result(); err != nil || v != "1" {
		t.Fatalf("first caller's SET: %q, %v", v, err)
	}
	if roundTrips != 2 {
		t.Fatalf("%d round trips, want 2: the first batch and one for the %d callers queued behind it", roundTrips, others)
	}
}

// Alone, a caller's commands go at once, and the Batcher is ready for the
// next caller afterwards (no leader left behind).
func TestBatcherAlone(t *testing.T) {
	rdb := testkit.RedisClient(t)
	ctx := t.Context()
	b := redisx.NewBatcher(rdb)
	for i := range 3 {
		var incr *redis.IntCmd
		b.Do(ctx, func(p redis.Pipeliner) { incr = p.Incr(ctx, "n") })
		if n, err := incr.Result(); err != nil || n != int64(i+1) {
			t.Fatalf("call %d: %d, %v", i, n, err)
		}
	}
	if b.Pending() != 0 {
		t.Fatal("callers left queued")
	}
}

// Many callers at once: every command runs exactly once.
func TestBatcherConcurrent(t *testing.T) {
	rdb := testkit.RedisClient(t)
	ctx := t.Context()
	b := redisx.NewBatcher(rdb)
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for range 50 {
				b.Do(ctx, func(p redis.Pipeliner) { p.Incr(ctx, "n") })
			}
		})
	}
	wg.Wait()
	if n, err := rdb.Get(ctx, "n").Int(); err != nil || n != 64*50 {
		t.Fatalf("n = %d, %v; want %d", n, err, 64*50)
	}
}
