package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/feedloop/feedloop/pkg/apikey"
	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/natsauth"
	"github.com/feedloop/feedloop/services/intake/access"
)

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

// startServices starts the sink and every service, and waits until intake
// listens and every consumer exists; then the supervisor watches them.
func (h *harness) startServices(ctx context.Context) error {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	h.secret = []byte(hex.EncodeToString(secret))
	var err error
	if h.sink, err = newSink(h.secret); err != nil {
		return err
	}
	if h.services, err = h.serviceProcs(); err != nil {
		return err
	}
	intake := h.services[0]
	for _, p := range h.services[1:] {
		if err := p.start(); err != nil {
			return err
		}
	}
	if err := h.launch(ctx, intake, 60*time.Second); err != nil {
		return err
	}
	h.intakeAdr = hostPort(intake.port)
	if err := h.waitConsumers(ctx, 60*time.Second); err != nil {
		return err
	}
	h.faulting = map[*proc]bool{}
	h.superv = make(chan struct{})
	go h.supervise()
	h.progress("running: nats-server :%d, redis-server :%d, intake %s, 2 classifiers, 2 routers, notifier", h.natsPort, h.redisPort, h.intakeAdr)
	return nil
}

// serviceProcs are the services' processes, intake first. Only intake's
// gRPC port is one a client (the driver) dials, so it is picked (see
// launch); every other listener binds port 0.
func (h *harness) serviceProcs() ([]*proc, error) {
	examples := filepath.Join(h.root, "deploy", "examples")
	teams := filepath.Join(h.dir, "teams.yaml")
	if err := os.WriteFile(teams, []byte("teams:\n  default:\n    - type: webhook\n      url: "+h.sink.teamURL()+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	keys, err := h.intakeKeys()
	if err != nil {
		return nil, err
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

	intakeEnv := env(
		"NATS_NKEY_SEED_FILE="+h.seedFile(natsauth.Intake),
		"INTAKE_HTTP_ADDR=127.0.0.1:0",
		"INTAKE_API_KEYS_FILE="+keys, "INTAKE_RATE_LIMIT="+IntakeRateLimit)
	intake := h.newProc("intake", "intake", nil, intakeEnv)
	intake.withPort = func(port int) error {
		intake.env = append(slices.Clip(intakeEnv), "INTAKE_GRPC_ADDR="+hostPort(port))
		return nil
	}
	procs := []*proc{intake}
	for i := 1; i <= 2; i++ {
		procs = append(procs, h.newProc(fmt.Sprintf("classifier-%d", i), "classifier", nil, env(
			"NATS_NKEY_SEED_FILE="+h.seedFile(natsauth.Classifier),
			"CLASSIFIER_RULES_FILE="+filepath.Join(examples, "rules.yaml"))))
	}
	for i := 1; i <= 2; i++ {
		procs = append(procs, h.newProc(fmt.Sprintf("router-%d", i), "router", nil, env(
			"NATS_NKEY_SEED_FILE="+h.seedFile(natsauth.Router),
			"ROUTER_ROUTES_FILE="+filepath.Join(examples, "routes.yaml"),
			"ROUTER_GRPC_ADDR=127.0.0.1:0", "ROUTER_HTTP_ADDR=127.0.0.1:0")))
	}
	procs = append(procs, h.newProc("notifier", "notifier", nil, env(
		"NATS_NKEY_SEED_FILE="+h.seedFile(natsauth.Notifier),
		"NOTIFIER_TEMPLATES_DIR="+filepath.Join(examples, "templates"),
		"NOTIFIER_TEAMS_FILE="+teams,
		"NOTIFIER_CUSTOMER_WEBHOOK_URL="+h.sink.customerURL(),
		"NOTIFIER_WEBHOOK_SECRET="+string(h.secret),
		// One customer per item, and no cap: every acknowledgement is due now.
		"NOTIFIER_CUSTOMER_DAILY_CAP=0")))
	return procs, nil
}

// durables are the consumers whose lag quiescence waits for.
var durables = []struct{ stream, name string }{
	{bus.StreamSubmit, bus.ConsumerIntake},
	{bus.StreamFeedback, bus.ConsumerClassifier},
	{bus.StreamFeedback, bus.ConsumerRouter},
	{bus.StreamFeedback, bus.ConsumerRouterProjector},
	{bus.StreamFeedback, bus.ConsumerNotifier},
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
