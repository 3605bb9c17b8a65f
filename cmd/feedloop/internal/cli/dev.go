package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/feedloop/feedloop/cmd/feedloop/internal/stack"
	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/pkg/natsauth"
	"github.com/feedloop/feedloop/pkg/telemetry"
	"github.com/feedloop/feedloop/services/classifier/classify"
	"github.com/feedloop/feedloop/services/classifier/model"
	"github.com/feedloop/feedloop/services/intake/access"
)

type devOpts struct {
	data, examples, grpcAddr, httpAddr, logLevel string
	routerGRPCAddr, routerHTTPAddr, metricsAddr  string
	consoleAddr, smtpAddr                        string
	topicModel, sentimentModel                   string
	apiKeys                                      string
	natsPort                                     int
	natsAuth                                     bool
}

// devTokensFile is where dev writes the hashes of its team tokens, under
// the data directory.
const devTokensFile = stack.TeamTokensFile

func newDevCmd() *cobra.Command {
	o := &devOpts{}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run every service and the web console in one process with an embedded NATS",
		Long: `Run intake, classifier, router, notifier and the web console in one
process on an embedded nats-server (JetStream on disk under --data) and
Redis from REDIS_URL, or an in-process Redis-compatible server when
REDIS_URL is unset (Redis only holds state that can be rebuilt from the
stream). Rules, routes and templates come from --examples.

The console (--console-addr) has a one-click sign-in link per team of the
example routes, printed at start, and a mailbox page: every customer and
team email goes to the dev mailbox, an SMTP server on --smtp-addr (loopback
only) keeping the latest 1,000 messages in memory. A line per message is
printed here too. Customer messages link to the status pages the router
serves on --router-http-addr.

The first start makes a development token for each team, kept under --data
(dev-team-tokens.yaml, their hashes in team-tokens.yaml) so they stay the
same at every start on the same --data; the export lines printed play a
team with 'feedloop inbox'.

NATS runs with authorization, as deployed: every service connects with its
own NKey and permissions, generated once under --data/nats-auth (see
'feedloop nats-config'), with a user per source system (helpdesk, survey,
appstore, crm) and an admin user. --nats-auth=false turns it off.

--topic-model and --sentiment-model load trained models ('feedloop
classifier train') as the classifier service's CLASSIFIER_TOPIC_MODEL and
CLASSIFIER_SENTIMENT_MODEL do (which are their defaults): rules still win
where one matches, and a replaced file is reloaded without a restart.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	f := cmd.Flags()
	f.StringVar(&o.data, "data", ".feedloop", "directory for JetStream's files")
	f.StringVar(&o.examples, "examples", "deploy/examples", "directory with rules.yaml, routes.yaml and templates/")
	f.StringVar(&o.grpcAddr, "grpc-addr", "127.0.0.1:7001", "intake gRPC address (port 0 picks a free port)")
	f.StringVar(&o.httpAddr, "http-addr", "127.0.0.1:7002", "intake HTTP address (port 0 picks a free port)")
	f.StringVar(&o.routerGRPCAddr, "router-grpc-addr", defaultTeamServer, "router gRPC address: the team API (port 0 picks a free port)")
	f.StringVar(&o.routerHTTPAddr, "router-http-addr", "127.0.0.1:7004", "router HTTP address: customer status pages (port 0 picks a free port)")
	f.StringVar(&o.metricsAddr, "metrics-addr", "127.0.0.1:9464", "Prometheus /metrics address for every service (empty: none)")
	f.StringVar(&o.consoleAddr, "console-addr", "127.0.0.1:7006", "web console address, with one-click sign-in per team and the dev mailbox (port 0 picks a free port)")
	f.StringVar(&o.smtpAddr, "smtp-addr", "127.0.0.1:7025", "the dev mailbox's SMTP address, loopback only: every customer and team email goes there (port 0 picks a free port)")
	f.IntVar(&o.natsPort, "nats-port", 0, "embedded NATS port (0 picks a free port)")
	f.BoolVar(&o.natsAuth, "nats-auth", true, "NATS users with least permissions, one per service (generated under --data/nats-auth)")
	f.StringVar(&o.logLevel, "log-level", "warn", "debug, info, warn or error")
	f.StringVar(&o.topicModel, "topic-model", os.Getenv("CLASSIFIER_TOPIC_MODEL"), "trained topic model file (default $CLASSIFIER_TOPIC_MODEL; empty: rules only)")
	f.StringVar(&o.apiKeys, "api-keys", os.Getenv("INTAKE_API_KEYS_FILE"), "intake API keys file (default $INTAKE_API_KEYS_FILE; 'feedloop intake key' makes keys): submissions over gRPC and HTTP then need a key, as deployed; empty: none needed")
	f.StringVar(&o.sentimentModel, "sentiment-model", os.Getenv("CLASSIFIER_SENTIMENT_MODEL"), "trained sentiment model file, labels negative/neutral/positive (default $CLASSIFIER_SENTIMENT_MODEL)")
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
	if err := checkModels(o.topicModel, o.sentimentModel); err != nil {
		return &exitError{2, err}
	}
	if o.apiKeys != "" {
		raw, err := os.ReadFile(o.apiKeys)
		if err == nil {
			_, err = access.Parse(raw)
		}
		if err != nil {
			return &exitError{2, fmt.Errorf("--api-keys %s: %w", o.apiKeys, err)}
		}
	}
	tree, err := loadTree(filepath.Join(o.examples, "routes.yaml"))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.data, 0o700); err != nil {
		return fmt.Errorf("--data: %w", err)
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
	if !o.natsAuth {
		cfg.NATSAuthDir = ""
	}
	cfg.RedisURL = os.Getenv("REDIS_URL")
	cfg.Intake.GRPCAddr, cfg.Intake.HTTPAddr = o.grpcAddr, o.httpAddr
	cfg.Router.GRPCAddr, cfg.Router.HTTPAddr = o.routerGRPCAddr, o.routerHTTPAddr
	cfg.MetricsAddr = o.metricsAddr
	cfg.Classifier.TopicModel, cfg.Classifier.SentimentModel = o.topicModel, o.sentimentModel
	cfg.Intake.APIKeysFile = o.apiKeys
	cfg.MailboxAddr = o.smtpAddr
	cfg.Console.HTTPAddr = o.consoleAddr
	dev, err := stack.PrepareDev(&cfg, tree.Teams())
	if err != nil {
		return err
	}
	// The mailbox has every message; a line per message here still shows
	// the loop moving while one works in the browser.
	cfg.Notifier.Console = true
	cfg.Notifier.ConsoleOutput = out
	cfg.Log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))

	s, err := stack.Start(ctx, cfg)
	if err != nil {
		return err
	}
	ends := stack.DevEndpoints{NATSURL: s.NATS.ClientURL()}
	if u, ok := s.NATSUsers.Get(natsauth.Tools); ok {
		if ends.ToolsSeed, err = filepath.Abs(u.SeedFile); err != nil {
			return err
		}
	}
	if err := stack.WriteDevEndpoints(o.data, ends); err != nil {
		return fmt.Errorf("--data: %w", err)
	}
	printBanner(out, s, o.data, cfg.RedisURL == "", dev)
	return s.Run(ctx)
}

func printBanner(w io.Writer, s *stack.Stack, data string, inProcessRedis bool, dev *stack.Dev) {
	devData := ""
	if filepath.Clean(data) != ".feedloop" {
		devData = " --dev-data " + data
	}
	redisLine := s.RedisURL
	if inProcessRedis {
		redisLine += "  (in-process; set REDIS_URL to use your own)"
	}
	http := s.Intake.HTTPAddr()
	teamAPI := stack.Reachable(s.Router.GRPCAddr())
	fmt.Fprintf(w, "feedloop dev is running — Ctrl-C to stop\n\n  console  %s\n", s.Console.URL())
	for _, team := range dev.Teams {
		fmt.Fprintf(w, "  open %s to work as %s\n", s.Console.DevSignInURL(team), team)
	}
	fmt.Fprintf(w, "  mailbox  %s/dev/mailbox  (what customers and teams were sent)\n", s.Console.URL())
	fmt.Fprintf(w, `
  intake gRPC   %s
  intake HTTP   http://%s/v1/feedback
  team API      %s  (gRPC, for the console and feedloop inbox)
  status pages  %s/<token>  (linked from customer messages)
  SMTP          %s  (the dev mailbox: every email goes there)
  metrics       %s
  models        %s
  NATS          %s  (JetStream files in %s)
  Redis         %s

Try it: submit an item, open the billing link above, and work it to
resolution; the mailbox shows what the customer got at each step
(deliveries are printed below too):

  curl -sS -X POST http://%s/v1/feedback -H 'Content-Type: application/json' \
    -d '{"source":"helpdesk","externalId":"demo-1","channel":"CHANNEL_EMAIL","customer":{"name":"Ada","email":"ada@example.com","locale":"en","consent":{"contact":true,"survey":true}},"text":"I was charged twice for my order and the app crashes when I open the invoice."}'

  feedloop submit --server %s --source helpdesk --external-id demo-2 --email ada@example.com --consent --survey-consent --nps 3 --text "Delivery was late again"

Or play a team from a shell (get the CLI with 'go install ./cmd/feedloop',
or 'make build' and ./bin on PATH); --as reads that team's development
token (the same at every start on this --data) from %s:

  export %s=%s
  feedloop inbox list --as billing%s
  feedloop inbox ack ID --as billing%s
  feedloop inbox plan ID --as billing%s --due +14d --customer-message "We refund the second charge."

`, s.Intake.GRPCAddr(), http, teamAPI, s.StatusURL, s.Mailbox.Addr(), metricsLine(s), modelsLine(s), s.NATS.ClientURL(), data, redisLine, http, s.Intake.GRPCAddr(),
		dev.TokensFile, envServer, teamAPI, devData, devData, devData)
	fmt.Fprintln(w)
	if u, ok := s.NATSUsers.Get(natsauth.Admin); ok {
		fmt.Fprintf(w, `NATS has a user per service and source system; the seeds are in %s
(admin: %s; a source publishes with its own seed and inbox prefix %s).

`, filepath.Dir(u.SeedFile), u.SeedFile, natsauth.InboxPrefix(natsauth.SourceUser("<source>")))
	}
}

// checkModels loads the model files dev was given, so that a wrong path or
// file is a usage error naming its flag before anything starts.
func checkModels(topic, sentiment string) error {
	var errs []error
	for _, m := range []struct {
		flag, path string
		check      func(*model.Model) error
	}{
		{"--topic-model", topic, func(*model.Model) error { return nil }},
		{"--sentiment-model", sentiment, classify.CheckSentimentModel},
	} {
		if m.path == "" {
			continue
		}
		mod, err := model.LoadFile(m.path)
		if err == nil {
			err = m.check(mod)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", m.flag, m.path, err))
		}
	}
	if topic != "" && topic == sentiment {
		errs = append(errs, fmt.Errorf("--sentiment-model: is the same file as --topic-model (%s)", topic))
	}
	return errors.Join(errs...)
}

func modelsLine(s *stack.Stack) string {
	var parts []string
	if v := s.Classifier.TopicModelVersion(); v != "" {
		parts = append(parts, "topic "+v)
	}
	if v := s.Classifier.SentimentModelVersion(); v != "" {
		parts = append(parts, "sentiment "+v)
	}
	if len(parts) == 0 {
		return "none: rules only (--topic-model, --sentiment-model)"
	}
	return strings.Join(parts, ", ") + "  (rules win where one matches)"
}

func metricsLine(s *stack.Stack) string {
	if s.MetricsAddr() == "" {
		return "off (--metrics-addr)"
	}
	return "http://" + stack.Reachable(s.MetricsAddr()) + "/metrics"
}
