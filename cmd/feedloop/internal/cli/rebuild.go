package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/pkg/natsauth"
	"github.com/feedloop/feedloop/pkg/rebuild"
	"github.com/feedloop/feedloop/services/router"
)

func newRebuildCmd() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "rebuild",
		Short: "Rebuild the router's read model and SLA timers in Redis from the event stream",
		Long: `Empty the router's read model (items, timelines, team lists, customer
history, KPIs) and SLA timer index in Redis and replay the FEEDBACK stream
into them; print how many events were replayed. The stream is the system of
record, so this restores everything the team API and status pages serve, e.g.
after Redis was lost.

It reads the same environment as the router: NATS_URL, REDIS_URL,
ROUTER_SLA_WARN_AT, NATS_NKEY_SEED_FILE (the router's seed), ... Routers
rebuild by themselves when Redis loses the read model; this command forces
a rebuild. It takes the same lock as the routers, so it may run while they
do: they hold their consumers and answer Unavailable until it is done, then
resume. It fails if a rebuild is already running.`,
		Example: `  NATS_URL=nats://127.0.0.1:4222 REDIS_URL=redis://127.0.0.1:6379/0 feedloop rebuild`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := router.LoadConfig()
			if err != nil {
				return &exitError{2, err}
			}
			if _, set := os.LookupEnv("LOG_LEVEL"); !set {
				cfg.LogLevel = "warn" // a command prints its result, not the service's chatter
			}
			ctx := cmd.Context()
			// The router's credentials; the streams are only checked: a
			// command must never resize them.
			infra, cleanup, err := lifecycle.Connect(ctx, "feedloop-rebuild", cfg.Common,
				lifecycle.AsUser(natsauth.Router), lifecycle.CheckStreamsOnly())
			defer cleanup()
			if err != nil {
				return err
			}
			n, err := router.Rebuild(ctx, infra, cfg.SLAWarnAt)
			if err != nil {
				if errors.Is(err, rebuild.ErrBusy) {
					return fmt.Errorf("rebuild: %w: a router is rebuilding the read model now; nothing to do", err)
				}
				return fmt.Errorf("rebuild: %w (after %d events; run it again: it starts from an empty read model, and routers retry on their own)", err, n)
			}
			if jsonOut {
				return printJSON(cmd, map[string]int{"events": n})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "rebuilt the read model from %d events\n", n)
			return nil
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, `print {"events": N}`)
	return cmd
}
