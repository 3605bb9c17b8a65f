package cli

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/feedloop/feedloop/cmd/feedloop/internal/chaos"
)

func newChaosCmd() *cobra.Command {
	var (
		o       chaos.Options
		jsonOut bool
	)
	cmd := &cobra.Command{
		Use:   "chaos",
		Short: "Run feedloop as separate processes under faults and check its guarantees",
		Long: `Build the four services and nats-server (go build, from the repository),
run them as separate OS processes on loopback — nats-server with JetStream,
a real redis-server (on PATH), intake, two classifiers, two routers and the
notifier — with the security of a deployment (a NATS NKey user per service,
intake API keys, intake's rate limit on) and drive --items items through the
gRPC intake, retrying Unavailable, and RESOURCE_EXHAUSTED after its RetryInfo
delay, under the same (source, external_id). During the run it kills
each service once with SIGKILL and starts it again, kills and restarts
nats-server on the same store and port, flushes Redis (FLUSHALL), and
publishes 1% poison messages to feedback.submit.chaos-poison. Then it waits
for every consumer to catch up and checks:

  missing_routes       items that did not reach every team their route names
                       (stream and team webhook): 0
  duplicate_messages   customer acknowledgements beyond one per item, as a
                       receiver honouring Idempotency-Key sees them: 0
  missing_messages     items without one: 0
  (resent_same_key     raw resends under the first delivery's key: reported)
  poison_sent = dead_lettered   (distinct poison on feedback.dlq.intake)
  read_model_equal     the router's Redis read model equals a rebuild from
                       the stream into another Redis database

Progress goes to stderr; the last line on stdout is one JSON object. The exit
code is 1 when an assertion fails (the run directory with every process's log
is then kept; --keep keeps it anyway). Run it from the repository.`,
		Example: `  feedloop chaos --items 2000
  make chaos     # 20,000 items`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Progress = cmd.ErrOrStderr()
			// Zero means "default" to chaos.Options; on the command line it is a mistake.
			if o.Items < 1 || o.Concurrency < 1 {
				return &exitError{2, fmt.Errorf("--items and --concurrency: must be at least 1, got %d and %d", o.Items, o.Concurrency)}
			}
			if err := o.Validate(); err != nil {
				return &exitError{2, err}
			}
			res, err := chaos.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if !jsonOut {
				fmt.Fprint(out, res.String())
			}
			line, err := json.Marshal(res)
			if err != nil {
				return err
			}
			fmt.Fprintln(out, string(line))
			if !res.OK() {
				return fmt.Errorf("chaos: %d assertion(s) failed", len(res.Failures()))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Items, "items", chaos.DefaultItems, "items to submit through the gRPC intake (1% more are poison)")
	f.IntVar(&o.Concurrency, "concurrency", chaos.DefaultConcurrency, "gRPC clients submitting at once")
	f.Float64Var(&o.Rate, "rate", 0, "submissions per second at most; 0 = as fast as intake takes them")
	f.DurationVar(&o.QuiesceTimeout, "quiesce-timeout", chaos.DefaultQuiesceTimeout, "how long the consumers may take to catch up at the end")
	f.StringSliceVar(&o.Skip, "skip", nil, "leave faults out: "+strings.Join(chaos.FaultNames, ", "))
	f.BoolVar(&o.Keep, "keep", false, "keep the run directory (logs of every process, JetStream store)")
	f.BoolVar(&jsonOut, "json", false, "print only the JSON object")
	return cmd
}
