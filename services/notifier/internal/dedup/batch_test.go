package dedup_test

import (
	"sync"
	"testing"
	"time"

	"github.com/feedloop/feedloop/pkg/testkit"
	"github.com/feedloop/feedloop/services/notifier/internal/dedup"
)

// Claims of concurrent deliveries share round trips (redisx.Batcher), and
// still only one of many claims of one delivery is granted: each claim is
// its own script in the shared pipeline. The trips counted show they were
// shared.
func TestBatchedClaims(t *testing.T) {
	rdb := testkit.RedisClient(t)
	trips := &testkit.RedisTrips{}
	rdb.AddHook(trips)
	ctx := t.Context()
	s := dedup.New(rdb, time.Minute, time.Hour)
	if _, err := s.Claim(ctx, "warm"); err != nil { // loads the script
		t.Fatal(err)
	}
	trips.Take()

	const n = 64
	states := make([]dedup.State, n)
	claims := make([]dedup.Claim, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			c, err := s.Claim(ctx, "one-delivery")
			if err != nil {
				t.Error(err)
			}
			states[i], claims[i] = c.State, c
		})
	}
	close(start)
	wg.Wait()
	roundTrips, commands := trips.Take()
	won := -1
	for i, st := range states {
		switch {
		case st == dedup.Acquired && won >= 0:
			t.Fatalf("claims %d and %d both acquired", won, i)
		case st == dedup.Acquired:
			won = i
		case st != dedup.Held:
			t.Fatalf("claim %d: %v, want held", i, st)
		}
	}
	if won < 0 {
		t.Fatal("no claim acquired")
	}
	if commands != n {
		t.Fatalf("%d commands for %d claims", commands, n)
	}
	t.Logf("%d claims in %d round trips", n, roundTrips)

	if err := s.MarkSent(ctx, claims[won], "ev-1"); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Claim(ctx, "one-delivery"); err != nil || c.State != dedup.Sent || c.Cause != "ev-1" {
		t.Fatalf("after the mark: %v %q, %v; want sent by ev-1", c.State, c.Cause, err)
	}
}

// A Redis that lost its scripts (restart, SCRIPT FLUSH) still answers
// claims: the pipelined EVALSHA fails with NOSCRIPT and the claim is sent
// again with EVAL.
func TestClaimAfterScriptFlush(t *testing.T) {
	rdb := testkit.RedisClient(t)
	ctx := t.Context()
	s := dedup.New(rdb, time.Minute, time.Hour)
	if c, err := s.Claim(ctx, "a"); err != nil || c.State != dedup.Acquired {
		t.Fatalf("claim a: %v, %v", c.State, err)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Claim(ctx, "b"); err != nil || c.State != dedup.Acquired {
		t.Fatalf("claim b after SCRIPT FLUSH: %v, %v", c.State, err)
	}
	if c, err := s.Claim(ctx, "a"); err != nil || c.State != dedup.Held {
		t.Fatalf("claim a again: %v, %v; want held", c.State, err)
	}
}
