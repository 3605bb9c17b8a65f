package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/feedloop/feedloop/cmd/feedloop/internal/stack"
	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/pkg/telemetry"
)

type devOpts struct {
	data, examples, grpcAddr, httpAddr, logLevel string
	natsPort                                     int
}

func newDevCmd() *cobra.Command {
	o := &devOpts{}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run all four services in one process with an embedded NATS",
		Long: `Run intake, classifier, router and notifier in one process on an embedded
nats-server (JetStream on disk under --data) and Redis from REDIS_URL, or an
in-process Redis-compatible server when REDIS_URL is unset (Redis only holds
state that can be rebuilt from the stream). Rules, routes and templates come
from --examples. With no webhook or SMTP configured, every customer and team
message is printed here.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	f := cmd.Flags()
	f.StringVar(&o.data, "data", ".feedloop", "directory for JetStream's files")
	f.StringVar(&o.examples, "examples", "deploy/examples", "directory with rules.yaml, routes.yaml and templates/")
	f.StringVar(&o.grpcAddr, "grpc-addr", "127.0.0.1:7001", "intake gRPC address (port 0 picks a free port)")
	f.StringVar(&o.httpAddr, "http-addr", "127.0.0.1:7002", "intake HTTP address (port 0 picks a free port)")
	f.IntVar(&o.natsPort, "nats-port", 0, "embedded NATS port (0 picks a free port)")
	f.StringVar(&o.logLevel, "log-level", "warn", "debug, info, warn or error")
	return cmd
}

func (o *devOpts) run(cmd *cobra.Command) error {
	level, err := lifecycle.ParseLevel(o.logLevel)
	if err != nil {
		return &exitError{2, fmt.Errorf("--log-level: %w", err)}
	}
	if _, err := os.Stat(filepath.Join(o.examples, "routes.yaml")); err != nil {
		return &exitError{2, fmt.Errorf("--examples %s: no routes.yaml there (run from the repository root, or pass --examples)", o.examples)}
	}
	if o.natsPort < 0 || o.natsPort > 65535 {
		return &exitError{2, fmt.Errorf("--nats-port: must be 0..65535, got %d", o.natsPort)}
	}
	ctx := cmd.Context()
	shutdown, err := telemetry.Setup(ctx, "feedloop-dev")
	if err != nil {
		return err
	}
	defer func() { _ = shutdown(ctx) }()

	out := cmd.OutOrStdout()
	cfg := stack.DevConfig(o.examples, o.data)
	cfg.NATSPort = o.natsPort
	cfg.RedisURL = os.Getenv("REDIS_URL")
	cfg.Intake.GRPCAddr, cfg.Intake.HTTPAddr = o.grpcAddr, o.httpAddr
	cfg.Notifier.ConsoleOutput = out
	cfg.Log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))

	s, err := stack.Start(ctx, cfg)
	if err != nil {
		return err
	}
	printBanner(out, s, o.data, cfg.RedisURL == "")
	return s.Run(ctx)
}

func printBanner(w io.Writer, s *stack.Stack, data string, inProcessRedis bool) {
	redisLine := s.RedisURL
	if inProcessRedis {
		redisLine += "  (in-process; set REDIS_URL to use your own)"
	}
	http := s.Intake.HTTPAddr()
	fmt.Fprintf(w, `feedloop dev is running — Ctrl-C to stop

  intake gRPC  %s
  intake HTTP  http://%s/v1/feedback
  NATS         %s  (JetStream files in %s)
  Redis        %s

Try it (deliveries are printed below):

  curl -sS -X POST http://%s/v1/feedback -H 'Content-Type: application/json' \
    -d '{"source":"helpdesk","externalId":"demo-1","channel":"CHANNEL_EMAIL","customer":{"name":"Ada","email":"ada@example.com","locale":"en","consent":{"contact":true}},"text":"I was charged twice for my order and the app crashes when I open the invoice."}'

  feedloop submit --server %s --source helpdesk --external-id demo-2 --email ada@example.com --consent --nps 3 --text "Delivery was late again"

`, s.Intake.GRPCAddr(), http, s.NATS.ClientURL(), data, redisLine, http, s.Intake.GRPCAddr())
}
