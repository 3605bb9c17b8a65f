// Package lifecycle holds what every service's main needs and nothing
// domain-specific: the common configuration (NATS, Redis, logging), the
// connections built from it with LIFO cleanups, and a signal context.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/natsauth"
	"github.com/feedloop/feedloop/pkg/redisx"
	"github.com/feedloop/feedloop/pkg/telemetry"
	"github.com/feedloop/feedloop/pkg/tlsfiles"
)

// Common is the configuration every service shares, from the environment.
type Common struct {
	NATSURL         string        `env:"NATS_URL" envDefault:"nats://127.0.0.1:4222"`
	RedisURL        string        `env:"REDIS_URL" envDefault:"redis://127.0.0.1:6379/0"`
	StreamReplicas  int           `env:"NATS_STREAM_REPLICAS" envDefault:"1"`
	DuplicateWindow time.Duration `env:"NATS_DUPLICATE_WINDOW" envDefault:"10m"`
	Retention       time.Duration `env:"FEEDBACK_RETENTION" envDefault:"0s"`
	LogLevel        string        `env:"LOG_LEVEL" envDefault:"info"`
	// MetricsAddr serves GET /metrics for Prometheus (Connect serves it, a
	// service's New does not); empty serves nothing.
	MetricsAddr string `env:"METRICS_ADDR" envDefault:":9464"`

	// NATSStreams is what the service does with the streams at start:
	// "ensure" creates or updates them (the default; empty means it too),
	// "check" only requires them to exist, for a deployment whose
	// operator manages the streams and a user without the right to.
	NATSStreams string `env:"NATS_STREAMS" envDefault:"ensure"`
	// NATSNKeySeedFile is the service's NKey seed (`feedloop nats-config`
	// writes one per service); empty connects without credentials.
	NATSNKeySeedFile string `env:"NATS_NKEY_SEED_FILE"`
	// NATSTLSCAFile, NATSTLSCertFile and NATSTLSKeyFile are the NATS
	// client's TLS: the CA the server's certificate chains to (empty:
	// system roots) and a client certificate for mTLS.
	NATSTLSCAFile   string `env:"NATS_TLS_CA_FILE"`
	NATSTLSCertFile string `env:"NATS_TLS_CERT_FILE"`
	NATSTLSKeyFile  string `env:"NATS_TLS_KEY_FILE"`
	// TLS* make the service's gRPC and HTTP listeners serve TLS (mTLS
	// with a client CA); the metrics port stays plain.
	TLSCertFile     string `env:"TLS_CERT_FILE"`
	TLSKeyFile      string `env:"TLS_KEY_FILE"`
	TLSClientCAFile string `env:"TLS_CLIENT_CA_FILE"`
}

// Stream modes of NATS_STREAMS.
const (
	StreamsEnsure = "ensure"
	StreamsCheck  = "check"
)

// Validate checks c and names the variable at fault.
func (c Common) Validate() error {
	var errs []error
	if !strings.HasPrefix(c.NATSURL, "nats://") && !strings.HasPrefix(c.NATSURL, "tls://") {
		errs = append(errs, fmt.Errorf("NATS_URL: must start with nats:// or tls://, got %q", urlScheme(c.NATSURL)))
	}
	if !strings.HasPrefix(c.RedisURL, "redis://") && !strings.HasPrefix(c.RedisURL, "rediss://") {
		errs = append(errs, fmt.Errorf("REDIS_URL: must start with redis:// or rediss://, got %q", urlScheme(c.RedisURL)))
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
	if c.NATSStreams != "" && c.NATSStreams != StreamsEnsure && c.NATSStreams != StreamsCheck {
		errs = append(errs, fmt.Errorf("NATS_STREAMS: must be ensure or check, got %q", c.NATSStreams))
	}
	return errors.Join(append(errs, c.validateSecurity()...)...)
}

// validateSecurity checks the credential and certificate settings fit
// together. The files are read where they are used (Connect, Listen), whose
// errors name the variable too: a config check on another machine (the
// deploy check) must not need them.
func (c Common) validateSecurity() []error {
	var errs []error
	if (c.NATSTLSCertFile == "") != (c.NATSTLSKeyFile == "") {
		errs = append(errs, errors.New("NATS_TLS_CERT_FILE, NATS_TLS_KEY_FILE: must be set together"))
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("TLS_CERT_FILE, TLS_KEY_FILE: must be set together"))
	}
	if c.TLSClientCAFile != "" && c.TLSCertFile == "" {
		errs = append(errs, errors.New("TLS_CLIENT_CA_FILE: needs TLS_CERT_FILE and TLS_KEY_FILE (mTLS is TLS first)"))
	}
	return errs
}

func (c Common) natsTLS() tlsfiles.Client {
	return tlsfiles.Client{CAFile: c.NATSTLSCAFile, CertFile: c.NATSTLSCertFile, KeyFile: c.NATSTLSKeyFile}
}

// ServerTLS is the TLS of the service's gRPC and HTTP listeners.
func (c Common) ServerTLS() tlsfiles.Server {
	return tlsfiles.Server{CertFile: c.TLSCertFile, KeyFile: c.TLSKeyFile, ClientCAFile: c.TLSClientCAFile}
}

// Listen opens a TCP listener on addr for a gRPC or HTTP server, serving
// TLS when TLS_CERT_FILE is set (a rotated certificate is picked up
// without a restart).
func (c Common) Listen(addr string) (net.Listener, error) {
	if err := c.ServerTLS().Check(); err != nil {
		return nil, fmt.Errorf("TLS_CERT_FILE, TLS_KEY_FILE, TLS_CLIENT_CA_FILE: %w", err)
	}
	return c.ServerTLS().Listen(addr)
}

// NATSOptions are the connection options for user (its inbox prefix
// matches the permissions natsauth gives that user): the NKey seed, and
// TLS when files are given.
func (c Common) NATSOptions(user string) ([]nats.Option, error) {
	var opts []nats.Option
	if c.NATSNKeySeedFile != "" {
		seed, err := os.ReadFile(c.NATSNKeySeedFile)
		if err == nil {
			_, err = natsauth.PublicKey(c.NATSNKeySeedFile, seed)
		}
		if err != nil {
			return nil, fmt.Errorf("NATS_NKEY_SEED_FILE: %w", err)
		}
		o, err := natsauth.ClientOptions(user, c.NATSNKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("NATS_NKEY_SEED_FILE: %w", err)
		}
		opts = append(opts, o...)
	}
	if c.natsTLS().Enabled() {
		cfg, err := c.natsTLS().Config()
		if err != nil {
			return nil, fmt.Errorf("NATS_TLS_CA_FILE, NATS_TLS_CERT_FILE, NATS_TLS_KEY_FILE: %w", err)
		}
		opts = append(opts, nats.Secure(cfg))
	}
	return opts, nil
}

// urlScheme is what an error may show of a URL: its scheme, never the rest
// (a password may be in it).
func urlScheme(u string) string {
	if scheme, _, ok := strings.Cut(u, "://"); ok {
		return scheme + "://…"
	}
	return "a URL without a scheme"
}

// common lets LoadEnv reach the Common of any config that embeds it.
func (c *Common) common() *Common { return c }

// Streams returns the stream sizing of c.
func (c Common) Streams() bus.StreamsConfig {
	return bus.StreamsConfig{Replicas: c.StreamReplicas, DuplicateWindow: c.DuplicateWindow, MaxAge: c.Retention}
}

// LoadEnv parses the environment into T (a struct with env tags) and
// returns a clear error naming every bad variable.
func LoadEnv[T any]() (T, error) {
	cfg, err := parse[T](env.Options{})
	if err == nil {
		// env gives an empty variable its default; an empty METRICS_ADDR
		// means no metrics server, as documented.
		if c, ok := any(&cfg).(interface{ common() *Common }); ok {
			if v, set := os.LookupEnv("METRICS_ADDR"); set && v == "" {
				c.common().MetricsAddr = ""
			}
		}
	}
	return cfg, err
}

// Defaults fills T from its envDefault tags alone, as an empty environment
// would: the one source of a service's defaults, for its binary (LoadEnv)
// and for a Config built in Go (DefaultConfig) alike. The process
// environment is not read.
func Defaults[T any]() (T, error) {
	return parse[T](env.Options{Environment: map[string]string{}})
}

// MustDefaults is Defaults for a DefaultConfig: a bad envDefault tag is a
// programming error, which each service's config test catches.
func MustDefaults[T any]() T {
	cfg, err := Defaults[T]()
	if err != nil {
		panic(fmt.Sprintf("lifecycle: bad envDefault tag in %T: %v", cfg, err))
	}
	return cfg
}

// parse parses into T with opts, naming the variable in each error.
func parse[T any](opts env.Options) (T, error) {
	cfg, err := env.ParseAsWithOptions[T](opts)
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

// EnvVars lists the variables T reads (its env tags, through embedded and
// nested structs), sorted.
func EnvVars[T any]() []string {
	return slices.Compact(slices.Sorted(maps.Values(envKeys(reflect.TypeFor[T]()))))
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
		if k, _, _ := strings.Cut(f.Tag.Get("env"), ","); k == "-" {
			continue
		} else if k != "" {
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
	// TracerProvider is where the service's own spans go (servers, clients,
	// timers; Bus and Redis carry theirs); nil means the global one, which
	// Connect sets up for the service. A process running several services
	// (`feedloop dev`) gives each its own, so each keeps its service.name.
	TracerProvider trace.TracerProvider
	// MetricsAddr is where Connect serves /metrics, port chosen; empty when
	// it serves none.
	MetricsAddr string
}

// Tracing is i's TracerProvider, or the global one when it has none.
func (i *Infra) Tracing() trace.TracerProvider {
	if i.TracerProvider != nil {
		return i.TracerProvider
	}
	return otel.GetTracerProvider()
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

// ConnectOption changes how Connect connects.
type ConnectOption func(*connectOptions)

type connectOptions struct {
	user        string
	checkStream bool
}

// AsUser connects to NATS as user (natsauth's names; default: the service
// name), e.g. a command that runs with a service's credentials.
func AsUser(user string) ConnectOption { return func(o *connectOptions) { o.user = user } }

// CheckStreamsOnly makes Connect only check the streams exist, whatever
// NATS_STREAMS says: for commands, which must never resize a stream
// (a command run with NATS_STREAM_REPLICAS=1 would turn R3 streams into R1).
func CheckStreamsOnly() ConnectOption { return func(o *connectOptions) { o.checkStream = true } }

// Connect sets up telemetry and logging for service, serves its metrics on
// c.MetricsAddr, connects NATS (and ensures the streams) and Redis. The
// returned cleanup closes them in reverse order; it is valid even when
// Connect fails.
func Connect(ctx context.Context, service string, c Common, opts ...ConnectOption) (*Infra, func(), error) {
	o := connectOptions{user: service, checkStream: c.NATSStreams == StreamsCheck}
	for _, opt := range opts {
		opt(&o)
	}
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
	natsOpts, err := c.NATSOptions(o.user)
	if err != nil {
		return nil, cleanups.Run, err
	}
	// A refused login or publish reaches the client asynchronously; say
	// so in the log, or a service with wrong credentials just waits.
	natsOpts = append(natsOpts,
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Error("nats: asynchronous error", "err", err)
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("nats: connect failed; trying again", "url", c.NATSURL, "err", err)
		}))
	nc, err := bus.Connect(c.NATSURL, service, natsOpts...)
	if err != nil {
		return nil, cleanups.Run, err
	}
	cleanups.Add(func() { _ = nc.Drain() })
	b, err := bus.New(nc, bus.WithLogger(log))
	if err != nil {
		return nil, cleanups.Run, err
	}
	if o.checkStream {
		err = b.CheckStreams(ctx)
	} else {
		err = b.EnsureStreams(ctx, c.Streams())
	}
	if err != nil {
		if le := nc.LastError(); le != nil {
			// "connection closed" hides why: say what the server said.
			err = fmt.Errorf("%w (NATS_URL %s: %w)", err, c.NATSURL, le)
		}
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
