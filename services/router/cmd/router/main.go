// Command router runs the feedloop router service.
package main

import (
	"fmt"
	"os"

	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/services/router"
)

func main() { os.Exit(run()) }

func run() int {
	ctx, stop := lifecycle.SignalContext()
	defer stop()
	cfg, err := router.LoadConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "router:", err)
		return 2
	}
	infra, cleanup, err := lifecycle.Connect(ctx, "router", cfg.Common)
	defer cleanup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "router:", err)
		return 1
	}
	svc, err := router.New(cfg, infra)
	if err != nil {
		infra.Log.Error("router: start failed", "err", err)
		return 1
	}
	if err := svc.Run(ctx); err != nil {
		infra.Log.Error("router: stopped with error", "err", err)
		return 1
	}
	return 0
}
