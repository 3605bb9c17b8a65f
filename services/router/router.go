// Package router is the router service. It owns what happens to feedback
// once classified:
//
//   - routing: each feedback.classified event goes through the routing tree
//     (package routing) and becomes one feedback.routed.<team> event per team,
//     with the route's priority, SLA deadlines and escalation chain; the
//     routes file is reloaded when it changes;
//   - the lifecycle: the team API (gRPC TeamService, package grpcport) lets
//     teams acknowledge, plan, resolve, decline, reroute and comment, each
//     action an event on feedback.updated.<team>; answers to an item
//     (in_reply_to) are attributed to its teams and may reopen it;
//   - the read model in Redis (package readmodel), kept by a projector that
//     folds every feedback.> event, rebuildable from the stream;
//   - SLA timers (package sla): warnings and escalation chains on
//     feedback.escalated.<team>;
//   - the customer's status page and survey (package httpport) over HTTP.
//
// The use cases are in internal/app and one port per transport calls them
// (natsport, grpcport, httpport); this package wires them together.
package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/filewatch"
	"github.com/feedloop/feedloop/pkg/grpcserver"
	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/pkg/rebuild"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router/internal/app"
	"github.com/feedloop/feedloop/services/router/internal/grpcport"
	"github.com/feedloop/feedloop/services/router/internal/httpport"
	"github.com/feedloop/feedloop/services/router/internal/itemlock"
	"github.com/feedloop/feedloop/services/router/internal/loopmetrics"
	"github.com/feedloop/feedloop/services/router/internal/natsport"
	"github.com/feedloop/feedloop/services/router/internal/readmodel"
	"github.com/feedloop/feedloop/services/router/internal/sla"
	"github.com/feedloop/feedloop/services/router/internal/teamauth"
	"github.com/feedloop/feedloop/services/router/routing"
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"google.golang.org/grpc"
)

// ProjectorDurable is the consumer that folds every event into the read
// model and the SLA index.
const ProjectorDurable = bus.ConsumerRouterProjector

// ProjectorWorkers is how many items the projector consumer folds at once
// (each item's events in order on one worker); they meet in the
// projector's batches (app.ProjectorBatch).
const ProjectorWorkers = 64

// RebuildPrefix starts the keys of the read model's rebuild gate
// (<prefix>ready, <prefix>lock; see package rebuild).
const RebuildPrefix = "router:rebuild:"

// consumerAckWait is the AckWait of the router's consumers (the bus
// default): a message paused for a rebuild is kept alive every third of it.
const consumerAckWait = 30 * time.Second

// Config is the router's configuration: from the environment (LoadConfig)
// or built in Go from DefaultConfig.
type Config struct {
	lifecycle.Common
	// RoutesFile is the routing tree (see routing.Parse and
	// deploy/examples/routes.yaml).
	RoutesFile string `env:"ROUTER_ROUTES_FILE" envDefault:"/etc/feedloop/routes.yaml"`
	// GRPCAddr is where gRPC listens (TeamService, health, reflection);
	// port 0 picks a free port, see Service.GRPCAddr.
	GRPCAddr string `env:"ROUTER_GRPC_ADDR" envDefault:":7003"`
	// HTTPAddr serves the customers' status pages and survey.
	HTTPAddr string `env:"ROUTER_HTTP_ADDR" envDefault:":7004"`
	// TeamTokensFile lists the team API tokens as SHA-256 hashes (see
	// deploy/examples/team-tokens.yaml); reloaded when it changes. Empty:
	// every team API call is refused.
	TeamTokensFile string `env:"ROUTER_TEAM_TOKENS_FILE"`
	// SLAWarnAt is the fraction of an SLA window after which the team is
	// warned; 0 turns warnings off.
	SLAWarnAt float64 `env:"ROUTER_SLA_WARN_AT" envDefault:"0.8"`
	// SLATick is how often due SLA timers are looked for.
	SLATick time.Duration `env:"ROUTER_SLA_TICK" envDefault:"1s"`
	// Concurrency is how many classified events one replica routes at once.
	Concurrency int `env:"ROUTER_CONCURRENCY" envDefault:"16"`
	// ReloadInterval is how often the routes file is checked for changes.
	ReloadInterval time.Duration `env:"ROUTER_RELOAD_INTERVAL" envDefault:"5s"`
}

// DefaultConfig is the configuration of an empty environment: the env
// tags' defaults, the one source of them.
func DefaultConfig() Config { return lifecycle.MustDefaults[Config]() }

// LoadConfig reads the environment over those defaults and validates it.
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
	if err := lifecycle.CheckAddr(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("ROUTER_HTTP_ADDR: %w", err))
	}
	if c.SLAWarnAt < 0 || c.SLAWarnAt >= 1 {
		errs = append(errs, fmt.Errorf("ROUTER_SLA_WARN_AT: must be at least 0 and below 1, got %g", c.SLAWarnAt))
	}
	if c.SLATick < 10*time.Millisecond || c.SLATick > time.Minute {
		errs = append(errs, fmt.Errorf("ROUTER_SLA_TICK: must be between 10ms and 1m, got %s", c.SLATick))
	}
	return errors.Join(errs...)
}

// Service is a running router.
type Service struct {
	cfg    Config
	infra  *lifecycle.Infra
	log    *slog.Logger
	routes *filewatch.Watcher[*routing.Tree]
	tokens teamauth.Source
	// runTokens keeps tokens in step with their file.
	runTokens func(context.Context, time.Duration)
	store     *readmodel.Store
	loop      *loopmetrics.Recorder
	sla       *sla.Index
	lock      *itemlock.Locker
	gate      *rebuild.Gate
	grpc      *grpcserver.Server
	lis       net.Listener
	httpLis   net.Listener
	stop      chan struct{}
}

// New validates cfg (start one in Go from DefaultConfig), loads the routes
// and tokens files, connects the read model and opens the listeners.
func New(cfg Config, infra *lifecycle.Infra) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	if infra == nil || infra.Bus == nil {
		return nil, errors.New("router: infra.Bus is required")
	}
	if infra.Redis == nil {
		return nil, errors.New("router: REDIS_URL is required: the read model, SLA timers and locks live in Redis")
	}
	log := infra.Log
	if log == nil {
		log = slog.Default()
	}
	routes, err := filewatch.Open(cfg.RoutesFile, "routes", routing.Parse, log)
	if err != nil {
		return nil, fmt.Errorf("router: ROUTER_ROUTES_FILE: %w", err)
	}
	tokens, runTokens, err := openTokens(cfg.TeamTokensFile, log)
	if err != nil {
		return nil, fmt.Errorf("router: ROUTER_TEAM_TOKENS_FILE: %w", err)
	}
	loop := loopmetrics.New(otel.GetMeterProvider())
	gate, err := newGate(infra, log)
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	// Every read and write of the read model and the SLA index checks the
	// gate's ready key, so nothing is served from, or folded into, a
	// model that Redis lost until it is rebuilt (see Run).
	store, err := readmodel.New(infra.Redis, readmodel.WithLogger(log), readmodel.WithAppliedReading(loop.Applied, loopmetrics.ReadsItem), readmodel.WithGuard(gate.Live()))
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	idx, err := sla.NewIndex(infra.Redis, sla.Config{WarnAt: cfg.SLAWarnAt, Tick: cfg.SLATick, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	idx = idx.WithGuard(gate.Live())
	s := &Service{
		cfg: cfg, infra: infra, log: log, routes: routes, tokens: tokens, runTokens: runTokens, store: store, sla: idx, loop: loop, gate: gate,
		lock: itemlock.New(infra.Redis, "router:lock:", 10*time.Second, 3*time.Second),
		stop: make(chan struct{}),
	}
	unary, stream := teamauth.Interceptors("/"+feedloopv1.TeamService_ServiceDesc.ServiceName+"/", tokens, nil)
	s.grpc = grpcserver.NewTraced(log, infra.Tracing(), grpc.ChainUnaryInterceptor(unary), grpc.ChainStreamInterceptor(stream))
	teams := func() []string { return s.routes.Get().Teams() }
	feedloopv1.RegisterTeamServiceServer(s.grpc, grpcport.New(grpcport.Deps{
		Store:    store,
		NotFound: isNotFound,
		Actions:  &app.Team{Store: store, NotFound: isNotFound, Lock: s.lock, Bus: infra.Bus, Teams: teams, SLA: idx, Log: log, Traces: store},
		Bus:      infra.Bus,
		Teams:    teams,
		Log:      log,
	}, s.stop))
	// On an empty Redis and an empty stream the read model is complete at
	// once: ready before the team API serves. Otherwise Run's watcher
	// rebuilds it.
	if rb, err := s.rebuilder(); err == nil {
		ictx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.gate.Init(ictx, infra.Bus.JetStream(), bus.StreamFeedback, rb); err != nil {
			log.Warn("router: read model not initialised; the rebuild watcher tries again", "err", err)
		}
		cancel()
	}
	if s.lis, err = cfg.Listen(cfg.GRPCAddr); err != nil {
		return nil, fmt.Errorf("router: ROUTER_GRPC_ADDR: listen %s: %w", cfg.GRPCAddr, err)
	}
	if s.httpLis, err = cfg.Listen(cfg.HTTPAddr); err != nil {
		s.lis.Close()
		return nil, fmt.Errorf("router: ROUTER_HTTP_ADDR: listen %s: %w", cfg.HTTPAddr, err)
	}
	log.Info("router ready", "routes_file", cfg.RoutesFile, "default_team", routes.Get().DefaultTeam(), "teams", routes.Get().Teams(),
		"team_tokens", tokens.Get().Len(), "grpc_addr", s.lis.Addr().String(), "http_addr", s.httpLis.Addr().String())
	return s, nil
}

func isNotFound(err error) bool { return errors.Is(err, readmodel.ErrNotFound) }

// GRPCAddr is the address gRPC listens on, with the port chosen.
func (s *Service) GRPCAddr() string { return s.lis.Addr().String() }

// HTTPAddr is the address of the status pages, with the port chosen.
func (s *Service) HTTPAddr() string { return s.httpLis.Addr().String() }

// Tree is the routing tree in force.
func (s *Service) Tree() *routing.Tree { return s.routes.Get() }

// Run routes classified events, projects every event into the read model,
// fires SLA timers, and serves the team API and status pages until ctx is
// cancelled; then drains the consumers, stops the servers gracefully and
// returns nil. It returns an error if a part fails on its own.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	context.AfterFunc(ctx, func() { close(s.stop) })
	defer s.loop.ObserveOpen(func() []string { return s.routes.Get().Teams() }, s.store.OpenCounts)()
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
	wg.Go(func() { s.runTokens(ctx, s.cfg.ReloadInterval) })
	wg.Go(func() { fail(s.grpc.Serve(ctx, s.lis)) })
	wg.Go(func() { fail(s.serveHTTP(ctx)) })
	// The rebuild watcher: at start and whenever the ready key is missing
	// (Redis flushed or lost), one replica rebuilds while the consumers
	// below hold their messages (rebuild.Pause) and the team API answers
	// Unavailable.
	rebuilder, err := s.rebuilder()
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	wg.Go(func() { fail(s.gate.Watch(ctx, rebuilder)) })
	pause := rebuild.Pause(s.gate, s.stop, consumerAckWait)
	// Both consumers fold into the read model through the projector's
	// committer, which outlives ctx until they have drained the messages in
	// hand.
	proj := &app.Projector{
		Bus: s.infra.Bus, Store: s.store, SLA: s.sla, Log: s.log,
		Tracer:  s.infra.Tracing().Tracer("github.com/feedloop/feedloop/services/router"),
		Timeout: consumerAckWait,
	}
	proj.Start()
	var consumers sync.WaitGroup
	consumers.Go(func() {
		ans := &app.Answers{Store: s.store, NotFound: isNotFound, Lock: s.lock, Bus: s.infra.Bus, Log: s.log, Traces: s.store}
		h := natsport.Handler(&app.Routing{Bus: s.infra.Bus, Tree: s.routes.Get, Answers: ans, Applied: proj.ApplyNow, Log: s.log})
		cc := natsport.Config(s.cfg.Concurrency)
		cc.AckWait, cc.Middleware = consumerAckWait, append(cc.Middleware, pause)
		fail(s.infra.Bus.Consume(ctx, cc, h))
	})
	consumers.Go(func() {
		pc := natsport.ProjectorConfig(ProjectorDurable, ProjectorWorkers)
		pc.AckWait, pc.Middleware = consumerAckWait, append(pc.Middleware, pause)
		fail(s.infra.Bus.Consume(ctx, pc, natsport.ProjectorHandler(proj)))
	})
	wg.Go(func() {
		consumers.Wait()
		proj.Close()
	})
	wg.Go(func() {
		sched := sla.NewScheduler(s.sla, s.infra.Bus, sla.Config{WarnAt: s.cfg.SLAWarnAt, Tick: s.cfg.SLATick, Logger: s.log, TracerProvider: s.infra.Tracing()}, time.Now)
		fail(sched.Run(ctx))
	})
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("router: %w", err)
	}
	return nil
}

func (s *Service) serveHTTP(ctx context.Context) error {
	mux := http.NewServeMux()
	status := httpport.New(s.store, isNotFound, &app.Survey{Bus: s.infra.Bus, Traces: s.store}, s.log)
	status.Routes(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	srv := &http.Server{
		Handler:           httpport.Traced(mux, "router.http", otelhttp.WithTracerProvider(s.infra.Tracing())),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	defer stop()
	if err := srv.Serve(s.httpLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http serve: %w", err)
	}
	return nil
}

// newGate is the read model's rebuild gate.
func newGate(infra *lifecycle.Infra, log *slog.Logger) (*rebuild.Gate, error) {
	return rebuild.New(infra.Redis, rebuild.Config{Name: "router read model", Prefix: RebuildPrefix, Log: log, TracerProvider: infra.Tracing()})
}

// rebuilder is the rebuild the gate runs.
func (s *Service) rebuilder() (rebuild.RebuildFunc, error) {
	replay, err := replayer(s.infra, s.cfg.SLAWarnAt, s.log)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, fence rebuild.Guard) error {
		_, err := replay(ctx, fence)
		return err
	}, nil
}

// replayer empties the read model and the SLA index and replays the
// FEEDBACK stream up to its last message into them, every write fenced by
// the rebuild lock, and says how many events it replayed. Its store has no
// applied hook: the closed-loop metrics counted those events when they
// were first applied.
func replayer(infra *lifecycle.Infra, warnAt float64, log *slog.Logger) (func(context.Context, rebuild.Guard) (int, error), error) {
	store, err := readmodel.New(infra.Redis, readmodel.WithLogger(log))
	if err != nil {
		return nil, err
	}
	idx, err := sla.NewIndex(infra.Redis, sla.Config{WarnAt: warnAt, Logger: log})
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, fence rebuild.Guard) (int, error) {
		fidx := idx.WithGuard(fence)
		if err := fidx.Reset(ctx); err != nil {
			return 0, err
		}
		return store.Fenced(fence).Rebuild(ctx, infra.Bus.JetStream(), bus.StreamFeedback, slaApplier{fidx})
	}, nil
}

// slaApplier folds a rebuild's events into the SLA index, in batches.
type slaApplier struct{ *sla.Index }

func (a slaApplier) ApplyEvents(ctx context.Context, evs []*feedloopv1.Event, _ []nats.Header) error {
	for _, err := range a.ApplyBatch(ctx, evs) {
		if err != nil {
			return err // the first: a transaction's error repeats for each of its events
		}
	}
	return nil
}

// Rebuild empties the read model and the SLA index and replays the FEEDBACK
// stream into them, under the same lock the routers' automatic rebuild
// takes: running routers hold their consumers and answer Unavailable
// meanwhile, and resume when it is done. It returns how many events it
// replayed; an error wrapping rebuild.ErrBusy when another rebuild runs.
func Rebuild(ctx context.Context, infra *lifecycle.Infra, warnAt float64) (int, error) {
	if infra == nil || infra.Bus == nil || infra.Redis == nil {
		return 0, errors.New("router: rebuild needs NATS_URL and REDIS_URL")
	}
	log := infra.Log
	if log == nil {
		log = slog.Default()
	}
	gate, err := newGate(infra, log)
	if err != nil {
		return 0, err
	}
	replay, err := replayer(infra, warnAt, log)
	if err != nil {
		return 0, err
	}
	n := 0
	err = gate.Rebuild(ctx, func(ctx context.Context, fence rebuild.Guard) error {
		var err error
		n, err = replay(ctx, fence)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("router: %w", err)
	}
	return n, nil
}

// DumpReadModel returns the router's read model in rdb in a normal form
// (key → value, see readmodel.Store.DumpRebuilt) for comparing two states,
// e.g. a live Redis with one rebuilt from the stream.
func DumpReadModel(ctx context.Context, rdb redis.UniversalClient) (map[string]string, error) {
	store, err := readmodel.New(rdb)
	if err != nil {
		return nil, err
	}
	return store.DumpRebuilt(ctx)
}
