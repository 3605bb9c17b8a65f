// Command notifier runs the notifier service: see package notifier.
package main

import (
	"fmt"
	"os"

	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/services/notifier"
)

func main() { os.Exit(run()) }

func run() int {
	ctx, stop := lifecycle.SignalContext()
	defer stop()
	cfg, err := notifier.LoadConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "notifier:", err)
		return 2
	}
	infra, cleanup, err := lifecycle.Connect(ctx, "notifier", cfg.Common)
	defer cleanup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "notifier:", err)
		return 1
	}
	svc, err := notifier.New(cfg, infra)
	if err != nil {
		infra.Log.Error("notifier: start failed", "err", err)
		return 1
	}
	if err := svc.Run(ctx); err != nil {
		infra.Log.Error("notifier: stopped", "err", err)
		return 1
	}
	return 0
}
