package rebuild_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/rebuild"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

func gate(t *testing.T, rdb *redis.Client, ttl time.Duration) *rebuild.Gate {
	t.Helper()
	g, err := rebuild.New(rdb, rebuild.Config{Name: "test state", Prefix: "test:rebuild:", LockTTL: ttl, Poll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// fencedSet writes key only while fence holds, as a rebuild's writes must.
var fencedSet = redis.NewScript(`
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
redis.call("SET", KEYS[2], ARGV[2])
return 1`)

// Two replicas watch one missing state: exactly one rebuilds it, the other
// waits for the ready key; a flush makes it missing again and it is
// rebuilt once more.
func TestWatchRebuildsOnceAcrossReplicas(t *testing.T) {
	rdb := testkit.RedisClient(t)
	var runs atomic.Int32
	release := make(chan struct{})
	fn := func(ctx context.Context, fence rebuild.Guard) error {
		runs.Add(1)
		<-release // long enough for the other replica to find the lock taken
		return fencedSet.Run(ctx, rdb, []string{fence.Key, "test:state"}, fence.Token, "rebuilt").Err()
	}
	a, b := gate(t, rdb, time.Second), gate(t, rdb, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = a.Watch(ctx, fn) })
	wg.Go(func() { _ = b.Watch(ctx, fn) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	testkit.Eventually(t, "a rebuild started", func() bool { return runs.Load() == 1 })
	time.Sleep(100 * time.Millisecond) // ten polls of each
	if err := a.Check(ctx); !errors.Is(err, rebuild.ErrNotReady) {
		t.Fatalf("Check during the rebuild = %v, want ErrNotReady", err)
	}
	close(release)
	waitCtx, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	if err := b.WaitReady(waitCtx); err != nil {
		t.Fatal(err)
	}
	// The ready key is written before the rebuilder counts its rebuild.
	testkit.Eventually(t, "the rebuild counted", func() bool { return a.Rebuilds()+b.Rebuilds() > 0 })
	if n := runs.Load(); n != 1 || a.Rebuilds()+b.Rebuilds() != 1 {
		t.Fatalf("%d rebuilds ran (%d+%d completed), want 1", n, a.Rebuilds(), b.Rebuilds())
	}
	if v, _ := rdb.Get(ctx, "test:state").Result(); v != "rebuilt" {
		t.Fatalf("state = %q", v)
	}

	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "rebuilt after the flush", func() bool { ok, _ := a.Ready(ctx); return ok })
	if n := runs.Load(); n != 2 {
		t.Fatalf("%d rebuilds after the flush, want 2", n)
	}
}

// A rebuilder whose lock is taken from it (a flush mid-rebuild) has its
// context cancelled, its fenced writes refused, and commits nothing.
func TestLostLockVoidsTheRebuild(t *testing.T) {
	rdb := testkit.RedisClient(t)
	g := gate(t, rdb, 150*time.Millisecond)
	err := g.Rebuild(context.Background(), func(ctx context.Context, fence rebuild.Guard) error {
		if err := rdb.FlushAll(ctx).Err(); err != nil {
			return err
		}
		if n, err := fencedSet.Run(ctx, rdb, []string{fence.Key, "test:state"}, fence.Token, "stale").Int(); err != nil || n != 0 {
			t.Errorf("fenced write after the lock was lost = %d, %v; want refused", n, err)
		}
		<-ctx.Done() // the renewal finds the lock gone
		return context.Cause(ctx)
	})
	if !errors.Is(err, rebuild.ErrLockLost) {
		t.Fatalf("Rebuild = %v, want ErrLockLost", err)
	}
	if ok, _ := g.Ready(context.Background()); ok {
		t.Fatal("a rebuild that lost its lock wrote the ready key")
	}
}

// Rebuild (an operator's) invalidates a complete state first, and fails
// with ErrBusy while another rebuild holds the lock.
func TestForcedRebuild(t *testing.T) {
	rdb := testkit.RedisClient(t)
	g := gate(t, rdb, time.Second)
	ctx := context.Background()
	ok := func(context.Context, rebuild.Guard) error { return nil }
	if err := g.Rebuild(ctx, ok); err != nil {
		t.Fatal(err)
	}
	err := g.Rebuild(ctx, func(ctx context.Context, _ rebuild.Guard) error {
		if r, _ := g.Ready(ctx); r {
			t.Error("the ready key is still there during a forced rebuild")
		}
		if err := g.Rebuild(ctx, ok); !errors.Is(err, rebuild.ErrBusy) {
			t.Errorf("second Rebuild = %v, want ErrBusy", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := g.Ready(ctx); !r {
		t.Fatal("not ready after the forced rebuild")
	}
}

func TestGuardHolds(t *testing.T) {
	live := rebuild.Guard{Key: "k"}
	fence := rebuild.Guard{Key: "k", Token: "t"}
	for _, c := range []struct {
		g      rebuild.Guard
		val    string
		exists bool
		want   bool
	}{
		{live, "", false, false}, {live, "anything", true, true},
		{fence, "", false, false}, {fence, "other", true, false}, {fence, "t", true, true},
	} {
		if got := c.g.Holds(c.val, c.exists); got != c.want {
			t.Errorf("%+v.Holds(%q, %v) = %v, want %v", c.g, c.val, c.exists, got, c.want)
		}
	}
}

// levels records the levels of the records logged.
type levels struct {
	mu   sync.Mutex
	seen []slog.Level
}

func (l *levels) Enabled(context.Context, slog.Level) bool { return true }
func (l *levels) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, r.Level)
	return nil
}
func (l *levels) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *levels) WithGroup(string) slog.Handler      { return l }
func (l *levels) take() []slog.Level {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.seen
	l.seen = nil
	return out
}

// A first start (empty stream, empty Redis) builds the state without a
// warning; the same state lost later, with events in the stream, warns.
func TestFirstStartIsQuietALossWarns(t *testing.T) {
	rdb := testkit.RedisClient(t)
	b := testkit.Bus(t)
	ctx := t.Context()
	if err := b.EnsureStreams(ctx, bus.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	log := &levels{}
	g, err := rebuild.New(rdb, rebuild.Config{Name: "test state", Prefix: "test:rebuild:", Log: slog.New(log)})
	if err != nil {
		t.Fatal(err)
	}
	noop := func(context.Context, rebuild.Guard) error { return nil }
	if err := g.Init(ctx, b.JetStream(), bus.StreamFeedback, noop); err != nil {
		t.Fatal(err)
	}
	if ok, err := g.Ready(ctx); err != nil || !ok {
		t.Fatalf("after Init on an empty stream: ready %v, %v", ok, err)
	}
	first := log.take()
	if len(first) == 0 || slices.Contains(first, slog.LevelWarn) {
		t.Fatalf("first start logged %v, want Info records only", first)
	}

	if _, err := b.Publish(ctx, bus.SubjectReceived, &feedloopv1.Event{Id: "ev-1", FeedbackId: "fb-1",
		Payload: &feedloopv1.Event_Received{Received: &feedloopv1.Received{}}}); err != nil {
		t.Fatal(err)
	}
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	// Init leaves a non-empty stream to Watch; an operator's rebuild is
	// a loss's path too.
	if err := g.Init(ctx, b.JetStream(), bus.StreamFeedback, noop); err != nil {
		t.Fatal(err)
	}
	if ok, _ := g.Ready(ctx); ok {
		t.Fatal("Init rebuilt a state whose stream holds events")
	}
	if err := g.Rebuild(ctx, noop); err != nil {
		t.Fatal(err)
	}
	if lost := log.take(); !slices.Contains(lost, slog.LevelWarn) {
		t.Fatalf("a lost state logged %v, want a warning", lost)
	}
}
