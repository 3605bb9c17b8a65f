// Package stack assembles the whole of feedloop in one process: an embedded
// nats-server, Redis (a given one or an in-process stand-in), the four
// services on one bus, and the web console on the router's team API.
// `feedloop dev` and the end-to-end tests run it.
package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"golang.org/x/sync/errgroup"

	"github.com/feedloop/feedloop/cmd/feedloop/internal/devmail"
	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/pkg/natsauth"
	"github.com/feedloop/feedloop/pkg/natsembed"
	"github.com/feedloop/feedloop/pkg/redisx"
	"github.com/feedloop/feedloop/pkg/telemetry"
	"github.com/feedloop/feedloop/services/classifier"
	"github.com/feedloop/feedloop/services/console"
	"github.com/feedloop/feedloop/services/intake"
	"github.com/feedloop/feedloop/services/intake/access"
	"github.com/feedloop/feedloop/services/notifier"
	"github.com/feedloop/feedloop/services/router"
)

// Config is everything the stack runs with.
type Config struct {
	// DataDir holds JetStream's files.
	DataDir string
	// NATSPort is the embedded server's port; 0 picks a free one.
	NATSPort int
	// NATSAuthDir, when set, turns NATS authorization on: the users of
	// NATSAuth are generated there (natsauth.Generate keeps existing seeds),
	// the embedded server lets in only them, and each service connects as
	// its own user with its own permissions, as it would deployed. The
	// stack's own Bus is the admin user.
	NATSAuthDir string
	// NATSAuth is what the users' permissions depend on (source systems,
	// teams); ManageStreams is always on.
	NATSAuth natsauth.Spec
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
	// MailboxAddr, when set, runs the dev mailbox there (package devmail,
	// loopback only; port 0 picks a free one) as the notifier's SMTP server:
	// Notifier.SMTPAddr must then be empty, and Notifier.SMTPFrom set.
	MailboxAddr string

	Intake     intake.Config
	Classifier classifier.Config
	Router     router.Config
	Notifier   notifier.Config
	// Console, when set, runs the web console against the router's team
	// API (TeamAPIAddr and StatusURL are set by Start; with Dev, the dev
	// mailbox shows on its mailbox page).
	Console *console.Config

	Log *slog.Logger
}

// DevSources are the source systems `feedloop dev` has NATS users for.
var DevSources = []string{"helpdesk", "survey", "appstore", "crm"}

// DevConfig returns a Config on free loopback ports using the example rules,
// routes and templates in examples (deploy/examples), with NATS
// authorization on: every service on its own generated credentials in
// dataDir/nats-auth, as deployed; and the web console in development mode
// (a session key of its own, dev pages; PrepareDev adds sign-in links and
// the mailbox).
func DevConfig(examples, dataDir string) Config {
	// Each service starts from its production defaults, on free loopback
	// ports and the examples.
	in := intake.DefaultConfig()
	in.GRPCAddr, in.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	// Unlike a deployment, a developer's machine (and the end-to-end tests
	// on it) sends bursts from one source, walks one customer through
	// every step and watches SLAs without warnings: no rate limit, no daily
	// cap, no SLA warning (what `feedloop dev` has always run with).
	in.RateLimit = access.Rate{}
	cls := classifier.DefaultConfig()
	cls.RulesFile = filepath.Join(examples, "rules.yaml")
	rt := router.DefaultConfig()
	rt.RoutesFile = filepath.Join(examples, "routes.yaml")
	rt.GRPCAddr, rt.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	rt.SLAWarnAt = 0
	nt := notifier.DefaultConfig()
	nt.TemplatesDir = filepath.Join(examples, "templates")
	nt.CustomerDailyCap = 0
	cs := console.DefaultConfig()
	cs.HTTPAddr, cs.TemplatesDir, cs.Dev = "127.0.0.1:0", filepath.Join(examples, "templates"), &console.Dev{}
	cs.MetricsAddr = "" // the process serves one /metrics (Config.MetricsAddr)
	cfg := Config{
		DataDir:    dataDir,
		Intake:     in,
		Classifier: cls,
		Router:     rt,
		Notifier:   nt,
		Console:    &cs,
		Log:        slog.Default(),
	}
	cfg.NATSAuthDir, cfg.NATSAuth = filepath.Join(dataDir, "nats-auth"), natsauth.Spec{Sources: DevSources}
	return cfg
}

// Stack is a started feedloop.
type Stack struct {
	NATS *server.Server
	// NATSUsers are the generated users when NATSAuthDir is set.
	NATSUsers natsauth.Users
	// Bus is the stack's own connection (with NATS authorization, as the
	// admin user); without authorization the services share it.
	Bus        *bus.Bus
	Redis      *redis.Client
	RedisURL   string
	StatusURL  string // base of the links to the customers' status pages
	Intake     *intake.Service
	Classifier *classifier.Service
	Router     *router.Service
	Notifier   *notifier.Service
	// Console is the web console when Config.Console is set.
	Console *console.Service
	// Mailbox is the dev mailbox when MailboxAddr is set.
	Mailbox *devmail.Server

	metricsAddr string
	tracers     *telemetry.Tracers
	cleanups    lifecycle.Cleanups
}

// Services are the services of a stack, by the names they run under when
// deployed (their NATS users, their service.name in traces).
var Services = append(slices.Clone(natsauth.Services), ConsoleService)

// ConsoleService is the web console's service name.
const ConsoleService = "console"

// PartLabel is the pprof label that names the part of a stack a goroutine
// works for: "intake", "classifier", "router", "notifier", "console",
// "nats-server", "nats-client" (the services' NATS connections),
// "redis" (the in-process stand-in) or "mailbox" (the dev mailbox).
// Goroutines inherit it from the goroutine that started them, so a CPU
// profile of a stack splits by part (go tool pprof -tagroot feedloop.part).
const PartLabel = "feedloop.part"

// PartNATSServer is the embedded server's part. It labels the goroutines of
// its streams and consumers itself (account, stream, consumer), replacing
// this label: count those in too.
const PartNATSServer = "nats-server"

// PartNATSClient is the part of the services' NATS connections (their
// reading and flushing goroutines).
const PartNATSClient = "nats-client"

// as runs f labelled part (see PartLabel).
func as(ctx context.Context, part string, f func(context.Context)) {
	pprof.Do(ctx, pprof.Labels(PartLabel, part), f)
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
	// Each service traces under its own service.name, as deployed, not
	// under the process's: Tempo's service graph shows one node per
	// service. Registered first, the providers shut down last, flushing
	// what every service exported up to its end.
	if s.tracers, err = telemetry.NewTracers(ctx, Services); err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	s.cleanups.Add(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.tracers.Shutdown(sctx); err != nil {
			cfg.Log.Warn("stack: flushing the services' spans", "err", err)
		}
	})
	if cfg.NATSAuthDir != "" {
		spec := cfg.NATSAuth
		spec.ManageStreams = true
		if s.NATSUsers, err = natsauth.Generate(cfg.NATSAuthDir, spec); err != nil {
			return nil, fmt.Errorf("stack: %w", err)
		}
	}
	as(ctx, PartNATSServer, func(context.Context) {
		s.NATS, err = natsembed.Start(natsembed.Options{Port: cfg.NATSPort, StoreDir: cfg.DataDir, Users: s.NATSUsers.NkeyUsers(), SyncAlways: cfg.NATSSyncAlways})
	})
	if err != nil {
		return nil, err
	}
	s.cleanups.Add(func() { s.NATS.Shutdown(); s.NATS.WaitForShutdown() })

	if s.Bus, err = s.connect(ctx, natsauth.Admin, cfg.Log); err != nil {
		return nil, err
	}
	if err := s.Bus.EnsureStreams(ctx, cfg.Streams); err != nil {
		return nil, err
	}

	s.RedisURL = cfg.RedisURL
	if s.RedisURL == "" {
		var mr *miniredis.Miniredis
		as(ctx, "redis", func(context.Context) { mr, err = miniredis.Run() })
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
	common := lifecycle.MustDefaults[lifecycle.Common]()
	common.NATSURL, common.RedisURL = s.NATS.ClientURL(), s.RedisURL
	common.MetricsAddr = "" // the process serves one /metrics (Config.MetricsAddr)
	if cfg.Streams.DuplicateWindow > 0 {
		common.DuplicateWindow = cfg.Streams.DuplicateWindow
	}
	infra := map[string]*lifecycle.Infra{}
	for _, name := range natsauth.Services {
		log := cfg.Log.With("service", name)
		tp := s.tracers.Provider(name)
		var b *bus.Bus
		if s.NATSUsers != nil {
			b, err = s.connect(ctx, name, log, bus.WithTracerProvider(tp))
		} else {
			// One connection, a bus per service for its own spans.
			b, err = bus.New(s.Bus.Conn(), bus.WithLogger(log), bus.WithTracerProvider(tp))
		}
		if err != nil {
			return nil, err
		}
		// A client per service too, as deployed: its commands are spans of
		// its service.
		rdb, err := redisx.Connect(ctx, s.RedisURL, redisx.WithTracerProvider(tp))
		if err != nil {
			return nil, err
		}
		s.cleanups.Add(func() { _ = rdb.Close() })
		infra[name] = &lifecycle.Infra{Bus: b, Redis: rdb, Log: log, TracerProvider: tp}
	}
	// A service keeps its own listeners' TLS (TLS_* of its Common).
	withSeed := func(user string, own lifecycle.Common) lifecycle.Common {
		c := common
		c.TLSCertFile, c.TLSKeyFile, c.TLSClientCAFile = own.TLSCertFile, own.TLSKeyFile, own.TLSClientCAFile
		if u, ok := s.NATSUsers.Get(user); ok {
			c.NATSNKeySeedFile = u.SeedFile
		}
		return c
	}
	cfg.Intake.Common = withSeed(natsauth.Intake, cfg.Intake.Common)
	cfg.Classifier.Common = withSeed(natsauth.Classifier, cfg.Classifier.Common)
	cfg.Router.Common = withSeed(natsauth.Router, cfg.Router.Common)
	cfg.Notifier.Common = withSeed(natsauth.Notifier, cfg.Notifier.Common)
	// Each service is built under its label too: building may start
	// goroutines (the gRPC servers' stream workers) that work for it.
	as(ctx, "intake", func(context.Context) { s.Intake, err = intake.New(cfg.Intake, infra[natsauth.Intake]) })
	if err != nil {
		return nil, fmt.Errorf("intake: %w", err)
	}
	as(ctx, "classifier", func(context.Context) { s.Classifier, err = classifier.New(cfg.Classifier, infra[natsauth.Classifier]) })
	if err != nil {
		return nil, fmt.Errorf("classifier: %w", err)
	}
	as(ctx, "router", func(context.Context) { s.Router, err = router.New(cfg.Router, infra[natsauth.Router]) })
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	if cfg.Notifier.StatusURL == "" {
		// Customer messages link to the status pages this router serves.
		cfg.Notifier.StatusURL = StatusURL(s.Router.HTTPAddr())
	}
	s.StatusURL = cfg.Notifier.StatusURL
	if cfg.MailboxAddr != "" {
		if cfg.Notifier.SMTPAddr != "" {
			return nil, fmt.Errorf("stack: MailboxAddr %s and Notifier.SMTPAddr %s: the dev mailbox is the notifier's SMTP server, set one", cfg.MailboxAddr, cfg.Notifier.SMTPAddr)
		}
		// Listening starts no goroutine; Run labels the server's.
		if s.Mailbox, err = devmail.Listen(devmail.Options{Addr: cfg.MailboxAddr, Log: cfg.Log.With("service", "mailbox")}); err != nil {
			return nil, fmt.Errorf("stack: %w", err)
		}
		s.cleanups.Add(func() { _ = s.Mailbox.Close() })
		cfg.Notifier.SMTPAddr = s.Mailbox.Addr()
	}
	as(ctx, "notifier", func(context.Context) { s.Notifier, err = notifier.New(cfg.Notifier, infra[natsauth.Notifier]) })
	if err != nil {
		return nil, fmt.Errorf("notifier: %w", err)
	}
	if cfg.Console != nil {
		c := *cfg.Console
		c.TeamAPIAddr = Reachable(s.Router.GRPCAddr())
		if c.StatusURL == "" {
			c.StatusURL = s.StatusURL // previews show the link customers get
		}
		if c.Dev != nil && c.Dev.Mailbox == nil && s.Mailbox != nil {
			dev := *c.Dev
			dev.Mailbox = mailbox{s.Mailbox}
			c.Dev = &dev
		}
		c.TracerProvider = s.tracers.Provider(ConsoleService)
		as(ctx, ConsoleService, func(context.Context) { s.Console, err = console.New(c, cfg.Log.With("service", ConsoleService)) })
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

// connect opens a Bus on the embedded server as user (its own NKey and
// inbox prefix when authorization is on), drained at cleanup.
func (s *Stack) connect(ctx context.Context, user string, log *slog.Logger, busOpts ...bus.Option) (*bus.Bus, error) {
	var opts []nats.Option
	if u, ok := s.NATSUsers.Get(user); ok {
		var err error
		if opts, err = u.Options(); err != nil {
			return nil, fmt.Errorf("stack: NATS user %s: %w", user, err)
		}
	}
	var nc *nats.Conn
	var err error
	as(ctx, PartNATSClient, func(context.Context) { nc, err = bus.Connect(s.NATS.ClientURL(), "feedloop-dev-"+user, opts...) })
	if err != nil {
		return nil, err
	}
	s.cleanups.Add(func() { _ = nc.Drain() })
	return bus.New(nc, append([]bus.Option{bus.WithLogger(log)}, busOpts...)...)
}

// FlushTraces exports every span the services have ended so far.
func (s *Stack) FlushTraces(ctx context.Context) error { return s.tracers.ForceFlush(ctx) }

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

// mailbox shows the dev mailbox's messages on the console's mailbox page.
type mailbox struct{ s *devmail.Server }

func (m mailbox) Messages() []console.Mail {
	ms := m.s.Messages()
	out := make([]console.Mail, len(ms))
	for i, msg := range ms {
		out[i] = console.Mail(msg)
	}
	return out
}

// Run runs the services until ctx is cancelled or one fails, then
// stops everything (services drain first, then NATS and Redis close).
func (s *Stack) Run(ctx context.Context) error {
	defer s.cleanups.Run()
	g, gctx := errgroup.WithContext(ctx)
	runs := map[string]func(context.Context) error{
		"intake":     s.Intake.Run,
		"classifier": s.Classifier.Run,
		"router":     s.Router.Run,
		"notifier":   s.Notifier.Run,
	}
	if s.Mailbox != nil {
		runs["mailbox"] = s.Mailbox.Run
	}
	if s.Console != nil {
		runs["console"] = s.Console.Run
	}
	for name, run := range runs {
		g.Go(func() (err error) {
			as(gctx, name, func(ctx context.Context) { err = run(ctx) })
			if err != nil {
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
