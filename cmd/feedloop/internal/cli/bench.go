package cli

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/feedloop/feedloop/cmd/feedloop/internal/bench"
	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/pkg/telemetry"
)

type benchOpts struct {
	examples, cpuprofile, memprofile, logLevel string
	phases                                     []string
	jsonOut, quick, syncAlways, miniredis      bool
	items, concurrency, rate, rounds           int
	duration                                   time.Duration
}

func newBenchCmd() *cobra.Command {
	o := &benchOpts{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure feedloop against the JetStream ceiling of this machine",
		Long: `Measure feedloop in one run, so that only ratios between its figures count
(absolute figures drift 25-40% between runs on shared machines):

  baseline   four chained JetStream stages with pass-through handlers, on the
             same streams, publish acks, consumers and event sizes as the
             services, run to saturation: baseline_items_per_s
  ceiling    the same pass-through handlers on the pipeline's own event flow
             (the notifier also gets every received event, the router's
             read-model projector every event): ceiling_items_per_s, the
             most the pipeline could carry if its handlers cost nothing;
             ceiling_ratio = ceiling / baseline bounds the ratio
  pipeline   the four real services in this process on an embedded NATS, a
             redis-server the bench starts (REDIS_URL: that Redis instead;
             --miniredis, or no redis-server on PATH: an in-process one),
             team webhooks on loopback, driven through the gRPC intake to
             saturation: pipeline_items_per_s and ratio = pipeline / baseline
  latency    the pipeline at --rate items/s for --duration: p50/p90/p99/max
             from intake to the team webhook (HDR histogram), and per hop
             (intake, classifier, router, notifier: split where each stage's
             event was stored on the stream) to show where a tail comes from

--rounds N runs baseline, ceiling and pipeline N times in turn and reports
their medians (each ratio paired within its round) and every round, so that
a slow minute of a shared machine moves one round, not the result.

lost counts the items that never arrived (it must be 0), late those that
arrived after their phase had stopped waiting (a stall); rss_mb is the peak
resident memory of the process, redis_rss_mb that of the bench's redis-server. With REDIS_URL the bench writes its keys
there: use a scratch database. Run it from the repository root (or pass
--examples) on an otherwise idle machine.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	f := cmd.Flags()
	f.BoolVar(&o.jsonOut, "json", false, "print one JSON object")
	f.BoolVar(&o.miniredis, "miniredis", false, "run the pipeline on the in-process Redis stand-in (as feedloop dev does) instead of a redis-server")
	f.BoolVar(&o.syncAlways, "nats-sync-always", false, "run JetStream with sync_interval: always (fsync before every ack) instead of the default 2m, to measure its cost")
	f.BoolVar(&o.quick, "quick", false, fmt.Sprintf("a smaller run: %d items per saturation phase, latency for %s", bench.QuickItems, bench.QuickDuration))
	f.IntVar(&o.rate, "rate", bench.DefaultRate, "items/s of the latency phase")
	f.DurationVar(&o.duration, "duration", bench.DefaultDuration, "length of the latency phase")
	f.IntVar(&o.items, "items", bench.DefaultItems, "items per saturation phase")
	f.IntVar(&o.concurrency, "concurrency", bench.DefaultConcurrency, "items in flight in the saturation phases")
	f.IntVar(&o.rounds, "rounds", 1, fmt.Sprintf("run the saturation phases this many times in turn (1..%d) and report their medians", bench.MaxRounds))
	f.StringSliceVar(&o.phases, "phases", []string{bench.PhaseBaseline, bench.PhaseCeiling, bench.PhasePipeline, bench.PhaseLatency}, "phases to run (pipeline always runs; leave one out to profile the rest)")
	f.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the run to this file (labelled by part: go tool pprof -tagroot feedloop.part)")
	f.StringVar(&o.memprofile, "memprofile", "", "write a heap profile (with allocations) at the end of the run to this file")
	f.StringVar(&o.examples, "examples", "deploy/examples", "directory with rules.yaml, routes.yaml and templates/")
	f.StringVar(&o.logLevel, "log-level", "warn", "services' log level: debug, info, warn or error")
	return cmd
}

func (o *benchOpts) options(cmd *cobra.Command) (bench.Options, error) {
	level, err := lifecycle.ParseLevel(o.logLevel)
	if err != nil {
		return bench.Options{}, fmt.Errorf("--log-level: %w", err)
	}
	if _, err := os.Stat(filepath.Join(o.examples, "routes.yaml")); err != nil {
		return bench.Options{}, fmt.Errorf("--examples %s: no routes.yaml there (run from the repository root, or pass --examples)", o.examples)
	}
	// Zero means "default" to bench.Options; on the command line it is a mistake.
	for _, f := range []struct {
		name string
		v    int
	}{{"--rate", o.rate}, {"--items", o.items}, {"--concurrency", o.concurrency}, {"--rounds", o.rounds}} {
		if f.v < 1 {
			return bench.Options{}, fmt.Errorf("%s: must be at least 1, got %d", f.name, f.v)
		}
	}
	for _, p := range o.phases {
		if !slices.Contains([]string{bench.PhaseBaseline, bench.PhaseCeiling, bench.PhasePipeline, bench.PhaseLatency}, p) {
			return bench.Options{}, fmt.Errorf("--phases: unknown phase %q (baseline, ceiling, pipeline, latency)", p)
		}
	}
	bo := bench.Options{
		Examples:       o.examples,
		RedisURL:       os.Getenv("REDIS_URL"),
		InProcessRedis: o.miniredis,
		Items:          o.items,
		Concurrency:    o.concurrency,
		Rounds:         o.rounds,
		Rate:           o.rate,
		Duration:       o.duration,
		SyncAlways:     o.syncAlways,
		SkipBaseline:   !slices.Contains(o.phases, bench.PhaseBaseline),
		SkipCeiling:    !slices.Contains(o.phases, bench.PhaseCeiling),
		SkipLatency:    !slices.Contains(o.phases, bench.PhaseLatency),
		Log:            slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level})),
	}
	if o.quick {
		if !cmd.Flags().Changed("items") {
			bo.Items = bench.QuickItems
		}
		if !cmd.Flags().Changed("duration") {
			bo.Duration = bench.QuickDuration
		}
	}
	if err := bo.Validate(); err != nil {
		return bench.Options{}, err
	}
	return bo, nil
}

func (o *benchOpts) run(cmd *cobra.Command) (err error) {
	bo, err := o.options(cmd)
	if err != nil {
		return &exitError{2, err}
	}
	ctx := cmd.Context()
	// Spans are recorded as in `feedloop dev` (exported only when
	// OTEL_EXPORTER_OTLP_ENDPOINT is set), so their cost is measured.
	shutdown, err := telemetry.Setup(ctx, "feedloop-bench")
	if err != nil {
		return err
	}
	defer func() { _ = shutdown(ctx) }()

	bars := newBenchBars(cmd.ErrOrStderr())
	bo.Progress = bars.update
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	res, err := bench.Run(ctx, bo)
	bars.finish()
	if err != nil {
		return err
	}
	if o.memprofile != "" {
		if err := writeHeapProfile(o.memprofile); err != nil {
			return err
		}
	}
	out := cmd.OutOrStdout()
	if o.jsonOut {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printBench(out, res)
	if res.Lost > 0 {
		return fmt.Errorf("%d items lost", res.Lost)
	}
	return nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--memprofile: %w", err)
	}
	defer f.Close()
	runtime.GC() // up-to-date in-use figures; allocations are cumulative anyway
	if err := pprof.WriteHeapProfile(f); err != nil {
		return fmt.Errorf("--memprofile: %w", err)
	}
	return nil
}

// benchBars draws one progress bar per phase on a terminal.
type benchBars struct {
	mu    sync.Mutex
	w     io.Writer
	phase string
	bar   *progress
}

func newBenchBars(w io.Writer) *benchBars { return &benchBars{w: w} }

func (b *benchBars) update(phase string, done, total int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if phase != b.phase {
		b.bar.finish()
		b.phase, b.bar = phase, newProgress(b.w, fmt.Sprintf("%-8s", phase))
	}
	b.bar.update(done, total)
}

func (b *benchBars) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bar.finish()
}

func printBench(w io.Writer, r *bench.Result) {
	line := func(k, format string, args ...any) {
		fmt.Fprintf(w, "  %-22s "+format+"\n", append([]any{k}, args...)...)
	}
	fmt.Fprintln(w, "feedloop bench")
	cpu := func(f bench.Flow) string {
		s := fmt.Sprintf("%.0f µs CPU/item", f.CPUMicros)
		if f.RedisCPUMicros > 0 {
			s += fmt.Sprintf(" + %.0f in Redis", f.RedisCPUMicros)
		}
		if f.RedisCommands > 0 {
			s += fmt.Sprintf(" (%.1f commands, %.0f bytes in)", f.RedisCommands, f.RedisBytesIn)
		}
		return s
	}
	flow := func(phase string) string {
		f := r.Flow[phase]
		return fmt.Sprintf("%.1f writes + %.1f deliveries/item, %.0f-byte events, %s", f.WritesPerItem, f.DeliveriesPerItem, f.EventBytes, cpu(f))
	}
	if r.BaselineItemsPerS > 0 {
		line("baseline", "%.0f items/s  (four chained JetStream stages: %s)", r.BaselineItemsPerS, flow(bench.PhaseBaseline))
	}
	if r.CeilingItemsPerS > 0 {
		line("ceiling", "%.0f items/s  (the pipeline's event flow, pass-through: %s)", r.CeilingItemsPerS, flow(bench.PhaseCeiling))
		if parts := r.Flow[bench.PhaseCeiling].CPUByPart; len(parts) > 0 {
			line("  CPU by part", "%s  (µs/item)", byPart(parts))
		}
	}
	settled := "settled"
	if !r.Settled {
		settled = "NOT settled"
	}
	line("pipeline", "%.0f items/s  (%s; consumers %s %.0f ms after)", r.PipelineItemsPerS, flow(bench.PhasePipeline), settled, r.SettleMs)
	if parts := r.Flow[bench.PhasePipeline].CPUByPart; len(parts) > 0 {
		line("  CPU by part", "%s  (µs/item)", byPart(parts))
	}
	line("ratio", "%.2f  (pipeline / baseline)", r.Ratio)
	if r.CeilingItemsPerS > 0 {
		line("ceiling ratio", "%.2f  (ceiling / baseline: the most the ratio can reach with this event flow)", r.CeilingRatio)
		line("pipeline of ceiling", "%.2f  (pipeline / ceiling: what the handlers' work leaves)", r.PipelineOfCeiling)
		line("CPU of ceiling", "%.2f  (pipeline CPU per item with Redis / the ceiling's: what the services cost, in units of the bus)", r.CPUOfCeiling)
	}
	if len(r.Rounds) > 1 {
		line("rounds", "%d, medians above; per round pipeline items/s · ratio · ceiling ratio · CPU µs/item · CPU of ceiling:", len(r.Rounds))
		for i, rd := range r.Rounds {
			line(fmt.Sprintf("  %d", i+1), "%.0f · %.2f · %.2f · %.0f · %.2f", rd.PipelineItemsPerS, rd.Ratio, rd.CeilingRatio, rd.PipelineCPUMicros, rd.CPUOfCeiling)
		}
	}
	if r.LatencyItems > 0 {
		line("latency", "p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms  (%d items/s for %gs)", r.P50Ms, r.P90Ms, r.P99Ms, r.MaxMs, r.Rate, r.DurationS)
		for _, hop := range []string{bench.HopIntake, bench.HopClassifier, bench.HopRouter, bench.HopNotifier} {
			if h, ok := r.Hops[hop]; ok {
				line("  "+hop, "p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms", h.P50Ms, h.P90Ms, h.P99Ms, h.MaxMs)
			}
		}
		if f, ok := r.Flow[bench.PhaseLatency]; ok && f.CPUMicros > 0 {
			line("  at that rate", "%s  (smaller batches than at saturation)", cpu(f))
		}
	}
	line("lost", "%d  (duplicates %d, submit errors %d)", r.Lost, r.Duplicates, r.SubmitFails)
	line("rss peak", "%.0f MB", r.RSSMB)
	line("items", "%d per saturation phase, %d in flight", r.Items, r.Concurrency)
	line("redis", "%s", r.Redis)
	line("nats fsync", "%s", r.NATSSync)
	line("machine", "%s, %d CPUs (GOMAXPROCS %d)", r.GoVersion, r.CPUs, r.GOMAXPROCS)
	fmt.Fprintln(w, "  "+strings.Repeat("-", 40))
	fmt.Fprintln(w, "  only ratios within one run count; absolute figures drift between runs")
}

// byPart lists CPU per part, largest first: "notifier 480 · router 410 …".
func byPart(parts map[string]float64) string {
	names := slices.Collect(maps.Keys(parts))
	slices.SortFunc(names, func(a, b string) int { return cmp.Compare(parts[b], parts[a]) })
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = fmt.Sprintf("%s %.0f", n, parts[n])
	}
	return strings.Join(out, " · ")
}
