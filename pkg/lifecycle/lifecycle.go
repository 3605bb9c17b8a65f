// Package lifecycle holds what every service's main needs and nothing
// domain-specific: the common configuration (NATS, Redis, logging), the
// connections built from it with LIFO cleanups, and a signal context.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/redisx"
	"github.com/feedloop/feedloop/pkg/telemetry"
)

// Common is the configuration every service shares, from the environment.
type Common struct {
	NATSURL         string        `env:"NATS_URL" envDefault:"nats://127.0.0.1:4222"`
	RedisURL        string        `env:"REDIS_URL" envDefault:"redis://127.0.0.1:6379/0"`
	StreamReplicas  int           `env:"NATS_STREAM_REPLICAS" envDefault:"1"`
	DuplicateWindow time.Duration `env:"NATS_DUPLICATE_WINDOW" envDefault:"10m"`
	Retention       time.Duration `env:"FEEDBACK_RETENTION" envDefault:"0s"`
	LogLevel        string        `env:"LOG_LEVEL" envDefault:"info"`
	// MetricsAddr serves GET /metrics for Prometheus; empty serves nothing
	// (a Config built in Go, as cmd/feedloop does, leaves it so).
	MetricsAddr string `env:"METRICS_ADDR" envDefault:":9464"`
}

// Validate checks c and names the variable at fault.
func (c Common) Validate() error {
	var errs []error
	if !strings.HasPrefix(c.NATSURL, "nats://") && !strings.HasPrefix(c.NATSURL, "tls://") {
		errs = append(errs, fmt.Errorf("NATS_URL: must start with nats:// or tls://, got %q", c.NATSURL))
	}
	if !strings.HasPrefix(c.RedisURL, "redis://") && !strings.HasPrefix(c.RedisURL, "rediss://") {
		errs = append(errs, fmt.Errorf("REDIS_URL: must start with redis:// or rediss://, got %q", c.RedisURL))
	}
	if c.StreamReplicas != 1 && c.StreamReplicas != 3 && c.StreamReplicas != 5 {
		errs = append(errs, fmt.Errorf("NATS_STREAM_REPLICAS: must be 1, 3 or 5, got %d", c.StreamReplicas))
	}
	if c.DuplicateWindow < time.Second {
		errs = append(errs, fmt.Errorf("NATS_DUPLICATE_WINDOW: must be at least 1s, got %s", c.DuplicateWindow))
	}
	if c.Retention < 0 {
		errs = append(errs, fmt.Errorf("FEEDBACK_RETENTION: must not be negative, got %s", c.Retention))
	}
	if _, err := ParseLevel(c.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("LOG_LEVEL: %w", err))
	}
	if c.MetricsAddr != "" {
		if err := CheckAddr(c.MetricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("METRICS_ADDR: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Streams returns the stream sizing of c.
func (c Common) Streams() bus.StreamsConfig {
	return bus.StreamsConfig{Replicas: c.StreamReplicas, DuplicateWindow: c.DuplicateWindow, MaxAge: c.Retention}
}

// LoadEnv parses the environment into T (a struct with env tags) and
// returns a clear error naming every bad variable.
func LoadEnv[T any]() (T, error) {
	cfg, err := env.ParseAs[T]()
	if err == nil {
		return cfg, nil
	}
	// env names the Go field; people set variables, so name those.
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return cfg, fmt.Errorf("config: %w", err)
	}
	keys := envKeys(reflect.TypeOf(cfg))
	errs := make([]error, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) && keys[pe.Name] != "" {
			e = fmt.Errorf("%s: %w", keys[pe.Name], pe.Err)
		}
		errs = append(errs, e)
	}
	return cfg, fmt.Errorf("config: %w", errors.Join(errs...))
}

// envKeys maps struct field names to their env variable, through embedded
// and nested structs.
func envKeys(t reflect.Type) map[string]string {
	keys := map[string]string{}
	if t.Kind() != reflect.Struct {
		return keys
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if k, _, _ := strings.Cut(f.Tag.Get("env"), ","); k != "" {
			keys[f.Name] = k
		} else if f.Type.Kind() == reflect.Struct {
			for n, k := range envKeys(f.Type) {
				keys[n] = k
			}
		}
	}
	return keys
}

// Load parses the environment into T and validates it: the one way a
// service's main reads its configuration.
func Load[T interface{ Validate() error }]() (T, error) {
	cfg, err := LoadEnv[T]()
	if err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// CheckAddr checks a listen address: host:port, host may be empty, port 0
// picks a free port.
func CheckAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || strings.ContainsAny(host, " /\t") {
		return fmt.Errorf("must be host:port (host may be empty, port 0 picks a free one), got %q", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("port must be a number from 0 to 65535, got %q", addr)
	}
	return nil
}

// ParseLevel parses debug, info, warn or error.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("must be debug, info, warn or error, got %q", s)
	}
	return l, nil
}

// Infra is the connections a service runs on.
type Infra struct {
	Bus   *bus.Bus
	Redis *redis.Client
	Log   *slog.Logger
	// MetricsAddr is where Connect serves /metrics, port chosen; empty when
	// it serves none.
	MetricsAddr string
}

// Cleanups run in reverse order of registration, like defers.
type Cleanups []func()

// Add registers f.
func (c *Cleanups) Add(f func()) { *c = append(*c, f) }

// Run runs every cleanup, last registered first.
func (c *Cleanups) Run() {
	for i := len(*c) - 1; i >= 0; i-- {
		(*c)[i]()
	}
	*c = nil
}

// Connect sets up telemetry and logging for service, serves its metrics on
// c.MetricsAddr, connects NATS (and ensures the streams) and Redis. The
// returned cleanup closes them in reverse order; it is valid even when
// Connect fails.
func Connect(ctx context.Context, service string, c Common) (*Infra, func(), error) {
	var cleanups Cleanups
	level, _ := ParseLevel(c.LogLevel)
	log := telemetry.Logger(service, level)
	shutdown, err := telemetry.Setup(ctx, service)
	if err != nil {
		return nil, cleanups.Run, err
	}
	cleanups.Add(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = shutdown(sctx)
	})
	var metricsAddr string
	if c.MetricsAddr != "" {
		ms, err := telemetry.ServeMetrics(c.MetricsAddr, log)
		if err != nil {
			return nil, cleanups.Run, fmt.Errorf("METRICS_ADDR: %w", err)
		}
		cleanups.Add(func() { _ = ms.Close() })
		metricsAddr = ms.Addr()
		log.InfoContext(ctx, "metrics served", "addr", metricsAddr, "path", telemetry.MetricsPath)
	}
	nc, err := bus.Connect(c.NATSURL, service)
	if err != nil {
		return nil, cleanups.Run, err
	}
	cleanups.Add(func() { _ = nc.Drain() })
	b, err := bus.New(nc, bus.WithLogger(log))
	if err != nil {
		return nil, cleanups.Run, err
	}
	if err := b.EnsureStreams(ctx, c.Streams()); err != nil {
		return nil, cleanups.Run, err
	}
	rdb, err := redisx.Connect(ctx, c.RedisURL)
	if err != nil {
		return nil, cleanups.Run, err
	}
	cleanups.Add(func() { _ = rdb.Close() })
	cleanups.Add(ObserveRedis(otel.GetMeterProvider(), rdb))
	return &Infra{Bus: b, Redis: rdb, Log: log, MetricsAddr: metricsAddr}, cleanups.Run, nil
}

// SignalContext is cancelled on SIGINT or SIGTERM.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
