package testkit

import (
	"context"
	"net"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// RedisTrips is a go-redis hook counting what a client sends: round trips
// (a command sent alone, or a pipeline or transaction) and commands,
// leaving out a new connection's handshake, and the connections dialled.
// Add it with rdb.AddHook.
type RedisTrips struct{ roundTrips, commands, dials atomic.Int64 }

// Take returns the counts since the last Take and starts again from zero.
func (c *RedisTrips) Take() (roundTrips, commands int64) {
	return c.roundTrips.Swap(0), c.commands.Swap(0)
}

func handshake(cmd redis.Cmder) bool { return cmd.Name() == "hello" || cmd.Name() == "client" }

// Dials is how many connections the client has dialled.
func (c *RedisTrips) Dials() int64 { return c.dials.Load() }

// DialHook is part of redis.Hook.
func (c *RedisTrips) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c.dials.Add(1)
		return next(ctx, network, addr)
	}
}

// ProcessHook is part of redis.Hook.
func (c *RedisTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !handshake(cmd) {
			c.roundTrips.Add(1)
			c.commands.Add(1)
		}
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook is part of redis.Hook.
func (c *RedisTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && !handshake(cmds[0]) {
			c.roundTrips.Add(1)
			c.commands.Add(int64(len(cmds)))
		}
		return next(ctx, cmds)
	}
}

// CommandHook is a redis.Hook that shows f every command the client sends,
// alone or in a pipeline: for tests that count commands of one kind.
type CommandHook func(redis.Cmder)

// DialHook is part of redis.Hook.
func (f CommandHook) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook is part of redis.Hook.
func (f CommandHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { f(cmd); return next(ctx, cmd) }
}

// ProcessPipelineHook is part of redis.Hook.
func (f CommandHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			f(c)
		}
		return next(ctx, cmds)
	}
}

// BeforeExec is a go-redis hook that runs Before once, just ahead of the
// client's first MULTI/EXEC pipeline: a test puts another writer's change
// between a transaction's reads and its EXEC there. Add it with
// rdb.AddHook.
type BeforeExec struct {
	Before func()
	once   sync.Once
}

// DialHook is part of redis.Hook.
func (h *BeforeExec) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook is part of redis.Hook.
func (h *BeforeExec) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

// ProcessPipelineHook is part of redis.Hook.
func (h *BeforeExec) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && cmds[0].Name() == "multi" {
			h.once.Do(h.Before)
		}
		return next(ctx, cmds)
	}
}
