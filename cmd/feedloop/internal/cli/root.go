// Package cli holds feedloop's commands.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// exitError carries an exit code for Main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// Main runs the command line args and returns the process exit code:
// 0 success, 1 failure, 2 usage or invalid input.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "feedloop:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if usageError(err) {
		return 2
	}
	return 1
}

// usageError reports the errors cobra itself returns for a command line it
// refuses after parsing (a flag marked required, a flag group), which carry
// no type of their own: usage errors, exit 2 like a flag that fails to parse.
func usageError(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "required flag(s) ") || strings.HasPrefix(msg, "if any flags in the group ")
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "feedloop",
		Short:         "Close the customer-feedback loop",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{2, err} })
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newDevCmd(), newSubmitCmd(), newIntakeCmd(), newInboxCmd(), newRebuildCmd(), newNATSConfigCmd(), newRulesCmd(), newClassifierCmd(), newBenchCmd(), newChaosCmd())
	return root
}

// Environment variables naming the servers commands talk to. Teams work
// their inbox all day, so the team API has the short name; submit is for
// trying things out and has its own, so one shell can do both.
const (
	envServer       = "FEEDLOOP_SERVER"
	envIntakeServer = "FEEDLOOP_INTAKE_SERVER"
)

// serverFlag registers --server on flags with its default from the
// environment variable env, else fallback; what says which server it is.
func serverFlag(flags *pflag.FlagSet, p *string, env, fallback, what string) {
	def := os.Getenv(env)
	if def == "" {
		def = fallback
	}
	flags.StringVar(p, "server", def, fmt.Sprintf("%s (env %s)", what, env))
}
