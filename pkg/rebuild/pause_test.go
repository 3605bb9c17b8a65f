package rebuild_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/rebuild"
	"github.com/feedloop/feedloop/pkg/testkit"
)

// A handler that meets ErrNotReady is held, not failed, until the state is
// ready, then runs again and its message is acked; on shutdown it gives up
// with the error, so the message is redelivered.
func TestPauseHoldsUntilReady(t *testing.T) {
	rdb := testkit.RedisClient(t)
	g := gate(t, rdb, time.Second)
	var calls atomic.Int32
	h := rebuild.Pause(g, nil, 30*time.Millisecond)(func(ctx context.Context, m *bus.Msg) error {
		calls.Add(1)
		return g.Check(ctx)
	})
	done := make(chan error, 1)
	go func() { done <- h(context.Background(), &bus.Msg{Subject: "feedback.received"}) }()
	time.Sleep(150 * time.Millisecond) // several ackWait/3 periods
	select {
	case err := <-done:
		t.Fatalf("handler returned %v while the state was missing", err)
	default:
	}
	if err := g.Rebuild(context.Background(), func(context.Context, rebuild.Guard) error { return nil }); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("handler after the rebuild = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("handler still held after the rebuild")
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("handler ran %d times, want 2 (refused, then after the rebuild)", n)
	}

	stop := make(chan struct{})
	if err := rdb.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	h = rebuild.Pause(g, stop, 30*time.Millisecond)(func(ctx context.Context, _ *bus.Msg) error { return g.Check(ctx) })
	go func() { done <- h(context.Background(), &bus.Msg{}) }()
	close(stop)
	select {
	case err := <-done:
		if !errors.Is(err, rebuild.ErrNotReady) {
			t.Fatalf("handler on shutdown = %v, want ErrNotReady", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("handler still held after stop")
	}
}
