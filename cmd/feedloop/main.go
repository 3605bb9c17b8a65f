// Command feedloop is the binary people use: `feedloop dev` runs the whole
// system in one process; the other commands talk to a running system.
package main

import (
	"os"

	"github.com/feedloop/feedloop/cmd/feedloop/internal/cli"
	"github.com/feedloop/feedloop/pkg/lifecycle"
)

func main() {
	ctx, stop := lifecycle.SignalContext()
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
