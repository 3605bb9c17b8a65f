// Package cli holds feedloop's commands.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
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
	return 1
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "feedloop",
		Short:         "Close the customer-feedback loop",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newDevCmd(), newSubmitCmd(), newRulesCmd(), newClassifierCmd())
	return root
}

// serverFlag registers --server with its default from FEEDLOOP_SERVER.
func serverFlag(cmd *cobra.Command, p *string, fallback string) {
	def := os.Getenv("FEEDLOOP_SERVER")
	if def == "" {
		def = fallback
	}
	cmd.Flags().StringVar(p, "server", def, "intake gRPC address (env FEEDLOOP_SERVER)")
}
