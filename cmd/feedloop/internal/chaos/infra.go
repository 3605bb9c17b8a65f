package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/natsauth"
	"github.com/feedloop/feedloop/services/router/routing"
)

func (h *harness) startInfra(ctx context.Context, redisPath string) error {
	if err := os.MkdirAll(filepath.Join(h.dir, "logs"), 0o700); err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	h.redis = &proc{name: "redis-server", path: redisPath, log: filepath.Join(h.dir, "logs", "redis-server.log")}
	h.redis.withPort = func(port int) error {
		h.redis.args = []string{"--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", h.dir, "--loglevel", "warning"}
		return nil
	}
	if err := h.launch(ctx, h.redis, 10*time.Second); err != nil {
		return err
	}
	h.redisPort = h.redis.port
	h.rdb = redis.NewClient(&redis.Options{Addr: hostPort(h.redisPort), DB: 0})

	if err := h.natsAuth(); err != nil {
		return err
	}
	conf := filepath.Join(h.dir, "nats", "nats-server.conf")
	h.nats = h.newProc("nats-server", "nats-server", []string{"-c", conf}, nil)
	h.nats.withPort = func(port int) error { return h.writeNATSConfig(conf, port) }
	if err := h.launch(ctx, h.nats, 30*time.Second); err != nil {
		return err
	}
	h.natsPort = h.nats.port
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

// natsAuth generates the NATS users as `feedloop nats-config` does (a
// seed per service, the poison source and admin; teams from the example
// routes) into the nats directory of the run, beside their auth.conf.
func (h *harness) natsAuth() error {
	tree, err := routing.Load(filepath.Join(h.root, "deploy", "examples", "routes.yaml"))
	if err != nil {
		return fmt.Errorf("chaos: routes: %w", err)
	}
	spec := natsauth.Spec{Sources: []string{PoisonSource}, Teams: tree.Teams(), ManageStreams: true}
	if h.natsUsers, err = natsauth.Generate(filepath.Join(h.dir, "nats"), spec); err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	return nil
}

// writeNATSConfig writes the nats-server.conf conf, listening on port and
// including the users' auth.conf (beside it), as a deployment runs it.
func (h *harness) writeNATSConfig(conf string, port int) error {
	// include takes a path relative to the including file.
	text := fmt.Sprintf("server_name: chaos\nlisten: %s\njetstream {\n  store_dir: %q\n}\ninclude %s\n",
		hostPort(port), filepath.Join(h.dir, "jetstream"), natsauth.ServerConfigName)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	return nil
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

// waitJetStream waits until JetStream answers again after a restart of
// nats-server (it first recovers its store).
func (h *harness) waitJetStream(ctx context.Context) error {
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
