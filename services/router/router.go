// Package router is the router service: it consumes feedback.classified,
// runs each item through the routing tree (package routing) and publishes
// one feedback.routed.<team> event per team, with the route's priority and
// SLA deadlines. The routes file is reloaded when it changes.
//
// The lifecycle of assignments, the team API and the SLA timers come later;
// the gRPC listener is already opened (serving health only) so its address
// is fixed from the start.
package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/feedloop/feedloop/pkg/grpcserver"
	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/services/router/internal/consumer"
	"github.com/feedloop/feedloop/services/router/internal/routesfile"
	"github.com/feedloop/feedloop/services/router/routing"
)

// Defaults applied by New to zero fields of a Config built in Go.
const (
	DefaultConcurrency    = 4
	DefaultReloadInterval = 5 * time.Second
)

// Config is the router's configuration.
type Config struct {
	lifecycle.Common
	// RoutesFile is the routing tree (see routing.Parse and
	// deploy/examples/routes.yaml).
	RoutesFile string `env:"ROUTER_ROUTES_FILE" envDefault:"/etc/feedloop/routes.yaml"`
	// GRPCAddr is where gRPC listens (health now, the team API later);
	// port 0 picks a free port, see Service.GRPCAddr.
	GRPCAddr string `env:"ROUTER_GRPC_ADDR" envDefault:":7003"`
	// Concurrency is how many classified events one replica routes at once.
	Concurrency int `env:"ROUTER_CONCURRENCY" envDefault:"4"`
	// ReloadInterval is how often the routes file is checked for changes.
	ReloadInterval time.Duration `env:"ROUTER_RELOAD_INTERVAL" envDefault:"5s"`
}

// LoadConfig reads the configuration from the environment and validates it.
func LoadConfig() (Config, error) { return lifecycle.Load[Config]() }

// Validate checks every field and names the variable at fault.
func (c Config) Validate() error {
	return errors.Join(c.Common.Validate(), c.validate())
}

// validate checks the router's own fields.
func (c Config) validate() error {
	var errs []error
	if c.RoutesFile == "" {
		errs = append(errs, errors.New("ROUTER_ROUTES_FILE: must not be empty"))
	}
	if err := lifecycle.CheckAddr(c.GRPCAddr); err != nil {
		errs = append(errs, fmt.Errorf("ROUTER_GRPC_ADDR: %w", err))
	}
	if c.Concurrency < 1 || c.Concurrency > 1024 {
		errs = append(errs, fmt.Errorf("ROUTER_CONCURRENCY: must be between 1 and 1024, got %d", c.Concurrency))
	}
	if c.ReloadInterval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("ROUTER_RELOAD_INTERVAL: must be at least 100ms, got %s", c.ReloadInterval))
	}
	return errors.Join(errs...)
}

// Service is a running router.
type Service struct {
	cfg    Config
	infra  *lifecycle.Infra
	log    *slog.Logger
	routes *routesfile.Watcher
	grpc   *grpcserver.Server
	lis    net.Listener
}

// New loads the routes file and opens the gRPC listener. Zero Concurrency
// and ReloadInterval take their defaults, so a Config built in Go needs only
// RoutesFile and GRPCAddr.
func New(cfg Config, infra *lifecycle.Infra) (*Service, error) {
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.ReloadInterval == 0 {
		cfg.ReloadInterval = DefaultReloadInterval
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	if infra == nil || infra.Bus == nil {
		return nil, errors.New("router: infra.Bus is required")
	}
	log := infra.Log
	if log == nil {
		log = slog.Default()
	}
	routes, err := routesfile.Open(cfg.RoutesFile, log)
	if err != nil {
		return nil, fmt.Errorf("router: ROUTER_ROUTES_FILE: %w", err)
	}
	lis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return nil, fmt.Errorf("router: ROUTER_GRPC_ADDR: listen %s: %w", cfg.GRPCAddr, err)
	}
	log.Info("router ready", "routes_file", cfg.RoutesFile, "default_team", routes.Tree().DefaultTeam(), "teams", routes.Tree().Teams(), "grpc_addr", lis.Addr().String())
	return &Service{cfg: cfg, infra: infra, log: log, routes: routes, grpc: grpcserver.New(log), lis: lis}, nil
}

// GRPCAddr is the address gRPC listens on, with the port chosen.
func (s *Service) GRPCAddr() string { return s.lis.Addr().String() }

// Tree is the routing tree in force.
func (s *Service) Tree() *routing.Tree { return s.routes.Tree() }

// Run routes classified events, reloads the routes file and serves gRPC
// until ctx is cancelled, then drains the consumer, stops gRPC gracefully
// and returns nil. It returns an error if a part fails on its own.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	// fail records a failure that did not come from shutting down, and
	// stops the other parts.
	fail := func(err error) {
		if err != nil && ctx.Err() == nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
			cancel()
		}
	}
	wg.Go(func() { s.routes.Run(ctx, s.cfg.ReloadInterval) })
	wg.Go(func() { fail(s.grpc.Serve(ctx, s.lis)) })
	wg.Go(func() {
		h := consumer.Handler(s.infra.Bus, s.routes.Tree, s.log)
		fail(s.infra.Bus.Consume(ctx, consumer.Config(s.cfg.Concurrency), h))
	})
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("router: %w", err)
	}
	return nil
}
