// Package rebuild keeps derived state in Redis usable across the loss of
// Redis (a FLUSHALL, a restart without persistence, a failover to an empty
// replica): it tells when the state is gone and has exactly one replica
// rebuild it from the stream while the others wait.
//
// A Gate owns two keys:
//
//	<prefix>ready  written by a completed rebuild, never expires: its
//	               absence means the state is missing or partial
//	<prefix>lock   the rebuilder's lock: a random owner token with a TTL,
//	               renewed while the rebuild runs
//
// Writers of the state check a Guard inside their own transaction or
// script (no extra round trip): live writers need the ready key (Gate.Live),
// the rebuilder needs the lock to still hold its token (the Guard passed to
// its RebuildFunc). So a write never lands on state that is being rebuilt
// unless it is the rebuilder's, and a rebuilder that lost its lock (paused
// past the TTL, or Redis flushed mid-rebuild) stops writing at once.
// A flush removes the ready key with everything else, which is what makes
// the loss visible.
package rebuild

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// ErrNotReady is returned (wrapped) by reads and writes of derived state
// while it is missing or being rebuilt: try again later.
var ErrNotReady = errors.New("being rebuilt from the event stream; try again shortly")

// ErrLockLost means the rebuilder no longer holds the lock (its TTL ran
// out, or Redis lost it): its work is void and another rebuild follows.
var ErrLockLost = errors.New("rebuild lock lost")

// ErrBusy means another process holds the rebuild lock.
var ErrBusy = errors.New("another rebuild is running")

// Defaults of Config.
const (
	DefaultLockTTL = 15 * time.Second
	DefaultPoll    = time.Second
)

// Config describes a Gate.
type Config struct {
	// Name says what the state is in logs and errors ("router read model").
	Name string
	// Prefix starts the gate's two keys. It must differ from the prefix of
	// the state itself if the rebuild deletes the state by prefix.
	Prefix string
	// LockTTL bounds how long a dead rebuilder blocks the others (default
	// DefaultLockTTL); the lock is renewed every third of it.
	LockTTL time.Duration
	// Poll is how often Watch looks for the ready key (default DefaultPoll):
	// how soon a flush is noticed when nothing writes.
	Poll time.Duration
	// Log receives the gate's events (default slog.Default()).
	Log *slog.Logger
	// TracerProvider receives the rebuild.run spans (default: the global
	// one); a process running several services gives each its own.
	TracerProvider trace.TracerProvider
}

// Guard is the condition a write checks atomically with itself: Key holds
// Token, or merely exists when Token is empty.
type Guard struct {
	Key   string
	Token string
}

// Holds reports whether a read of Key (val, exists) satisfies g.
func (g Guard) Holds(val string, exists bool) bool {
	if !exists {
		return false
	}
	return g.Token == "" || val == g.Token
}

// Get reads g.Key in c (a pipeline inside WATCH, say) for Check.
func (g Guard) Get(ctx context.Context, c redis.Cmdable) *redis.StringCmd { return c.Get(ctx, g.Key) }

// Check turns the result of Get into nil or an error wrapping ErrNotReady
// (or ErrLockLost for a rebuilder's guard).
func (g Guard) Check(cmd *redis.StringCmd, what string) error {
	v, err := cmd.Result()
	switch {
	case err == nil:
		if g.Holds(v, true) {
			return nil
		}
	case !errors.Is(err, redis.Nil):
		return err
	}
	if g.Token != "" {
		return fmt.Errorf("%s: %w", what, ErrLockLost)
	}
	return fmt.Errorf("%s: %w", what, ErrNotReady)
}

// Gate coordinates the rebuild of one piece of derived state.
type Gate struct {
	rdb      redis.UniversalClient
	cfg      Config
	ready    string
	lock     string
	kick     chan struct{}
	rebuilds atomic.Int64
}

// New returns the Gate of cfg on rdb.
func New(rdb redis.UniversalClient, cfg Config) (*Gate, error) {
	if rdb == nil {
		return nil, errors.New("rebuild: redis client is required")
	}
	if cfg.Prefix == "" || cfg.Name == "" {
		return nil, errors.New("rebuild: Name and Prefix are required")
	}
	if cfg.LockTTL == 0 {
		cfg.LockTTL = DefaultLockTTL
	}
	if cfg.Poll == 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.LockTTL < 100*time.Millisecond || cfg.Poll < time.Millisecond {
		return nil, fmt.Errorf("rebuild: LockTTL must be at least 100ms and Poll at least 1ms, got %s and %s", cfg.LockTTL, cfg.Poll)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.TracerProvider == nil {
		cfg.TracerProvider = otel.GetTracerProvider()
	}
	return &Gate{rdb: rdb, cfg: cfg, ready: cfg.Prefix + "ready", lock: cfg.Prefix + "lock", kick: make(chan struct{}, 1)}, nil
}

// Live is the guard of live writers: the state is complete.
func (g *Gate) Live() Guard { return Guard{Key: g.ready} }

// ReadyKey is the key a completed rebuild writes.
func (g *Gate) ReadyKey() string { return g.ready }

// Rebuilds is how many rebuilds this Gate completed.
func (g *Gate) Rebuilds() int64 { return g.rebuilds.Load() }

// Ready reports whether the state is complete.
func (g *Gate) Ready(ctx context.Context) (bool, error) {
	n, err := g.rdb.Exists(ctx, g.ready).Result()
	if err != nil {
		return false, fmt.Errorf("rebuild: %s: check %s: %w", g.cfg.Name, g.ready, err)
	}
	return n == 1, nil
}

// Check returns nil when the state is complete, an error wrapping
// ErrNotReady (and asking Watch to look at once) when it is not.
func (g *Gate) Check(ctx context.Context) error {
	ok, err := g.Ready(ctx)
	if err != nil {
		return err
	}
	if !ok {
		g.Kick()
		return fmt.Errorf("%s: %w", g.cfg.Name, ErrNotReady)
	}
	return nil
}

// Kick asks Watch to check the ready key now (a writer met ErrNotReady).
func (g *Gate) Kick() {
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// WaitReady kicks Watch and waits until the state is complete or ctx ends.
func (g *Gate) WaitReady(ctx context.Context) error {
	g.Kick()
	t := time.NewTicker(min(50*time.Millisecond, g.cfg.Poll))
	defer t.Stop()
	for {
		ok, err := g.Ready(ctx)
		if err == nil && ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (waited until %w)", g.cfg.Name, ErrNotReady, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// RebuildFunc rebuilds the state from the stream. Every write it makes must
// check fence atomically with itself (see Guard), and it must stop at the
// first ErrLockLost. ctx is cancelled when the lock is lost.
type RebuildFunc func(ctx context.Context, fence Guard) error

// Watch keeps the state complete until ctx ends: at start, every Poll and
// on Kick it checks the ready key and, when it is missing, tries to take
// the lock and run rebuild. A replica that finds the lock taken leaves the
// rebuild to its holder and keeps checking (its writers wait meanwhile).
// Failures are logged and retried at the next check; Watch returns nil when
// ctx ends.
func (g *Gate) Watch(ctx context.Context, rebuild RebuildFunc) error {
	t := time.NewTicker(g.cfg.Poll)
	defer t.Stop()
	for {
		ok, err := g.Ready(ctx)
		if err == nil && !ok {
			err = g.run(ctx, false, false, rebuild)
			if errors.Is(err, ErrBusy) {
				err = nil
			}
		}
		if err != nil && ctx.Err() == nil {
			g.cfg.Log.Warn("rebuild: "+g.cfg.Name+" not rebuilt; trying again", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-g.kick:
		case <-t.C:
		}
	}
}

// Init makes a missing state complete at once when the stream is empty
// (stream's first message is absent: what it derives from is nothing), so
// that a service starting on an empty Redis and an empty stream is ready
// before it serves; otherwise, or when another replica holds the lock, it
// leaves the rebuild to Watch. js may be nil (no check).
func (g *Gate) Init(ctx context.Context, js jetstream.JetStream, stream string, rebuild RebuildFunc) error {
	if ok, err := g.Ready(ctx); err != nil || ok || js == nil {
		return err
	}
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("rebuild: %s: stream %s: %w", g.cfg.Name, stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return fmt.Errorf("rebuild: %s: stream %s: %w", g.cfg.Name, stream, err)
	}
	if info.State.Msgs > 0 {
		return nil
	}
	// Nothing is lost: the state is simply new, which is no warning.
	if err := g.run(ctx, false, true, rebuild); err != nil && !errors.Is(err, ErrBusy) {
		return err
	}
	return nil
}

// Rebuild takes the lock and runs rebuild even if the state is complete
// (the ready key is deleted first, so live writers wait), for an operator's
// command. It returns ErrBusy (wrapped) when another rebuild holds the lock.
func (g *Gate) Rebuild(ctx context.Context, rebuild RebuildFunc) error {
	return g.run(ctx, true, false, rebuild)
}

// Scripts; KEYS[1] is the lock, ARGV[1] the owner token.
var (
	// renew extends the lock if it is still ours.
	renewScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0`)
	// invalidate deletes the ready key KEYS[2] if the lock is ours.
	invalidateScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  redis.call("DEL", KEYS[2])
  return 1
end
return 0`)
	// commit writes the ready key KEYS[2] and frees the lock, if it is ours.
	commitScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  redis.call("SET", KEYS[2], ARGV[2])
  redis.call("DEL", KEYS[1])
  return 1
end
return 0`)
	// release frees the lock if it is ours.
	releaseScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0`)
)

func (g *Gate) run(ctx context.Context, force, fresh bool, rebuild RebuildFunc) (err error) {
	token, err := newToken()
	if err != nil {
		return err
	}
	got, err := g.rdb.SetNX(ctx, g.lock, token, g.cfg.LockTTL).Result()
	if err != nil {
		return fmt.Errorf("rebuild: %s: take lock: %w", g.cfg.Name, err)
	}
	if !got {
		return fmt.Errorf("rebuild: %s: %w", g.cfg.Name, ErrBusy)
	}
	// Holding the lock, this replica acts: a span of its own keeps the
	// rebuild's Redis and NATS calls in one trace (telemetry.QuietBackground
	// drops them as roots). Replicas that found the lock taken start none.
	ctx, span := g.cfg.TracerProvider.Tracer("github.com/feedloop/feedloop/pkg/rebuild").Start(ctx, "rebuild.run", trace.WithAttributes(
		attribute.String("feedloop.rebuild.name", g.cfg.Name), attribute.Bool("feedloop.rebuild.forced", force), attribute.Bool("feedloop.rebuild.fresh", fresh)))
	defer func() {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	keys := []string{g.lock, g.ready}
	release := func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = releaseScript.Run(rctx, g.rdb, keys[:1], token).Err()
	}
	if force {
		if n, err := invalidateScript.Run(ctx, g.rdb, keys, token).Int(); err != nil || n != 1 {
			release()
			return fmt.Errorf("rebuild: %s: invalidate: %w", g.cfg.Name, errors.Join(err, ErrLockLost))
		}
	} else if ok, err := g.Ready(ctx); err != nil || ok {
		// Another replica completed a rebuild between our check and our lock.
		release()
		return err
	}

	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		g.renew(rctx, cancel, token)
	}()
	start := time.Now()
	// A fresh state (first start: nothing in the stream) is built quietly;
	// a missing one means Redis lost it, which ops want to hear about.
	level := slog.LevelWarn
	if fresh {
		level = slog.LevelInfo
		g.cfg.Log.Info("rebuild: " + g.cfg.Name + " starts empty: the stream holds no events yet")
	} else {
		g.cfg.Log.Warn("rebuild: "+g.cfg.Name+" is missing or partial; rebuilding it from the stream (readers get Unavailable, writers wait)", "forced", force)
	}
	err = rebuild(rctx, Guard{Key: g.lock, Token: token})
	if cerr := context.Cause(rctx); err != nil && cerr != nil && errors.Is(cerr, ErrLockLost) {
		err = fmt.Errorf("%w: %w", cerr, err)
	}
	cancel(nil)
	<-renewed
	if err != nil {
		release()
		return fmt.Errorf("rebuild: %s: %w", g.cfg.Name, err)
	}
	n, err := commitScript.Run(ctx, g.rdb, keys, token, time.Now().UTC().Format(time.RFC3339Nano)+" "+token).Int()
	if err != nil {
		release()
		return fmt.Errorf("rebuild: %s: commit: %w", g.cfg.Name, err)
	}
	if n != 1 {
		return fmt.Errorf("rebuild: %s: commit: %w", g.cfg.Name, ErrLockLost)
	}
	g.rebuilds.Add(1)
	g.cfg.Log.Log(ctx, level, "rebuild: "+g.cfg.Name+" rebuilt; live updates resume", "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// renew keeps the lock alive every third of its TTL until ctx ends, and
// cancels the rebuild with ErrLockLost when the lock is no longer ours.
func (g *Gate) renew(ctx context.Context, cancel context.CancelCauseFunc, token string) {
	t := time.NewTicker(g.cfg.LockTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := renewScript.Run(ctx, g.rdb, []string{g.lock}, token, g.cfg.LockTTL.Milliseconds()).Int()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			// A blip: the lock still has two thirds of its TTL; the fenced
			// writes stop on their own if it really is gone.
			g.cfg.Log.Warn("rebuild: renewing the lock failed", "name", g.cfg.Name, "err", err)
			continue
		}
		if n != 1 {
			cancel(ErrLockLost)
			return
		}
	}
}

func newToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("rebuild: token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
