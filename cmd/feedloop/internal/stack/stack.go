// Package stack assembles the whole of feedloop in one process: an embedded
// nats-server, Redis (a given one or an in-process stand-in), and the four
// services on one bus. `feedloop dev` and the end-to-end tests run it.
package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"

	"github.com/alicebob/miniredis/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"golang.org/x/sync/errgroup"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/pkg/natsembed"
	"github.com/feedloop/feedloop/pkg/redisx"
	"github.com/feedloop/feedloop/pkg/telemetry"
	"github.com/feedloop/feedloop/services/classifier"
	"github.com/feedloop/feedloop/services/intake"
	"github.com/feedloop/feedloop/services/notifier"
	"github.com/feedloop/feedloop/services/router"
)

// Config is everything the stack runs with.
type Config struct {
	// DataDir holds JetStream's files.
	DataDir string
	// NATSPort is the embedded server's port; 0 picks a free one.
	NATSPort int
	// NATSSyncAlways runs JetStream with sync_interval: always.
	NATSSyncAlways bool
	// RedisURL is an external Redis; empty starts an in-process one, which
	// is enough because Redis only holds state rebuildable from the stream.
	RedisURL string
	// Streams sizes the streams.
	Streams bus.StreamsConfig
	// MetricsAddr serves GET /metrics for the whole process (every service's
	// series, told apart by their names and consumer labels); empty serves
	// none. Port 0 picks a free port, see Stack.MetricsAddr.
	MetricsAddr string

	Intake     intake.Config
	Classifier classifier.Config
	Router     router.Config
	Notifier   notifier.Config

	Log *slog.Logger
}

// DevConfig returns a Config on free loopback ports using the example rules,
// routes and templates in examples (deploy/examples).
func DevConfig(examples, dataDir string) Config {
	cls := classifier.DefaultConfig()
	cls.RulesFile = filepath.Join(examples, "rules.yaml")
	return Config{
		DataDir:    dataDir,
		Intake:     intake.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"},
		Classifier: cls,
		Router:     router.Config{RoutesFile: filepath.Join(examples, "routes.yaml"), GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"},
		Notifier:   notifier.Config{TemplatesDir: filepath.Join(examples, "templates")},
		Log:        slog.Default(),
	}
}

// Stack is a started feedloop.
type Stack struct {
	NATS       *server.Server
	Bus        *bus.Bus
	Redis      *redis.Client
	RedisURL   string
	StatusURL  string // base of the links to the customers' status pages
	Intake     *intake.Service
	Classifier *classifier.Service
	Router     *router.Service
	Notifier   *notifier.Service

	metricsAddr string
	cleanups    lifecycle.Cleanups
}

// MetricsAddr is where /metrics is served, port chosen; empty when not.
func (s *Stack) MetricsAddr() string { return s.metricsAddr }

// Start starts NATS and Redis and builds the services; Run runs them.
// On error everything started so far is stopped.
func Start(ctx context.Context, cfg Config) (_ *Stack, err error) {
	s := &Stack{}
	defer func() {
		if err != nil {
			s.cleanups.Run()
		}
	}()
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	s.NATS, err = natsembed.Start(natsembed.Options{Port: cfg.NATSPort, StoreDir: cfg.DataDir, SyncAlways: cfg.NATSSyncAlways})
	if err != nil {
		return nil, err
	}
	s.cleanups.Add(func() { s.NATS.Shutdown(); s.NATS.WaitForShutdown() })

	nc, err := bus.Connect(s.NATS.ClientURL(), "feedloop-dev")
	if err != nil {
		return nil, err
	}
	s.cleanups.Add(func() { _ = nc.Drain() })
	if s.Bus, err = bus.New(nc, bus.WithLogger(cfg.Log)); err != nil {
		return nil, err
	}
	if err := s.Bus.EnsureStreams(ctx, cfg.Streams); err != nil {
		return nil, err
	}

	s.RedisURL = cfg.RedisURL
	if s.RedisURL == "" {
		mr, err := miniredis.Run()
		if err != nil {
			return nil, fmt.Errorf("stack: in-process redis: %w", err)
		}
		s.cleanups.Add(mr.Close)
		s.RedisURL = "redis://" + mr.Addr() + "/0"
	}
	if s.Redis, err = redisx.Connect(ctx, s.RedisURL); err != nil {
		return nil, err
	}
	s.cleanups.Add(func() { _ = s.Redis.Close() })
	s.cleanups.Add(lifecycle.ObserveRedis(otel.GetMeterProvider(), s.Redis))
	if cfg.MetricsAddr != "" {
		ms, err := telemetry.ServeMetrics(cfg.MetricsAddr, cfg.Log)
		if err != nil {
			return nil, fmt.Errorf("stack: %w", err)
		}
		s.cleanups.Add(func() { _ = ms.Close() })
		s.metricsAddr = ms.Addr()
	}

	// The services share this process's connections; their Common config
	// describes them, so it validates like a standalone deployment's.
	common := lifecycle.Common{
		NATSURL:         s.NATS.ClientURL(),
		RedisURL:        s.RedisURL,
		StreamReplicas:  1,
		DuplicateWindow: bus.DefaultDuplicateWindow,
		LogLevel:        "info",
	}
	if cfg.Streams.DuplicateWindow > 0 {
		common.DuplicateWindow = cfg.Streams.DuplicateWindow
	}
	cfg.Intake.Common, cfg.Classifier.Common, cfg.Router.Common, cfg.Notifier.Common = common, common, common, common
	with := func(name string) *lifecycle.Infra {
		return &lifecycle.Infra{Bus: s.Bus, Redis: s.Redis, Log: cfg.Log.With("service", name)}
	}
	if s.Intake, err = intake.New(cfg.Intake, with("intake")); err != nil {
		return nil, fmt.Errorf("intake: %w", err)
	}
	if s.Classifier, err = classifier.New(cfg.Classifier, with("classifier")); err != nil {
		return nil, fmt.Errorf("classifier: %w", err)
	}
	if s.Router, err = router.New(cfg.Router, with("router")); err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	if cfg.Notifier.StatusURL == "" {
		// Customer messages link to the status pages this router serves.
		cfg.Notifier.StatusURL = StatusURL(s.Router.HTTPAddr())
	}
	s.StatusURL = cfg.Notifier.StatusURL
	if s.Notifier, err = notifier.New(cfg.Notifier, with("notifier")); err != nil {
		return nil, fmt.Errorf("notifier: %w", err)
	}
	return s, nil
}

// StatusURL is the base of the status page links served on the router's
// HTTP address addr; an unspecified host (":7004") is reached on loopback.
func StatusURL(addr string) string {
	return "http://" + Reachable(addr) + "/status"
}

// Reachable turns a listen address into one a client on this machine can
// dial: an unspecified host (0.0.0.0, ::, empty) becomes loopback.
func Reachable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// Run runs the four services until ctx is cancelled or one fails, then
// stops everything (services drain first, then NATS and Redis close).
func (s *Stack) Run(ctx context.Context) error {
	defer s.cleanups.Run()
	g, gctx := errgroup.WithContext(ctx)
	for name, run := range map[string]func(context.Context) error{
		"intake":     s.Intake.Run,
		"classifier": s.Classifier.Run,
		"router":     s.Router.Run,
		"notifier":   s.Notifier.Run,
	} {
		g.Go(func() error {
			if err := run(gctx); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		})
	}
	err := g.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
