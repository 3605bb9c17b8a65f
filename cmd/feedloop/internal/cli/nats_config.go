package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/feedloop/feedloop/pkg/natsauth"
)

type natsConfigOpts struct {
	out, printSeed  string
	routes          string
	sources, teams  []string
	noManageStreams bool
}

func newNATSConfigCmd() *cobra.Command {
	o := &natsConfigOpts{}
	cmd := &cobra.Command{
		Use:   "nats-config --out DIR [--source NAME]... [--team NAME]... [--routes FILE]",
		Short: "Generate the NATS users: one NKey per service and source system, least permissions",
		Long: `Write into --out one NKey seed per user (NAME.nk, mode 0600) and auth.conf,
the server's authorization block: public keys and each user's publish and
subscribe permissions, no secret. Include auth.conf from nats-server.conf
("include auth.conf"), on the embedded server as on a cluster, and give
each service its seed (NATS_NKEY_SEED_FILE).

The users: intake, classifier, router, notifier (what each publishes,
consumes and dead-letters, and nothing else), one source-NAME per --source
(may publish feedback.submit.NAME only), tools (reads the routed events:
'feedloop classifier corrections') and admin (everything: for operators,
never a service). Every user may subscribe only under its own inbox prefix
_INBOX.USER, so none reads another's replies; clients set it
(nats.CustomInboxPrefix), as feedloop's services do.

The router's watch-TEAM consumers are allowed for any team unless the teams
are given (--team, or --routes to take every team of a routes file): give
them in production, and run it again when the routes add a team.

Run it again to add a source or team: existing seeds are kept, so keys do
not change; delete NAME.nk to rotate that user's key. No seed is printed
unless --print-seed names a user.`,
		Example: `  feedloop nats-config --out deploy/secrets/nats --source helpdesk --source survey --source appstore
  kubectl -n feedloop create secret generic feedloop-nats-auth --from-file=auth.conf=deploy/secrets/nats/auth.conf
  kubectl -n feedloop create secret generic feedloop-nats-intake --from-file=seed=deploy/secrets/nats/intake.nk`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	f := cmd.Flags()
	f.StringVar(&o.out, "out", "", "directory for the seeds and auth.conf (required; created 0700)")
	f.StringArrayVar(&o.sources, "source", nil, "a company source system publishing on feedback.submit.NAME (repeatable)")
	f.StringArrayVar(&o.teams, "team", nil, "limit the router's watch consumers to these teams (repeatable; default: any team, as the routes file may add some)")
	f.StringVar(&o.routes, "routes", "", "take the teams of this routes file (ROUTER_ROUTES_FILE), as with --team")
	f.BoolVar(&o.noManageStreams, "no-manage-streams", false, "services may only read stream info; an operator creates the streams (run them with NATS_STREAMS=check)")
	f.StringVar(&o.printSeed, "print-seed", "", "print this user's seed to stdout (e.g. to pipe into a secret store)")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

func (o *natsConfigOpts) run(cmd *cobra.Command) error {
	teams := o.teams
	if o.routes != "" {
		tree, err := loadTree(o.routes)
		if err != nil {
			return fmt.Errorf("--routes: %w", err)
		}
		for _, team := range tree.Teams() {
			if !slices.Contains(teams, team) {
				teams = append(teams, team)
			}
		}
	}
	spec := natsauth.Spec{Sources: o.sources, Teams: teams, ManageStreams: !o.noManageStreams}
	if err := spec.Validate(); err != nil {
		return &exitError{2, fmt.Errorf("--source/--team: %w", err)}
	}
	if o.printSeed != "" {
		if _, ok := spec.Permissions(o.printSeed); !ok {
			return &exitError{2, fmt.Errorf("--print-seed: no user %q (users: %s)", o.printSeed, strings.Join(spec.Users(), ", "))}
		}
	}
	users, err := natsauth.Generate(o.out, spec)
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	out := cmd.OutOrStdout()
	if o.printSeed != "" {
		u, _ := users.Get(o.printSeed)
		seed, err := os.ReadFile(u.SeedFile)
		if err != nil {
			return err
		}
		_, err = out.Write(seed)
		return err
	}
	fmt.Fprintf(out, "%s: the server's authorization block (public keys only)\n", filepath.Join(o.out, natsauth.ServerConfigName))
	for _, u := range users {
		fmt.Fprintf(out, "%-24s %s  %s\n", u.Name, u.PublicKey, u.SeedFile)
	}
	return nil
}
