// Package redisx connects to Redis with OpenTelemetry tracing, for the
// derived, rebuildable state feedloop keeps there.
package redisx

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
)

// Option configures Connect.
type Option func(*options)

type options struct{ tp trace.TracerProvider }

// WithTracerProvider sets where the client's spans go (default: the global
// tracer provider): in a process running several services, each service's
// client uses its service's provider.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) { o.tp = tp }
}

// Connect parses url (redis://host:port/db), instruments the client with
// tracing and checks it answers.
func Connect(ctx context.Context, url string, opts ...Option) (*redis.Client, error) {
	o := options{tp: otel.GetTracerProvider()}
	for _, f := range opts {
		f(&o)
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redisx: parse url: %w", err)
	}
	c := redis.NewClient(opt)
	// Command arguments stay out of spans: they carry customers' feedback
	// (personal data) and cost a fifth of the pipeline's allocations.
	// Pipelines get their span from pipelineTracing, which skips
	// redisotel's formatting of every command.
	if err := redisotel.InstrumentTracing(c, redisotel.WithTracerProvider(o.tp), redisotel.WithDBStatement(false), redisotel.WithCallerEnabled(false),
		redisotel.WithCommandsFilter(func([]redis.Cmder) bool { return true })); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("redisx: instrument: %w", err)
	}
	c.AddHook(newPipelineTracing(opt, o.tp))
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("redisx: ping %s: %w", opt.Addr, err)
	}
	return c, nil
}
