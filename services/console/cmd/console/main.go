// Command console runs the feedloop web console.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/pkg/telemetry"
	"github.com/feedloop/feedloop/services/console"
)

func main() { os.Exit(run()) }

func run() int {
	ctx, stop := lifecycle.SignalContext()
	defer stop()
	cfg, err := console.LoadConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "console:", err)
		return 2
	}
	level, _ := lifecycle.ParseLevel(cfg.LogLevel)
	log := telemetry.Logger("console", level)
	shutdown, err := telemetry.Setup(ctx, "console")
	if err != nil {
		log.Error("console: telemetry", "err", err)
		return 1
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = shutdown(sctx)
	}()
	if cfg.MetricsAddr != "" {
		ms, err := telemetry.ServeMetrics(cfg.MetricsAddr, log)
		if err != nil {
			log.Error("console: METRICS_ADDR", "err", err)
			return 1
		}
		defer ms.Close()
	}
	svc, err := console.New(cfg, log)
	if err != nil {
		log.Error("console: start failed", "err", err)
		return 1
	}
	if err := svc.Run(ctx); err != nil {
		log.Error("console: stopped with error", "err", err)
		return 1
	}
	return 0
}
