package redisx_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/feedloop/feedloop/pkg/redisx"
	"github.com/feedloop/feedloop/pkg/testkit"
)

// A WATCH queued with the reads fails the EXEC of a transaction whose key
// another client wrote after the reads; without that write it commits.
// Watch sends UNWATCH exactly when fn sent no EXEC.
func TestWatchWithTheReads(t *testing.T) {
	rdb := testkit.RedisClient(t)
	ctx := t.Context()
	other := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr, DB: rdb.Options().DB})
	t.Cleanup(func() { _ = other.Close() })
	var mu sync.Mutex
	var names []string
	rdb.AddHook(testkit.CommandHook(func(cmd redis.Cmder) {
		mu.Lock()
		names = append(names, cmd.Name())
		mu.Unlock()
	}))
	sent := func(name string) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range names {
			if n == name {
				return true
			}
		}
		return false
	}
	// incr reads k with the WATCH, lets between run, then writes k+1 when
	// write is set.
	incr := func(write bool, between func()) error {
		names = nil
		return redisx.Watch(ctx, rdb, func(tx *redis.Tx) (bool, error) {
			var get *redis.StringCmd
			var watch *redis.Cmd
			if _, err := tx.Pipelined(ctx, func(p redis.Pipeliner) error {
				watch = redisx.QueueWatch(ctx, p, "k")
				get = p.Get(ctx, "k")
				return nil
			}); err != nil && !errors.Is(err, redis.Nil) {
				return false, err
			}
			if err := watch.Err(); err != nil {
				return false, err
			}
			n, _ := get.Int()
			between()
			if !write {
				return false, nil
			}
			_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, "k", n+1, 0)
				return nil
			})
			return true, err
		})
	}
	if err := incr(true, func() {}); err != nil {
		t.Fatalf("uncontended: %v", err)
	}
	if sent("unwatch") {
		t.Error("UNWATCH after an EXEC")
	}
	err := incr(true, func() { other.Set(context.Background(), "k", 10, 0) })
	if !errors.Is(err, redis.TxFailedErr) {
		t.Errorf("a write between the reads and EXEC: %v, want %v", err, redis.TxFailedErr)
	}
	if n, _ := rdb.Get(ctx, "k").Int(); n != 10 {
		t.Errorf("k = %d, want the other client's 10 (ours must not land over it)", n)
	}
	if err := incr(false, func() {}); err != nil {
		t.Fatal(err)
	}
	if !sent("unwatch") {
		t.Error("no UNWATCH for a transaction that sent no EXEC")
	}
}
