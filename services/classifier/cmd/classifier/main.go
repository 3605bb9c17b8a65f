// Command classifier runs the feedloop classifier service.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/services/classifier"
)

func main() { os.Exit(run()) }

func run() int {
	ctx, stop := lifecycle.SignalContext()
	defer stop()
	cfg, err := classifier.LoadConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	infra, cleanup, err := lifecycle.Connect(ctx, "classifier", cfg.Common)
	defer cleanup()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	svc, err := classifier.New(cfg, infra)
	if err != nil {
		infra.Log.ErrorContext(ctx, "classifier: start failed", "err", err)
		return 1
	}
	if err := svc.Run(ctx); err != nil {
		infra.Log.ErrorContext(context.WithoutCancel(ctx), "classifier: stopped with error", "err", err)
		return 1
	}
	return 0
}
