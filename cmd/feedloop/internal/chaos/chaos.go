// Package chaos is the fault harness: it runs feedloop in its deployment
// shape on one machine — a real nats-server and redis-server, every service
// its own OS process (two replicas of classifier and router), with the
// security of a deployment on (a NATS NKey user per service, intake API
// keys and rate limit, signed webhooks) — drives items through the gRPC
// intake while it kills each service once with SIGKILL,
// kills and restarts nats-server, flushes Redis and sends poison messages,
// and then checks what the system promises: every item reached every team
// its route names, every customer got exactly one acknowledgement, every
// poison message was dead-lettered, and the read model equals a rebuild
// from the stream.
package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/feedloop/feedloop/pkg/apikey"
	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/natsauth"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/classifier"
	"github.com/feedloop/feedloop/services/intake/access"
	"github.com/feedloop/feedloop/services/notifier"
	"github.com/feedloop/feedloop/services/router"
	"github.com/feedloop/feedloop/services/router/routing"
)

// Defaults of Options.
const (
	DefaultItems          = 20000
	DefaultConcurrency    = 16
	DefaultQuiesceTimeout = 5 * time.Minute
	// IntakeRateLimit is intake's per-source limit in the run
	// (INTAKE_RATE_LIMIT): on, as in a deployment, above the default
	// 100/s that one source driving the whole run would exceed; the driver
	// waits out RESOURCE_EXHAUSTED's RetryInfo when it goes faster.
	IntakeRateLimit = "250/s"
)

// Options configure a run. Zero values take the defaults.
type Options struct {
	// Items is how many items are submitted through the gRPC intake.
	Items int
	// Concurrency is how many gRPC clients submit at once.
	Concurrency int
	// Rate bounds submissions (items/s); 0 is as fast as intake takes them.
	// A small run uses it to spread its faults over its load.
	Rate float64
	// Dir is the repository root (go.work); empty: found from the working
	// directory upwards.
	Dir string
	// Keep leaves the run directory (logs, JetStream store) in place; it is
	// also kept when an assertion fails.
	Keep bool
	// Skip leaves faults out by name (FaultNames), to tell which fault
	// causes a finding.
	Skip []string
	// QuiesceTimeout bounds the wait for every consumer to catch up at the end.
	QuiesceTimeout time.Duration
	// Progress receives a progress line now and then (default: nowhere).
	Progress io.Writer
}

func (o Options) withDefaults() Options {
	if o.Items == 0 {
		o.Items = DefaultItems
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.QuiesceTimeout == 0 {
		o.QuiesceTimeout = DefaultQuiesceTimeout
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return o
}

// Validate checks o after defaults.
func (o Options) Validate() error {
	o = o.withDefaults()
	var errs []error
	if o.Items < 100 {
		errs = append(errs, fmt.Errorf("items: must be at least 100 (1%% of them is poison), got %d", o.Items))
	}
	if o.Concurrency < 1 || o.Concurrency > 1000 {
		errs = append(errs, fmt.Errorf("concurrency: must be 1..1000, got %d", o.Concurrency))
	}
	if o.Rate < 0 {
		errs = append(errs, fmt.Errorf("rate: must not be negative, got %g", o.Rate))
	}
	for _, n := range o.Skip {
		if !slices.Contains(FaultNames, n) {
			errs = append(errs, fmt.Errorf("skip: unknown fault %q (%s)", n, strings.Join(FaultNames, ", ")))
		}
	}
	if o.QuiesceTimeout < time.Second {
		errs = append(errs, fmt.Errorf("quiesce timeout: must be at least 1s, got %s", o.QuiesceTimeout))
	}
	return errors.Join(errs...)
}

// Result is one run. The first seven fields are the assertions;
// the rest say what happened, to explain a failure.
type Result struct {
	// Submitted counts the items intake accepted (each exactly once, after
	// retries; a retry answered "duplicate" counts as accepted).
	Submitted int `json:"submitted"`
	// MissingRoutes counts items that did not reach every team their route
	// names, in the stream or at the team sink: must be 0.
	MissingRoutes int `json:"missing_routes"`
	// DuplicateMessages and MissingMessages count customer acknowledgements
	// beyond or short of exactly one per item, as a receiver honouring
	// Idempotency-Key sees them: a further delivery under a new key (or
	// without one) is a duplicate. Both must be 0.
	DuplicateMessages int `json:"duplicate_messages"`
	MissingMessages   int `json:"missing_messages"`
	// PoisonSent and DeadLettered (distinct poison messages on
	// feedback.dlq.intake) must be equal.
	PoisonSent   int `json:"poison_sent"`
	DeadLettered int `json:"dead_lettered"`
	// ReadModelEqual: the router's read model equals a rebuild from the stream.
	ReadModelEqual bool `json:"read_model_equal"`

	Items int `json:"items"`
	// ResentSameKey counts raw redeliveries of a customer acknowledgement
	// under its first delivery's Idempotency-Key: a receiver honouring the
	// key drops them. Reported, not a failure: a notifier killed after the
	// receiver accepted and before it recorded the send resends so, and no
	// sender can close that window; a FLUSHALL erases the records too.
	ResentSameKey int `json:"resent_same_key"`
	// Unclassified counts accepted items without a classified event.
	Unclassified int `json:"unclassified"`
	// RoutedExtra counts routed events beyond one per (item, team) in the
	// stream; TeamAlertsDuplicate team alerts beyond one at the sink (team
	// alerts are at-least-once, with an Idempotency-Key).
	RoutedExtra         int `json:"routed_events_extra"`
	TeamAlertsDuplicate int `json:"team_alerts_duplicate"`
	// DeadLettersOther are dead letters that are not poison: each a finding.
	DeadLettersOther []string `json:"dead_letters_other"`
	// SubmitRetries counts Unavailable and connection errors retried;
	// ResubmissionsDuplicate the retries intake answered "duplicate".
	SubmitRetries int `json:"submit_retries"`
	// RateLimitedRetries counts ResourceExhausted answers (intake's rate
	// limit, IntakeRateLimit) waited out for their RetryInfo delay and
	// retried under the same (source, external_id).
	RateLimitedRetries     int `json:"rate_limited_retries"`
	ResubmissionsDuplicate int `json:"resubmissions_duplicate"`
	// Faults lists the faults injected, in order, with when.
	Faults []string `json:"faults"`
	// UnexpectedExits lists services that ended by themselves (and were
	// started again, as a supervisor would).
	UnexpectedExits []string `json:"unexpected_exits"`
	// Quiescent: every consumer caught up within the timeout.
	Quiescent bool `json:"quiescent"`
	// Events is how many events the FEEDBACK stream holds.
	Events int `json:"events"`
	// NATSSync is the fsync setting of nats-server in the run.
	NATSSync  string  `json:"nats_sync"`
	DurationS float64 `json:"duration_s"`
	// RunDir holds the logs and the store when kept.
	RunDir string `json:"run_dir,omitempty"`

	readModelDiff string
	examples      []string
}

// OK reports whether every assertion holds.
func (r *Result) OK() bool { return len(r.Failures()) == 0 }

// Failures describes each assertion that failed.
func (r *Result) Failures() []string {
	var out []string
	if r.Submitted != r.Items {
		out = append(out, fmt.Sprintf("submitted %d of %d items", r.Submitted, r.Items))
	}
	if r.MissingRoutes != 0 {
		out = append(out, fmt.Sprintf("missing_routes %d", r.MissingRoutes))
	}
	// Raw resends under the first delivery's key (ResentSameKey) are not
	// counted here: a receiver honouring Idempotency-Key drops them.
	if r.DuplicateMessages != 0 || r.MissingMessages != 0 {
		out = append(out, fmt.Sprintf("customer acknowledgements: %d duplicate (a new or no Idempotency-Key), %d missing", r.DuplicateMessages, r.MissingMessages))
	}
	if r.PoisonSent != r.DeadLettered {
		out = append(out, fmt.Sprintf("poison_sent %d != dead_lettered %d", r.PoisonSent, r.DeadLettered))
	}
	if !r.ReadModelEqual {
		out = append(out, "read model differs from a rebuild from the stream: "+r.readModelDiff)
	}
	if len(r.DeadLettersOther) > 0 {
		out = append(out, fmt.Sprintf("%d dead letters that are not poison", len(r.DeadLettersOther)))
	}
	if !r.Quiescent {
		out = append(out, "the consumers did not catch up within the timeout")
	}
	return out
}

// Examples are up to a few items behind each failed count.
func (r *Result) Examples() []string { return r.examples }

// Run runs the harness once. An error means it could not run; a failed
// assertion is a Result with OK() false.
func Run(ctx context.Context, o Options) (res *Result, err error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	o = o.withDefaults()
	redisPath, lerr := exec.LookPath("redis-server")
	if lerr != nil {
		return nil, errNoRedis
	}
	root := o.Dir
	if root == "" {
		if root, err = findRoot("."); err != nil {
			return nil, err
		}
	}
	h := &harness{o: o, root: root, start: time.Now(), res: &Result{Items: o.Items, NATSSync: "default (sync_interval 2m)"}}
	if h.dir, err = os.MkdirTemp("", "feedloop-chaos-"); err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	defer func() {
		if err != nil {
			h.keep = true // the logs say why
			err = fmt.Errorf("%w (logs in %s)", err, filepath.Join(h.dir, "logs"))
		}
		h.close()
	}()
	h.progress("building the services and nats-server into %s", h.dir)
	if err := buildAll(ctx, root, filepath.Join(h.dir, "bin")); err != nil {
		return nil, err
	}
	if err := h.startInfra(ctx, redisPath); err != nil {
		return nil, err
	}
	if err := h.startServices(ctx); err != nil {
		return nil, err
	}
	if err := h.runLoad(ctx); err != nil {
		return nil, err
	}
	if err := h.verify(ctx); err != nil {
		return nil, err
	}
	h.res.DurationS = time.Since(h.start).Round(100 * time.Millisecond).Seconds()
	if o.Keep || !h.res.OK() {
		h.keep = true
		h.res.RunDir = h.dir
	}
	return h.res, nil
}

type harness struct {
	o     Options
	root  string
	dir   string
	start time.Time
	res   *Result
	keep  bool

	secret    []byte
	natsUsers natsauth.Users
	apiKey    string // the driver's intake API key (INTAKE_API_KEYS_FILE holds its hash)
	sink      *sink
	redis     *proc
	nats      *proc
	natsPort  int
	redisPort int
	intakeAdr string
	services  []*proc // intake, classifier-1, classifier-2, router-1, router-2, notifier
	bus       *bus.Bus
	rdb       *redis.Client
	ids       map[string]int // feedback id → item number, of the accepted items

	mu       sync.Mutex
	faulting map[*proc]bool // killed on purpose: the supervisor leaves it
	stopping bool
	superv   chan struct{}
}

func (h *harness) progress(format string, args ...any) {
	fmt.Fprintf(h.o.Progress, "chaos %6.1fs  %s\n", time.Since(h.start).Seconds(), fmt.Sprintf(format, args...))
}

func (h *harness) bin(name string) string { return filepath.Join(h.dir, "bin", name) }

func (h *harness) newProc(name, bin string, args []string, env []string) *proc {
	return &proc{name: name, path: h.bin(bin), args: args, env: env, log: filepath.Join(h.dir, "logs", name+".log")}
}

func (h *harness) startInfra(ctx context.Context, redisPath string) error {
	if err := os.MkdirAll(filepath.Join(h.dir, "logs"), 0o700); err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	var err error
	if h.redisPort, err = freePort(); err != nil {
		return err
	}
	h.redis = &proc{name: "redis-server", path: redisPath, log: filepath.Join(h.dir, "logs", "redis-server.log"),
		args: []string{"--port", fmt.Sprint(h.redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", h.dir, "--loglevel", "warning"}}
	if err := h.redis.start(); err != nil {
		return err
	}
	if err := waitDial(ctx, hostPort(h.redisPort), 10*time.Second); err != nil {
		return err
	}
	h.rdb = redis.NewClient(&redis.Options{Addr: hostPort(h.redisPort), DB: 0})

	if h.natsPort, err = freePort(); err != nil {
		return err
	}
	conf, err := h.natsConfig()
	if err != nil {
		return err
	}
	h.nats = h.newProc("nats-server", "nats-server", []string{"-c", conf}, nil)
	if err := h.nats.start(); err != nil {
		return err
	}
	if err := h.waitNATS(ctx); err != nil {
		return err
	}
	// The harness's own checks (stream info, reading the record, the
	// rebuild) connect as the operators' admin user.
	opts, err := h.natsOptions(natsauth.Admin)
	if err != nil {
		return err
	}
	nc, err := bus.Connect(h.natsURL(), "feedloop-chaos", opts...)
	if err != nil {
		return err
	}
	if h.bus, err = bus.New(nc, bus.WithLogger(slog.New(slog.DiscardHandler))); err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return h.bus.EnsureStreams(sctx, bus.StreamsConfig{})
}

func (h *harness) natsURL() string { return "nats://" + hostPort(h.natsPort) }

// natsConfig generates the NATS users as `feedloop nats-config` does (a
// seed per service, the poison source and admin; teams from the example
// routes) and writes a nats-server.conf that includes their auth.conf,
// as a deployment runs it. It returns the config file.
func (h *harness) natsConfig() (string, error) {
	tree, err := routing.Load(filepath.Join(h.root, "deploy", "examples", "routes.yaml"))
	if err != nil {
		return "", fmt.Errorf("chaos: routes: %w", err)
	}
	dir := filepath.Join(h.dir, "nats")
	spec := natsauth.Spec{Sources: []string{PoisonSource}, Teams: tree.Teams(), ManageStreams: true}
	if h.natsUsers, err = natsauth.Generate(dir, spec); err != nil {
		return "", fmt.Errorf("chaos: %w", err)
	}
	conf := filepath.Join(dir, "nats-server.conf")
	// include takes a path relative to the including file.
	text := fmt.Sprintf("server_name: chaos\nlisten: %s\njetstream {\n  store_dir: %q\n}\ninclude %s\n",
		hostPort(h.natsPort), filepath.Join(h.dir, "jetstream"), natsauth.ServerConfigName)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return "", fmt.Errorf("chaos: %w", err)
	}
	return conf, nil
}

// natsOptions are the connection options of a generated NATS user.
func (h *harness) natsOptions(user string) ([]nats.Option, error) {
	u, ok := h.natsUsers.Get(user)
	if !ok {
		return nil, fmt.Errorf("chaos: no NATS user %s", user)
	}
	opts, err := u.Options()
	if err != nil {
		return nil, fmt.Errorf("chaos: NATS user %s: %w", user, err)
	}
	return opts, nil
}

// seedFile is the NATS_NKEY_SEED_FILE of a generated user.
func (h *harness) seedFile(user string) string {
	u, _ := h.natsUsers.Get(user)
	return u.SeedFile
}

// intakeKeys writes the INTAKE_API_KEYS_FILE: one generated key for the
// driver's source, of which the file holds only the hash, as in a
// deployment.
func (h *harness) intakeKeys() (string, error) {
	key, err := apikey.Generate()
	if err != nil {
		return "", fmt.Errorf("chaos: %w", err)
	}
	h.apiKey = key
	file := filepath.Join(h.dir, "intake-keys.yaml")
	text := "keys:\n  " + access.Line(Source, "chaos-driver", apikey.Hash(key), time.Time{}) + "\n"
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		return "", fmt.Errorf("chaos: %w", err)
	}
	return file, nil
}

// waitNATS waits until nats-server takes connections and JetStream answers
// (after a restart it first recovers its store).
func (h *harness) waitNATS(ctx context.Context) error {
	if err := waitDial(ctx, hostPort(h.natsPort), 30*time.Second); err != nil {
		return err
	}
	if h.bus == nil {
		return nil
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := h.bus.JetStream().Stream(cctx, bus.StreamFeedback)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("chaos: JetStream not back after a restart: %w", err)
		}
		if !sleep(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
}

func (h *harness) startServices(ctx context.Context) error {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	h.secret = []byte(hex.EncodeToString(secret))
	var err error
	if h.sink, err = newSink(h.secret); err != nil {
		return err
	}
	examples := filepath.Join(h.root, "deploy", "examples")
	teams := filepath.Join(h.dir, "teams.yaml")
	if err := os.WriteFile(teams, []byte("teams:\n  default:\n    - type: webhook\n      url: "+h.sink.teamURL()+"\n"), 0o600); err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	common := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"NATS_URL=" + h.natsURL(),
		"REDIS_URL=redis://" + hostPort(h.redisPort) + "/0",
		// An empty METRICS_ADDR takes the default :9464 (caarlos0/env
		// treats empty as unset), so each process gets a port of its own.
		"METRICS_ADDR=127.0.0.1:0",
		"LOG_LEVEL=warn",
		"OTEL_TRACES_EXPORTER=none",
		"OTEL_METRICS_EXPORTER=none",
	}
	env := func(extra ...string) []string { return append(append([]string{}, common...), extra...) }
	port := func() (string, error) {
		p, err := freePort()
		return hostPort(p), err
	}
	intakeGRPC, err := port()
	if err != nil {
		return err
	}
	intakeHTTP, err := port()
	if err != nil {
		return err
	}
	h.intakeAdr = intakeGRPC
	keys, err := h.intakeKeys()
	if err != nil {
		return err
	}
	h.services = append(h.services, h.newProc("intake", "intake", nil, env(
		"NATS_NKEY_SEED_FILE="+h.seedFile(natsauth.Intake),
		"INTAKE_GRPC_ADDR="+intakeGRPC, "INTAKE_HTTP_ADDR="+intakeHTTP,
		"INTAKE_API_KEYS_FILE="+keys, "INTAKE_RATE_LIMIT="+IntakeRateLimit)))
	for i := 1; i <= 2; i++ {
		h.services = append(h.services, h.newProc(fmt.Sprintf("classifier-%d", i), "classifier", nil, env(
			"NATS_NKEY_SEED_FILE="+h.seedFile(natsauth.Classifier),
			"CLASSIFIER_RULES_FILE="+filepath.Join(examples, "rules.yaml"))))
	}
	for i := 1; i <= 2; i++ {
		g, err := port()
		if err != nil {
			return err
		}
		ht, err := port()
		if err != nil {
			return err
		}
		h.services = append(h.services, h.newProc(fmt.Sprintf("router-%d", i), "router", nil, env(
			"NATS_NKEY_SEED_FILE="+h.seedFile(natsauth.Router),
			"ROUTER_ROUTES_FILE="+filepath.Join(examples, "routes.yaml"),
			"ROUTER_GRPC_ADDR="+g, "ROUTER_HTTP_ADDR="+ht)))
	}
	h.services = append(h.services, h.newProc("notifier", "notifier", nil, env(
		"NATS_NKEY_SEED_FILE="+h.seedFile(natsauth.Notifier),
		"NOTIFIER_TEMPLATES_DIR="+filepath.Join(examples, "templates"),
		"NOTIFIER_TEAMS_FILE="+teams,
		"NOTIFIER_CUSTOMER_WEBHOOK_URL="+h.sink.customerURL(),
		"NOTIFIER_WEBHOOK_SECRET="+string(h.secret),
		// One customer per item, and no cap: every acknowledgement is due now.
		"NOTIFIER_CUSTOMER_DAILY_CAP=0")))
	for _, p := range h.services {
		if err := p.start(); err != nil {
			return err
		}
	}
	if err := waitDial(ctx, intakeGRPC, 60*time.Second); err != nil {
		return fmt.Errorf("%w (see %s)", err, h.services[0].log)
	}
	if err := h.waitConsumers(ctx, 60*time.Second); err != nil {
		return err
	}
	h.faulting = map[*proc]bool{}
	h.superv = make(chan struct{})
	go h.supervise()
	h.progress("running: nats-server :%d, redis-server :%d, intake %s, 2 classifiers, 2 routers, notifier", h.natsPort, h.redisPort, intakeGRPC)
	return nil
}

// durables are the consumers whose lag quiescence waits for.
var durables = []struct{ stream, name string }{
	{bus.StreamSubmit, "intake"},
	{bus.StreamFeedback, classifier.Durable},
	{bus.StreamFeedback, "router"},
	{bus.StreamFeedback, router.ProjectorDurable},
	{bus.StreamFeedback, notifier.Durable},
}

// waitConsumers waits until every service has created its consumer.
func (h *harness) waitConsumers(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, d := range durables {
		for {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := h.bus.JetStream().Consumer(cctx, d.stream, d.name)
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("chaos: consumer %s on %s not created within %s (see the logs in %s): %w", d.name, d.stream, timeout, filepath.Join(h.dir, "logs"), err)
			}
			if !sleep(ctx, 100*time.Millisecond) {
				return ctx.Err()
			}
		}
	}
	return nil
}

// supervise starts again any service that ended without the harness
// killing it, as Kubernetes would, and records it: a service must survive
// its dependencies' faults (e.g. exit and be restarted when NATS is gone
// at start), but the run reports every such exit.
func (h *harness) supervise() {
	defer close(h.superv)
	for {
		time.Sleep(250 * time.Millisecond)
		h.mu.Lock()
		if h.stopping {
			h.mu.Unlock()
			return
		}
		for _, p := range h.services {
			if h.faulting[p] || p.alive() {
				continue
			}
			h.res.UnexpectedExits = append(h.res.UnexpectedExits, fmt.Sprintf("%s at %.1fs: %s", p.name, time.Since(h.start).Seconds(), p.state()))
			_ = p.start()
		}
		h.mu.Unlock()
	}
}

func (h *harness) setFaulting(p *proc, on bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faulting[p] = on
}

func (h *harness) service(name string) *proc {
	for _, p := range h.services {
		if p.name == name {
			return p
		}
	}
	panic("chaos: no service " + name)
}

// FaultNames name the faults of the schedule, in order.
var FaultNames = []string{"notifier", "intake", "classifier", "router", "nats", "flush"}

// fault is one fault of the schedule, injected once the driver has had
// at (a fraction) of the items accepted, or, with ready, once ready says so.
type fault struct {
	at        float64
	key, name string
	do        func(ctx context.Context) error
	ready     func() bool
}

// due reports whether f may be injected now.
func (f fault) due(submitted int64, items int) bool {
	if f.ready != nil {
		return f.ready()
	}
	return submitted >= int64(f.at*float64(items))
}

// notifierBusy is how many customer acknowledgements the sink must have
// received before the notifier is killed: it is then sending, with
// deliveries claimed and in flight.
const notifierBusy = 10

// faultDueTimeout bounds the wait for the faults still to come once every
// item was accepted.
const faultDueTimeout = 2 * time.Minute

func (h *harness) schedule() []fault {
	kill := func(name string) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			p := h.service(name)
			h.setFaulting(p, true)
			defer h.setFaulting(p, false)
			p.kill()
			sleep(ctx, 500*time.Millisecond)
			return p.start()
		}
	}
	return []fault{
		// The notifier first, as soon as it is sending: a SIGKILLed notifier's
		// claims hold its deliveries for the claim TTL (2 min) and its
		// consumer's redelivery schedule after that, which no run can end
		// before; killed early, that wait passes while the rest runs.
		{ready: func() bool { return h.sink.customerDeliveries() >= notifierBusy }, key: "notifier", name: "SIGKILL notifier", do: kill("notifier")},
		{at: 0.20, key: "intake", name: "SIGKILL intake", do: kill("intake")},
		{at: 0.30, key: "classifier", name: "SIGKILL classifier-1", do: kill("classifier-1")},
		{at: 0.40, key: "router", name: "SIGKILL router-1", do: kill("router-1")},
		{at: 0.50, key: "nats", name: "SIGKILL nats-server, restart on the same store and port", do: func(ctx context.Context) error {
			h.nats.kill()
			sleep(ctx, time.Second)
			if err := h.nats.start(); err != nil {
				return err
			}
			return h.waitNATS(ctx)
		}},
		{at: 0.60, key: "flush", name: "FLUSHALL redis", do: func(ctx context.Context) error {
			return h.rdb.FlushAll(ctx).Err()
		}},
	}
}

func (h *harness) runLoad(ctx context.Context) error {
	conn, err := dialIntake(h.intakeAdr)
	if err != nil {
		return fmt.Errorf("chaos: intake client: %w", err)
	}
	defer conn.Close()
	opts, err := h.natsOptions(natsauth.SourceUser(PoisonSource))
	if err != nil {
		return err
	}
	pnc, err := bus.Connect(h.natsURL(), "feedloop-chaos-"+PoisonSource, opts...)
	if err != nil {
		return err
	}
	defer pnc.Close()
	pjs, err := jetstream.New(pnc)
	if err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	d := &driver{
		run: runID(), items: h.o.Items, concurrency: h.o.Concurrency, rate: h.o.Rate, poisonEvery: 100,
		intake: feedloopv1.NewIntakeServiceClient(conn), apiKey: h.apiKey, poisonJS: pjs, ids: map[string]int{},
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()

	faultsDone := make(chan error, 1)
	var waitingFor atomic.Pointer[string] // the fault not yet due
	go func() {
		for _, f := range h.schedule() {
			if slices.Contains(h.o.Skip, f.key) {
				continue
			}
			waitingFor.Store(&f.name)
			for !f.due(d.submitted.Load(), h.o.Items) {
				if !sleep(lctx, 20*time.Millisecond) {
					faultsDone <- lctx.Err()
					return
				}
			}
			at := time.Since(h.start).Seconds()
			h.progress("fault: %s (at %d submitted)", f.name, d.submitted.Load())
			if err := f.do(lctx); err != nil {
				faultsDone <- fmt.Errorf("chaos: fault %s: %w", f.name, err)
				return
			}
			h.mu.Lock()
			h.res.Faults = append(h.res.Faults, fmt.Sprintf("%.1fs %s", at, f.name))
			h.mu.Unlock()
		}
		faultsDone <- nil
	}()
	ticker := time.NewTicker(5 * time.Second)
	defer ticker.Stop()
	loadDone := make(chan struct{})
	go func() { d.drive(lctx); close(loadDone) }()
	report := func() {
		h.progress("submitted %d/%d, retries %d, rate-limited %d, poison %d", d.submitted.Load(), h.o.Items, d.retries.Load(), d.rateLimited.Load(), d.poisonSent.Load())
	}
	for loadDone != nil {
		select {
		case <-loadDone:
			loadDone = nil
		case <-ticker.C:
			report()
		}
	}
	report()
	if err := d.err(); err != nil {
		return err
	}
	// A fault waiting on the pipeline (the notifier's, on its first
	// messages) is due soon after the load at the latest; if it never is,
	// the pipeline is broken and the logs say why.
	select {
	case err := <-faultsDone:
		if err != nil {
			return err
		}
	case <-time.After(faultDueTimeout):
		name := "?"
		if p := waitingFor.Load(); p != nil {
			name = *p
		}
		return fmt.Errorf("chaos: fault %q not due %s after the last item was accepted (the customer sink has %d messages, %d bad requests)",
			name, faultDueTimeout, h.sink.customerDeliveries(), h.sink.badRequests())
	}
	h.ids = d.feedbackIDs()
	h.res.Submitted = len(h.ids)
	h.res.SubmitRetries = int(d.retries.Load())
	h.res.RateLimitedRetries = int(d.rateLimited.Load())
	h.res.ResubmissionsDuplicate = int(d.duplicates.Load())
	h.res.PoisonSent = int(d.poisonSent.Load())
	return ctx.Err()
}

// quiesce waits until no consumer has anything pending or unacknowledged
// and the stream has stopped growing, for three checks a second apart.
func (h *harness) quiesce(ctx context.Context) bool {
	deadline := time.Now().Add(h.o.QuiesceTimeout)
	stable, last := 0, uint64(0)
	lastReport := time.Now()
	for time.Now().Before(deadline) {
		busy := ""
		var lag uint64
		for _, d := range durables {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			c, err := h.bus.JetStream().Consumer(cctx, d.stream, d.name)
			if err == nil {
				info, ierr := c.Info(cctx)
				err = ierr
				if err == nil && (info.NumPending > 0 || info.NumAckPending > 0) {
					busy = d.name
					lag += info.NumPending + uint64(info.NumAckPending)
				}
			}
			cancel()
			if err != nil {
				busy = d.name + " (" + err.Error() + ")"
			}
		}
		var seq uint64
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if st, err := h.bus.JetStream().Stream(cctx, bus.StreamFeedback); err == nil {
			if info, err := st.Info(cctx); err == nil {
				seq = info.State.LastSeq
			}
		}
		cancel()
		if busy == "" && seq == last && seq > 0 {
			stable++
			if stable >= 3 {
				return true
			}
		} else {
			stable = 0
		}
		last = seq
		if time.Since(lastReport) > 5*time.Second {
			lastReport = time.Now()
			h.progress("waiting for the consumers: %s busy, %d messages behind, stream at %d", busy, lag, seq)
		}
		if !sleep(ctx, time.Second) {
			return false
		}
	}
	return false
}

func (h *harness) verify(ctx context.Context) error {
	h.progress("all %d items accepted; waiting for quiescence (at most %s)", h.res.Submitted, h.o.QuiesceTimeout)
	h.res.Quiescent = h.quiesce(ctx)
	h.mu.Lock()
	h.stopping = true
	h.mu.Unlock()
	<-h.superv

	tree, err := routing.Load(filepath.Join(h.root, "deploy", "examples", "routes.yaml"))
	if err != nil {
		return fmt.Errorf("chaos: routes: %w", err)
	}
	rec, err := readRecord(ctx, h.bus.JetStream())
	if err != nil {
		return err
	}
	h.res.Events = rec.events
	rf := checkRoutes(tree, h.ids, rec, h.sink)
	h.res.MissingRoutes, h.res.Unclassified = rf.missing, rf.unclassified
	h.res.RoutedExtra, h.res.TeamAlertsDuplicate = rf.streamExtra, rf.sinkDuplicates
	mf := checkMessages(h.ids, h.sink)
	h.res.MissingMessages, h.res.DuplicateMessages, h.res.ResentSameKey = mf.missing, mf.duplicates, mf.resentSameKey
	h.res.examples = append(rf.examples, mf.examples...)
	if n := h.sink.badRequests(); n > 0 {
		h.res.examples = append(h.res.examples, fmt.Sprintf("%d webhook requests with a bad signature or body", n))
	}

	poison, other, err := deadLetters(ctx, h.bus.JetStream())
	if err != nil {
		return err
	}
	h.res.DeadLettered, h.res.DeadLettersOther = len(poison), other
	if h.res.DeadLettersOther == nil {
		h.res.DeadLettersOther = []string{}
	}
	if h.res.UnexpectedExits == nil {
		h.res.UnexpectedExits = []string{}
	}

	// The services stop first (gracefully) so nothing writes while the read
	// model is compared.
	h.stopServices()
	fresh := redis.NewClient(&redis.Options{Addr: hostPort(h.redisPort), DB: 1})
	defer fresh.Close()
	h.progress("rebuilding the read model from the stream into redis db 1 and comparing")
	diff, err := compareReadModel(ctx, h.bus, h.rdb, fresh, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	h.res.ReadModelEqual, h.res.readModelDiff = diff == "", diff
	return nil
}

func (h *harness) stopServices() {
	var wg sync.WaitGroup
	for _, p := range h.services {
		wg.Go(func() { p.stop(20 * time.Second) })
	}
	wg.Wait()
}

func (h *harness) close() {
	if h.superv != nil {
		h.mu.Lock()
		h.stopping = true
		h.mu.Unlock()
		<-h.superv
	}
	h.stopServices()
	if h.sink != nil {
		h.sink.close()
	}
	if h.bus != nil {
		h.bus.Conn().Close()
	}
	if h.rdb != nil {
		_ = h.rdb.Close()
	}
	if h.nats != nil {
		h.nats.stop(10 * time.Second)
	}
	if h.redis != nil {
		h.redis.stop(10 * time.Second)
	}
	if !h.keep {
		_ = os.RemoveAll(h.dir)
	}
}

// String is a short human summary of r.
func (r *Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "feedloop chaos: %d items, %d events, %.0fs\n", r.Items, r.Events, r.DurationS)
	for _, f := range r.Faults {
		fmt.Fprintf(&b, "  fault  %s\n", f)
	}
	for _, e := range r.UnexpectedExits {
		fmt.Fprintf(&b, "  exit   %s\n", e)
	}
	fmt.Fprintf(&b, "  submitted %d (retries %d, rate-limited retries %d, answered duplicate %d)\n", r.Submitted, r.SubmitRetries, r.RateLimitedRetries, r.ResubmissionsDuplicate)
	fmt.Fprintf(&b, "  missing routes %d, customer acknowledgements duplicate %d missing %d (resent under the same key %d)\n", r.MissingRoutes, r.DuplicateMessages, r.MissingMessages, r.ResentSameKey)
	fmt.Fprintf(&b, "  poison sent %d, dead-lettered %d, other dead letters %d\n", r.PoisonSent, r.DeadLettered, len(r.DeadLettersOther))
	fmt.Fprintf(&b, "  read model equal to a rebuild: %v; team alerts duplicate %d; routed events extra %d\n", r.ReadModelEqual, r.TeamAlertsDuplicate, r.RoutedExtra)
	for _, f := range r.Failures() {
		fmt.Fprintf(&b, "  FAIL   %s\n", f)
	}
	for _, e := range r.examples {
		fmt.Fprintf(&b, "         %s\n", e)
	}
	for _, e := range r.DeadLettersOther {
		fmt.Fprintf(&b, "  dlq    %s\n", e)
	}
	if r.RunDir != "" {
		fmt.Fprintf(&b, "  logs and store kept in %s\n", r.RunDir)
	}
	return b.String()
}

func runID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
