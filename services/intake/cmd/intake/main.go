// Command intake runs the feedloop intake service.
package main

import (
	"fmt"
	"os"

	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/services/intake"
)

func main() { os.Exit(run()) }

func run() int {
	ctx, stop := lifecycle.SignalContext()
	defer stop()
	cfg, err := intake.LoadConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "intake:", err)
		return 2
	}
	infra, cleanup, err := lifecycle.Connect(ctx, "intake", cfg.Common)
	defer cleanup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "intake:", err)
		return 1
	}
	svc, err := intake.New(cfg, infra)
	if err != nil {
		infra.Log.Error("intake: start failed", "err", err)
		return 1
	}
	if err := svc.Run(ctx); err != nil {
		infra.Log.Error("intake: stopped with error", "err", err)
		return 1
	}
	return 0
}
