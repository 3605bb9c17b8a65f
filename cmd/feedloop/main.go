// Command feedloop is the binary people use: `feedloop dev` runs the whole
// system in one process; the other commands talk to a running system.
package main

import (
	"os"

	"github.com/feedloop/feedloop/cmd/feedloop/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) }
