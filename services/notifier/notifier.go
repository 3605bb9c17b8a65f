// Package notifier is the notifier service: it turns lifecycle events into
// customer and team messages (signed webhooks, SMTP email, console),
// rendered from per-step, per-locale templates, never twice for the same
// step and recipient, only with the customer's consent, at most a daily
// number per customer (the rest in one digest), and records each message
// as a feedback.notified event.
package notifier

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/pkg/rebuild"
	"github.com/feedloop/feedloop/services/notifier/internal/app"
	"github.com/feedloop/feedloop/services/notifier/internal/channel"
	"github.com/feedloop/feedloop/services/notifier/internal/channel/console"
	"github.com/feedloop/feedloop/services/notifier/internal/channel/email"
	"github.com/feedloop/feedloop/services/notifier/internal/channel/webhook"
	"github.com/feedloop/feedloop/services/notifier/internal/dailycap"
	"github.com/feedloop/feedloop/services/notifier/internal/dedup"
	"github.com/feedloop/feedloop/services/notifier/internal/recipients"
	"github.com/feedloop/feedloop/services/notifier/internal/steps"
	"github.com/feedloop/feedloop/services/notifier/internal/teams"
	"github.com/feedloop/feedloop/services/notifier/internal/templates"
)

// Durable is the name of the notifier's consumer, shared by its replicas;
// its dead letters go to feedback.dlq.notifier.
const Durable = bus.ConsumerNotifier

// MinWebhookSecret is the shortest accepted webhook secret, in bytes.
const MinWebhookSecret = 16

// Consumer settings. A handler may take a while (webhook retries, SMTP), so
// AckWait is generous; the claim TTL outlasts one handler call so a live
// sender never loses its claim, and the redelivery schedule outlasts the
// claim TTL so a crashed sender's delivery is retried after its claim expired.
const (
	ackWait    = 60 * time.Second
	claimTTL   = 2 * ackWait
	maxDeliver = 10
)

// RebuildPrefix starts the keys of the delivery records' rebuild gate
// (<prefix>ready, <prefix>lock; see package rebuild).
const RebuildPrefix = "notify:rebuild:"

var backoff = []time.Duration{time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second, 60 * time.Second}

// Config is the notifier's configuration: from the environment
// (LoadConfig) or built in Go from DefaultConfig.
type Config struct {
	lifecycle.Common

	// TemplatesDir holds <step>.subject.tmpl, <step>.txt.tmpl, <step>.html.tmpl
	// and optional locale subdirectories.
	TemplatesDir string `env:"NOTIFIER_TEMPLATES_DIR" envDefault:"/etc/feedloop/templates"`
	// TeamsFile is the YAML file of team channels; empty: no team channels.
	TeamsFile string `env:"NOTIFIER_TEAMS_FILE"`
	// CustomerWebhookURL receives customer messages (the company's own
	// messaging system); empty: none.
	CustomerWebhookURL string `env:"NOTIFIER_CUSTOMER_WEBHOOK_URL"`
	// WebhookSecret signs every webhook body; required with any webhook.
	WebhookSecret string `env:"NOTIFIER_WEBHOOK_SECRET"`
	// WebhookSecretPrevious, during a rotation, signs every body too (a
	// second v1 in the signature), so receivers still holding it verify
	// until they switched; empty outside a rotation.
	WebhookSecretPrevious string `env:"NOTIFIER_WEBHOOK_SECRET_PREVIOUS"`
	// WebhookTimeout bounds one webhook attempt.
	WebhookTimeout time.Duration `env:"NOTIFIER_WEBHOOK_TIMEOUT" envDefault:"10s"`
	// WebhookAttempts bounds the attempts of one webhook delivery per handling.
	WebhookAttempts int `env:"NOTIFIER_WEBHOOK_ATTEMPTS" envDefault:"3"`
	// SMTPAddr is the SMTP server (host:port); empty: no email.
	SMTPAddr     string `env:"NOTIFIER_SMTP_ADDR"`
	SMTPUsername string `env:"NOTIFIER_SMTP_USERNAME"`
	SMTPPassword string `env:"NOTIFIER_SMTP_PASSWORD"`
	// SMTPFrom is the sender, e.g. "Acme Support <support@acme.example>".
	SMTPFrom string `env:"NOTIFIER_SMTP_FROM"`
	// Console mirrors every message to ConsoleOutput. It is on by itself
	// when no other channel is configured.
	Console bool `env:"NOTIFIER_CONSOLE"`
	// StatusURL is the base of customer status links (<base>/<status
	// token>) and survey answers (<base>/<status token>/survey?csat=N).
	StatusURL string `env:"NOTIFIER_STATUS_URL"`
	// CustomerRouted also tells the customer which team their feedback
	// reached ("it reached our billing team").
	CustomerRouted bool `env:"NOTIFIER_CUSTOMER_ROUTED" envDefault:"false"`
	// CustomerDailyCap bounds the messages one customer gets per UTC day;
	// the rest are held and sent in one digest after the day. 0: no cap.
	CustomerDailyCap int `env:"NOTIFIER_CUSTOMER_DAILY_CAP" envDefault:"5"`
	// DigestDelay is how long after the end of a UTC day (midnight) its
	// digests are sent: a margin for replicas whose clocks differ.
	DigestDelay time.Duration `env:"NOTIFIER_DIGEST_DELAY" envDefault:"5m"`
	// DigestPoll is how often a replica looks for due digests.
	DigestPoll time.Duration `env:"NOTIFIER_DIGEST_POLL" envDefault:"30s"`
	// DedupTTL is how long a sent message is remembered.
	DedupTTL time.Duration `env:"NOTIFIER_DEDUP_TTL" envDefault:"2160h"`
	// Concurrency is how many events one replica handles at once. A
	// delivery is mostly waiting (Redis claim, the channel, the publish,
	// the mark), and those waits grow under load: 16 slots capped the
	// stage near 1,000 items/s on two cores (bench hops).
	Concurrency int `env:"NOTIFIER_CONCURRENCY" envDefault:"64"`

	// ConsoleOutput is where the console channel writes; nil is os.Stdout.
	// Set from Go only: `feedloop dev` passes its own stdout.
	ConsoleOutput io.Writer `env:"-"`
}

// DefaultConfig is the configuration of an empty environment: the env
// tags' defaults, the one source of them.
func DefaultConfig() Config { return lifecycle.MustDefaults[Config]() }

// LoadConfig reads the environment over those defaults and validates it.
func LoadConfig() (Config, error) { return lifecycle.Load[Config]() }

// Option changes what New builds beyond Config: hooks for tests, which no
// deployment sets.
type Option func(*options)

type options struct {
	clock func() time.Time
	grace time.Duration
}

// WithClock makes the daily cap and the digests tell the time by clock
// instead of time.Now: tests move it across midnight.
func WithClock(clock func() time.Time) Option { return func(o *options) { o.clock = clock } }

// WithInFlightGrace sets how long a rebuild of the delivery records waits
// before it lets sends resume: the longest a send that was in flight when
// Redis lost its claim may still take. The default is the consumer's
// AckWait, which bounds a handler; tests shorten it.
func WithInFlightGrace(d time.Duration) Option { return func(o *options) { o.grace = d } }

// Validate checks c, naming the variable at fault.
func (c Config) Validate() error {
	errs := []error{c.Common.Validate()}
	if c.TemplatesDir == "" {
		errs = append(errs, errors.New("NOTIFIER_TEMPLATES_DIR: must not be empty"))
	}
	if c.CustomerWebhookURL != "" {
		if err := teams.CheckURL(c.CustomerWebhookURL); err != nil {
			errs = append(errs, fmt.Errorf("NOTIFIER_CUSTOMER_WEBHOOK_URL: %w", err))
		}
		if c.WebhookSecret == "" {
			errs = append(errs, errors.New("NOTIFIER_WEBHOOK_SECRET: required when NOTIFIER_CUSTOMER_WEBHOOK_URL is set"))
		}
	}
	if c.WebhookSecret != "" && len(c.WebhookSecret) < MinWebhookSecret {
		errs = append(errs, fmt.Errorf("NOTIFIER_WEBHOOK_SECRET: must be at least %d bytes, got %d", MinWebhookSecret, len(c.WebhookSecret)))
	}
	switch p := c.WebhookSecretPrevious; {
	case p == "":
	case c.WebhookSecret == "":
		errs = append(errs, errors.New("NOTIFIER_WEBHOOK_SECRET_PREVIOUS: set without NOTIFIER_WEBHOOK_SECRET (the new secret)"))
	case len(p) < MinWebhookSecret:
		errs = append(errs, fmt.Errorf("NOTIFIER_WEBHOOK_SECRET_PREVIOUS: must be at least %d bytes, got %d", MinWebhookSecret, len(p)))
	case p == c.WebhookSecret:
		errs = append(errs, errors.New("NOTIFIER_WEBHOOK_SECRET_PREVIOUS: the same as NOTIFIER_WEBHOOK_SECRET; unset it once the rotation is over"))
	}
	if c.WebhookTimeout <= 0 {
		errs = append(errs, fmt.Errorf("NOTIFIER_WEBHOOK_TIMEOUT: must be positive, got %s", c.WebhookTimeout))
	}
	if c.WebhookAttempts < 1 || c.WebhookAttempts > 10 {
		errs = append(errs, fmt.Errorf("NOTIFIER_WEBHOOK_ATTEMPTS: must be 1..10, got %d", c.WebhookAttempts))
	}
	if c.SMTPAddr != "" {
		if _, port, err := net.SplitHostPort(c.SMTPAddr); err != nil || port == "" {
			errs = append(errs, fmt.Errorf("NOTIFIER_SMTP_ADDR: must be host:port, got %q", c.SMTPAddr))
		}
		if c.SMTPFrom == "" {
			errs = append(errs, errors.New("NOTIFIER_SMTP_FROM: required when NOTIFIER_SMTP_ADDR is set"))
		} else if _, err := email.ParseFrom(c.SMTPFrom); err != nil {
			errs = append(errs, fmt.Errorf("NOTIFIER_SMTP_FROM: must be an address like \"Acme <support@acme.example>\": %w", err))
		}
	} else if c.SMTPUsername != "" || c.SMTPPassword != "" {
		errs = append(errs, errors.New("NOTIFIER_SMTP_USERNAME/NOTIFIER_SMTP_PASSWORD: set without NOTIFIER_SMTP_ADDR"))
	}
	if c.SMTPPassword != "" && c.SMTPUsername == "" {
		errs = append(errs, errors.New("NOTIFIER_SMTP_PASSWORD: set without NOTIFIER_SMTP_USERNAME"))
	}
	if c.StatusURL != "" {
		if err := teams.CheckURL(c.StatusURL); err != nil {
			errs = append(errs, fmt.Errorf("NOTIFIER_STATUS_URL: %w", err))
		}
	}
	if c.DedupTTL < time.Hour {
		errs = append(errs, fmt.Errorf("NOTIFIER_DEDUP_TTL: must be at least 1h, got %s", c.DedupTTL))
	}
	if c.Concurrency < 1 || c.Concurrency > 256 {
		errs = append(errs, fmt.Errorf("NOTIFIER_CONCURRENCY: must be 1..256, got %d", c.Concurrency))
	}
	if c.CustomerDailyCap < 0 || c.CustomerDailyCap > 1000 {
		errs = append(errs, fmt.Errorf("NOTIFIER_CUSTOMER_DAILY_CAP: must be 0 (no cap)..1000, got %d", c.CustomerDailyCap))
	}
	if c.DigestDelay < 0 || c.DigestDelay > 24*time.Hour {
		errs = append(errs, fmt.Errorf("NOTIFIER_DIGEST_DELAY: must be 0..24h, got %s", c.DigestDelay))
	}
	if c.DigestPoll < 10*time.Millisecond || c.DigestPoll > time.Hour {
		errs = append(errs, fmt.Errorf("NOTIFIER_DIGEST_POLL: must be 10ms..1h, got %s", c.DigestPoll))
	}
	return errors.Join(errs...)
}

// Service is a running notifier.
type Service struct {
	cfg     Config
	grace   time.Duration // see WithInFlightGrace
	bus     *bus.Bus
	rdb     *redis.Client
	gate    *rebuild.Gate
	handler *app.Handler
	log     *slog.Logger
}

// New validates cfg (start one in Go from DefaultConfig), loads and
// validates the templates and the teams file, and builds the channels. It
// does not connect to any receiver.
func New(cfg Config, infra *lifecycle.Infra, opts ...Option) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("notifier: %w", err)
	}
	o := options{clock: time.Now, grace: ackWait}
	for _, opt := range opts {
		opt(&o)
	}
	if infra == nil || infra.Bus == nil || infra.Redis == nil {
		return nil, errors.New("notifier: infra needs a bus and a redis client")
	}
	log := infra.Log
	if log == nil {
		log = slog.Default()
	}

	samples := map[string]any{}
	for _, name := range steps.Names() {
		samples[name] = steps.Sample(name)
	}
	tmpl, err := templates.Load(cfg.TemplatesDir, samples)
	if err != nil {
		return nil, fmt.Errorf("notifier: NOTIFIER_TEMPLATES_DIR: %w", err)
	}
	for _, f := range tmpl.Unused() {
		log.Warn("notifier: template file not used by any step", "file", f)
	}

	dir, err := buildDirectory(cfg, infra.Tracing())
	if err != nil {
		return nil, fmt.Errorf("notifier: %w", err)
	}
	log.Info("notifier: channels", "summary", describe(cfg, dir), "locales", strings.Join(tmpl.Locales(), ","),
		"customer_routed", cfg.CustomerRouted, "customer_daily_cap", cfg.CustomerDailyCap)

	gate, err := rebuild.New(infra.Redis, rebuild.Config{Name: "notifier delivery records", Prefix: RebuildPrefix, Log: log, TracerProvider: infra.Tracing()})
	if err != nil {
		return nil, fmt.Errorf("notifier: %w", err)
	}
	s := &Service{
		cfg:  cfg,
		bus:  infra.Bus,
		rdb:  infra.Redis,
		gate: gate,
		log:  log,
		handler: &app.Handler{
			Templates:  tmpl,
			Recipients: dir,
			// Guarded: no new claim and no new cap decision while the
			// records are missing (Redis lost them) or being rebuilt.
			Dedup:       dedup.New(infra.Redis, claimTTL, cfg.DedupTTL).Guarded(gate.ReadyKey()),
			Publisher:   infra.Bus,
			Log:         log,
			Options:     steps.Options{StatusURL: cfg.StatusURL, CustomerRouted: cfg.CustomerRouted},
			Cap:         dailycap.New(infra.Redis, cfg.DedupTTL).Guarded(gate.ReadyKey()),
			CapLimit:    cfg.CustomerDailyCap,
			DigestDelay: cfg.DigestDelay,
			Now:         o.clock,
			Metrics:     app.NewMetrics(otel.GetMeterProvider()),
			// Each channel's client spans, and the digests', go to the
			// service's own provider (see lifecycle.Infra.TracerProvider).
			TracerProvider: infra.Tracing(),
		},
	}
	s.grace = o.grace
	// On an empty Redis and an empty stream the records are complete at
	// once; otherwise Run's watcher rebuilds them.
	ictx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := gate.Init(ictx, infra.Bus.JetStream(), bus.StreamFeedback, s.rebuild); err != nil {
		log.Warn("notifier: delivery records not initialised; the rebuild watcher tries again", "err", err)
	}
	return s, nil
}

func buildDirectory(cfg Config, tp trace.TracerProvider) (*recipients.Directory, error) {
	dir := &recipients.Directory{TeamWebhooks: map[string]channel.Sender{}}
	newWebhook := func(url string) (channel.Sender, error) {
		return webhook.New(webhook.Options{
			URL: url, Secret: []byte(cfg.WebhookSecret), PreviousSecret: []byte(cfg.WebhookSecretPrevious),
			Timeout: cfg.WebhookTimeout, Attempts: cfg.WebhookAttempts, TracerProvider: tp,
			Concurrency: cfg.Concurrency,
		})
	}
	if cfg.SMTPAddr != "" {
		c, err := email.New(email.Options{
			Addr: cfg.SMTPAddr, From: cfg.SMTPFrom,
			Username: cfg.SMTPUsername, Password: cfg.SMTPPassword, TracerProvider: tp,
		})
		if err != nil {
			return nil, fmt.Errorf("NOTIFIER_SMTP_ADDR: %w", err)
		}
		dir.Email = c
	}
	if cfg.CustomerWebhookURL != "" {
		c, err := newWebhook(cfg.CustomerWebhookURL)
		if err != nil {
			return nil, fmt.Errorf("NOTIFIER_CUSTOMER_WEBHOOK_URL: %w", err)
		}
		dir.CustomerWebhook = c
	}
	if cfg.TeamsFile != "" {
		f, err := teams.Load(cfg.TeamsFile)
		if err != nil {
			return nil, fmt.Errorf("NOTIFIER_TEAMS_FILE: %w", err)
		}
		if f.Has(teams.TypeWebhook) && cfg.WebhookSecret == "" {
			return nil, fmt.Errorf("NOTIFIER_WEBHOOK_SECRET: required because %s configures webhooks", cfg.TeamsFile)
		}
		if f.Has(teams.TypeEmail) && cfg.SMTPAddr == "" {
			return nil, fmt.Errorf("NOTIFIER_SMTP_ADDR: required because %s configures email channels", cfg.TeamsFile)
		}
		for _, entry := range f.Names() {
			for _, c := range f.Teams[entry] {
				if c.Type != teams.TypeWebhook {
					continue
				}
				s, err := newWebhook(c.URL)
				if err != nil {
					return nil, fmt.Errorf("NOTIFIER_TEAMS_FILE: %s: teams.%s webhook %s: %w", cfg.TeamsFile, entry, c.Name, err)
				}
				dir.TeamWebhooks[recipients.TeamWebhookKey(entry, c.Name)] = s
			}
		}
		dir.Teams = f
	}
	if cfg.Console || (dir.Email == nil && dir.CustomerWebhook == nil && dir.Teams == nil) {
		out := cfg.ConsoleOutput
		if out == nil {
			out = os.Stdout
		}
		dir.Console = console.New(out)
	}
	return dir, nil
}

func describe(cfg Config, d *recipients.Directory) string {
	var parts []string
	if d.Email != nil {
		parts = append(parts, "email via "+cfg.SMTPAddr)
	}
	if d.CustomerWebhook != nil {
		parts = append(parts, "customer webhook")
	}
	if d.Teams != nil {
		parts = append(parts, "team channels for "+strings.Join(d.Teams.Names(), ","))
	}
	if d.Console != nil {
		parts = append(parts, "console")
	}
	return strings.Join(parts, "; ")
}

// ConsumerConfig is the notifier's durable consumer on the FEEDBACK stream.
func (s *Service) ConsumerConfig() bus.ConsumerConfig {
	return bus.ConsumerConfig{
		Stream:  bus.StreamFeedback,
		Durable: Durable,
		// Several filters need nats-server 2.10+.
		FilterSubjects: []string{bus.SubjectReceived, bus.AllRouted, bus.AllUpdated, bus.AllEscalated, bus.SubjectClosed},
		MaxDeliver:     maxDeliver,
		Backoff:        backoff,
		AckWait:        ackWait,
		Concurrency:    s.cfg.Concurrency,
	}
}

// Run consumes lifecycle events and sends due digests until ctx is
// cancelled, then lets the messages in hand finish and returns nil.
//
// Beside them the rebuild gate runs: at start and whenever Redis lost the
// delivery records, one replica rebuilds them from the stream while every
// replica's consumer holds its messages (rebuild.Pause).
func (s *Service) Run(ctx context.Context) error {
	s.log.InfoContext(ctx, "notifier: consuming", "durable", Durable)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	digests := make(chan struct{})
	go func() {
		defer close(digests)
		s.handler.RunDigests(ctx, s.cfg.DigestPoll)
	}()
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		_ = s.gate.Watch(ctx, s.rebuild)
	}()
	cc := s.ConsumerConfig()
	cc.Middleware = append(cc.Middleware, rebuild.Pause(s.gate, ctx.Done(), ackWait))
	err := s.bus.Consume(ctx, cc, s.handler.Handle)
	cancel()
	<-digests
	<-watched
	if err != nil {
		return fmt.Errorf("notifier: %w", err)
	}
	return nil
}

// rebuild restores the delivery records and the daily cap from the
// stream's feedback.notified events, then, if any replica had a message in
// hand when it started, waits out the in-flight grace from its start: a send in
// flight when Redis was lost has lost its claim, and another replica could
// otherwise send the same delivery before the first one's record is
// written. After the grace, either its record was published before the
// loss (and replayed here) or its mark was written after the loss (and
// kept: the rebuild deletes nothing). With nothing in hand anywhere (a
// first start on an empty Redis) no send can be in flight.
func (s *Service) rebuild(ctx context.Context, fence rebuild.Guard) error {
	start := time.Now()
	grace := s.grace
	cons, err := s.bus.JetStream().Consumer(ctx, bus.StreamFeedback, Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		grace = 0
	} else if err == nil {
		if info, err := cons.Info(ctx); err == nil && info.NumAckPending == 0 {
			grace = 0
		}
	}
	n, err := s.handler.Rebuild(ctx, s.rdb, s.bus.JetStream(), bus.StreamFeedback, fence)
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "notifier: delivery records replayed from the stream", "notified_events", n, "grace", grace)
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-time.After(time.Until(start.Add(grace))):
		return nil
	}
}
