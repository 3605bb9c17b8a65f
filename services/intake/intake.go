// Package intake is the feedloop service that takes feedback from company
// systems over gRPC, HTTP and NATS, validates it, gives it its id and
// publishes feedback.received once per (source, external_id).
package intake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/feedloop/feedloop/pkg/apikey"
	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/filewatch"
	"github.com/feedloop/feedloop/pkg/grpcserver"
	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/pkg/rebuild"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/intake/access"
	"github.com/feedloop/feedloop/services/intake/internal/app"
	"github.com/feedloop/feedloop/services/intake/internal/auth"
	"github.com/feedloop/feedloop/services/intake/internal/grpcport"
	"github.com/feedloop/feedloop/services/intake/internal/httpport"
	"github.com/feedloop/feedloop/services/intake/internal/idem"
	"github.com/feedloop/feedloop/services/intake/internal/natsport"
	"github.com/feedloop/feedloop/services/intake/internal/ratelimit"
)

// Config is intake's configuration: from the environment (LoadConfig) or
// built in Go from DefaultConfig; an address with port 0 picks a free port
// (see Service.GRPCAddr, Service.HTTPAddr).
type Config struct {
	lifecycle.Common

	// GRPCAddr is where IntakeService listens.
	GRPCAddr string `env:"INTAKE_GRPC_ADDR" envDefault:":7001"`
	// HTTPAddr is where POST /v1/feedback and GET /healthz listen.
	HTTPAddr string `env:"INTAKE_HTTP_ADDR" envDefault:":7002"`
	// IdempotencyTTL is how long a (source, external_id) is remembered.
	IdempotencyTTL time.Duration `env:"INTAKE_IDEMPOTENCY_TTL" envDefault:"720h"`
	// MaxBodyBytes bounds an HTTP request body.
	MaxBodyBytes int64 `env:"INTAKE_MAX_BODY_BYTES" envDefault:"65536"`
	// Concurrency is how many NATS submissions one replica handles at once.
	Concurrency int `env:"INTAKE_NATS_CONCURRENCY" envDefault:"4"`
	// ShutdownTimeout bounds the graceful HTTP shutdown.
	ShutdownTimeout time.Duration `env:"INTAKE_SHUTDOWN_TIMEOUT" envDefault:"10s"`

	// APIKeysFile lists the keys that may submit over gRPC and HTTP, by
	// SHA-256 and source, and per-source rate limits (access.Parse); it is
	// reloaded when it changes. Empty: submissions are not authenticated
	// (feedloop dev, tests), which New logs loudly.
	APIKeysFile string `env:"INTAKE_API_KEYS_FILE"`
	// ReloadInterval is how often APIKeysFile is checked for changes.
	ReloadInterval time.Duration `env:"INTAKE_RELOAD_INTERVAL" envDefault:"5s"`
	// RateLimit is every source's rate limit over gRPC and HTTP unless the
	// keys file sets its own. The zero value is no limit.
	RateLimit access.Rate `env:"INTAKE_RATE_LIMIT" envDefault:"100/s"`
	// RateBurst is how many submissions a source may make at once; 0 is one
	// period's worth of RateLimit.
	RateBurst int `env:"INTAKE_RATE_BURST" envDefault:"0"`
	// GRPCMaxRecvBytes bounds a gRPC request message; a larger one is
	// refused with ResourceExhausted before it is decoded.
	GRPCMaxRecvBytes int `env:"INTAKE_GRPC_MAX_RECV_BYTES" envDefault:"4194304"`
}

// DefaultConfig is the configuration of an empty environment: the env
// tags' defaults, the one source of them.
func DefaultConfig() Config { return lifecycle.MustDefaults[Config]() }

// LoadConfig reads the environment over those defaults and validates it.
func LoadConfig() (Config, error) { return lifecycle.Load[Config]() }

// Validate checks c, naming the variable at fault in each message.
func (c Config) Validate() error {
	errs := []error{c.Common.Validate(), c.validateOwn()}
	if c.IdempotencyTTL > 0 && c.IdempotencyTTL < c.DuplicateWindow {
		errs = append(errs, fmt.Errorf("INTAKE_IDEMPOTENCY_TTL: must be at least NATS_DUPLICATE_WINDOW (%s), got %s", c.DuplicateWindow, c.IdempotencyTTL))
	}
	return errors.Join(errs...)
}

// validateOwn checks the intake fields.
func (c Config) validateOwn() error {
	var errs []error
	if err := lifecycle.CheckAddr(c.GRPCAddr); err != nil {
		errs = append(errs, fmt.Errorf("INTAKE_GRPC_ADDR: %w", err))
	}
	if err := lifecycle.CheckAddr(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("INTAKE_HTTP_ADDR: %w", err))
	}
	if c.IdempotencyTTL < time.Minute {
		errs = append(errs, fmt.Errorf("INTAKE_IDEMPOTENCY_TTL: must be at least 1m, got %s", c.IdempotencyTTL))
	}
	if c.MaxBodyBytes < 1<<10 || c.MaxBodyBytes > 16<<20 {
		errs = append(errs, fmt.Errorf("INTAKE_MAX_BODY_BYTES: must be between 1024 and 16777216, got %d", c.MaxBodyBytes))
	}
	if c.Concurrency < 1 || c.Concurrency > 256 {
		errs = append(errs, fmt.Errorf("INTAKE_NATS_CONCURRENCY: must be between 1 and 256, got %d", c.Concurrency))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("INTAKE_SHUTDOWN_TIMEOUT: must be positive, got %s", c.ShutdownTimeout))
	}
	if c.ReloadInterval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("INTAKE_RELOAD_INTERVAL: must be at least 100ms, got %s", c.ReloadInterval))
	}
	if c.RateBurst < 0 || c.RateBurst > 1_000_000 {
		errs = append(errs, fmt.Errorf("INTAKE_RATE_BURST: must be between 0 and 1000000, got %d", c.RateBurst))
	}
	if c.RateLimit.N > 1_000_000 {
		errs = append(errs, fmt.Errorf("INTAKE_RATE_LIMIT: must be at most 1000000 per period, got %s", c.RateLimit))
	}
	if c.GRPCMaxRecvBytes < 1<<10 || c.GRPCMaxRecvBytes > 64<<20 {
		errs = append(errs, fmt.Errorf("INTAKE_GRPC_MAX_RECV_BYTES: must be between 1024 and 67108864, got %d", c.GRPCMaxRecvBytes))
	}
	return errors.Join(errs...)
}

// Service is a running intake: its listeners are open from New on.
type Service struct {
	cfg      Config
	infra    *lifecycle.Infra
	log      *slog.Logger
	acc      *app.Acceptor
	grpc     *grpcserver.Server
	grpcLis  net.Listener
	http     *http.Server
	httpLis  net.Listener
	consumer func(ctx context.Context) error
	// keys is the watched keys file; nil when submissions are not
	// authenticated.
	keys *filewatch.Watcher[*access.File]
	// idemKeys are the idempotency keys, rebuilt from the stream by gate
	// when Redis loses them.
	idemKeys *idem.Store
	gate     *rebuild.Gate
}

// RebuildPrefix starts the keys of the idempotency keys' rebuild gate
// (<prefix>ready, <prefix>lock; see package rebuild).
const RebuildPrefix = "intake:rebuild:"

// New validates cfg (start one in Go from DefaultConfig), builds intake on
// infra and opens its listeners, so GRPCAddr and HTTPAddr are known before
// Run.
func New(cfg Config, infra *lifecycle.Infra) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("intake: config: %w", err)
	}
	if infra == nil || infra.Bus == nil || infra.Redis == nil {
		return nil, errors.New("intake: infra must have a Bus and a Redis client")
	}
	log := infra.Log
	if log == nil {
		log = slog.Default()
	}
	s := &Service{cfg: cfg, infra: infra, log: log}
	s.idemKeys = idem.New(infra.Redis, cfg.IdempotencyTTL)
	gate, gerr := rebuild.New(infra.Redis, rebuild.Config{Name: "intake idempotency keys", Prefix: RebuildPrefix, Log: log, TracerProvider: infra.Tracing()})
	if gerr != nil {
		return nil, fmt.Errorf("intake: %w", gerr)
	}
	s.gate = gate
	ictx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := gate.Init(ictx, infra.Bus.JetStream(), bus.StreamFeedback, s.rebuildKeys); err != nil {
		log.Warn("intake: idempotency keys not initialised; the rebuild watcher tries again", "err", err)
	}
	cancel()
	if err := s.openKeys(); err != nil {
		return nil, err
	}
	metrics := app.NewMetrics(otel.GetMeterProvider())
	defaultLimit := access.Limit{Rate: cfg.RateLimit, Burst: cfg.RateBurst}
	limiter := ratelimit.New(infra.Redis, func(source string) access.Limit { return s.access().Limit(source, defaultLimit) },
		ratelimit.WithBatcher(s.idemKeys.Batcher()))
	s.acc = app.New(s.idemKeys, infra.Bus, log, time.Now,
		app.WithMetrics(metrics), app.WithLimiter(limiter))

	// grpcserver refuses a request that does not decode as InvalidArgument
	// before these interceptors run (auth).
	grpcOpts := []grpc.ServerOption{grpc.MaxRecvMsgSize(cfg.GRPCMaxRecvBytes)}
	var guard func(http.Handler) http.Handler
	if s.keys != nil {
		a := auth.New(func() *apikey.Set { return s.access().Keys }, time.Now, metrics.Unauthenticated)
		unary, stream := grpcport.AuthInterceptors("/"+feedloopv1.IntakeService_ServiceDesc.ServiceName+"/", a)
		grpcOpts = append(grpcOpts, grpc.ChainUnaryInterceptor(unary), grpc.ChainStreamInterceptor(stream))
		guard = func(h http.Handler) http.Handler { return httpport.AuthMiddleware(a, h) }
	}
	s.grpc = grpcserver.NewTraced(log, infra.Tracing(), grpcOpts...)
	feedloopv1.RegisterIntakeServiceServer(s.grpc, grpcport.New(s.acc))

	handler := httpport.Handler(s.acc, httpport.Options{
		MaxBodyBytes:   cfg.MaxBodyBytes,
		Log:            log,
		Guard:          guard,
		TracerProvider: infra.Tracing(),
		Checks: map[string]httpport.Check{
			"nats": func(context.Context) error {
				if st := infra.Bus.Conn().Status(); st != nats.CONNECTED {
					return fmt.Errorf("nats: %s", st)
				}
				return nil
			},
			"redis": func(ctx context.Context) error { return infra.Redis.Ping(ctx).Err() },
		},
	})
	s.http = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	submissions := natsport.Handler(s.acc, log)
	s.consumer = func(ctx context.Context) error {
		return infra.Bus.Consume(ctx, natsport.ConsumerConfig(cfg.Concurrency), submissions)
	}

	var err error
	if s.grpcLis, err = cfg.Listen(cfg.GRPCAddr); err != nil {
		return nil, fmt.Errorf("intake: listen gRPC on %s (INTAKE_GRPC_ADDR): %w", cfg.GRPCAddr, err)
	}
	if s.httpLis, err = cfg.Listen(cfg.HTTPAddr); err != nil {
		_ = s.grpcLis.Close()
		return nil, fmt.Errorf("intake: listen HTTP on %s (INTAKE_HTTP_ADDR): %w", cfg.HTTPAddr, err)
	}
	return s, nil
}

// openKeys loads the keys file, if any. Without one, anyone who reaches the
// ports may submit for any source: fine on a laptop, never in production.
func (s *Service) openKeys() error {
	if s.cfg.APIKeysFile == "" {
		s.log.Warn("intake: INTAKE_API_KEYS_FILE is not set: gRPC and HTTP submissions are NOT authenticated, " +
			"anyone who reaches intake may submit for any source; set it in production (see deploy/examples/intake-keys.yaml)")
		return nil
	}
	w, err := filewatch.Open(s.cfg.APIKeysFile, "intake API keys", access.Parse, s.log)
	if err != nil {
		return fmt.Errorf("intake: INTAKE_API_KEYS_FILE: %w", err)
	}
	if w.Get().Keys.Len() == 0 {
		s.log.Warn("intake: INTAKE_API_KEYS_FILE lists no keys: every gRPC and HTTP submission will be refused", "path", s.cfg.APIKeysFile)
	}
	s.keys = w
	return nil
}

// access returns the keys file in force; nil without one.
func (s *Service) access() *access.File {
	if s.keys == nil {
		return nil
	}
	return s.keys.Get()
}

// GRPCAddr is the address the gRPC server is bound to.
func (s *Service) GRPCAddr() string { return s.grpcLis.Addr().String() }

// HTTPAddr is the address the HTTP server is bound to.
func (s *Service) HTTPAddr() string { return s.httpLis.Addr().String() }

// Run serves gRPC, HTTP and the NATS consumer until ctx is cancelled, then
// stops them gracefully and returns nil. If one of them fails, the others
// are stopped and the error is returned.
func (s *Service) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	s.grpc.Health.SetServingStatus(feedloopv1.IntakeService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	g.Go(func() error { return s.grpc.Serve(gctx, s.grpcLis) })
	g.Go(func() error {
		if err := s.http.Serve(s.httpLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("intake: http serve: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), s.cfg.ShutdownTimeout)
		defer cancel()
		if err := s.http.Shutdown(sctx); err != nil {
			return fmt.Errorf("intake: http shutdown: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		// Cancelled while the consumer was being set up is a shutdown,
		// not a failure.
		if err := s.consumer(gctx); err != nil && ctx.Err() == nil {
			return fmt.Errorf("intake: nats consumer: %w", err)
		}
		return nil
	})
	if s.keys != nil {
		g.Go(func() error { s.keys.Run(gctx, s.cfg.ReloadInterval); return nil })
	}
	g.Go(func() error {
		// Rebuilds the idempotency keys when Redis lost them. Submissions
		// are not held meanwhile: a key not found yet is published, and
		// JetStream's duplicate window answers resubmissions within it.
		return s.gate.Watch(gctx, s.rebuildKeys)
	})
	s.log.InfoContext(ctx, "intake: running", "grpc", s.GRPCAddr(), "http", s.HTTPAddr())
	err := g.Wait()
	s.log.InfoContext(ctx, "intake: stopped", "err", err)
	return err
}

// rebuildKeys restores the idempotency keys from the stream (see
// idem.Store.Rebuild).
func (s *Service) rebuildKeys(ctx context.Context, fence rebuild.Guard) error {
	n, err := s.idemKeys.Rebuild(ctx, s.infra.Bus.JetStream(), bus.StreamFeedback, fence, time.Now())
	s.log.InfoContext(ctx, "intake: idempotency keys replayed from the stream", "received_events", n)
	return err
}
