// Package bench measures feedloop against the JetStream ceiling of the same
// machine, in one run, so that only ratios between figures of that run
// count (absolute figures drift between runs on shared machines):
//
//   - baseline: four chained JetStream stages with pass-through handlers on
//     the bus runner the services use (same streams, synchronous publish
//     with ack, same consumers and concurrency, same event sizes), run to
//     saturation;
//   - ceiling: the same pass-through handlers on the pipeline's own event
//     flow (the notifier also gets every received event, the read-model
//     projector every event): what the pipeline would carry if its
//     handlers cost nothing;
//   - pipeline: the four real services in this process (package stack),
//     driven through the gRPC intake to saturation, each item ending at a
//     team webhook on loopback;
//   - latency: the pipeline at a fixed rate, from when intake was due to get
//     an item to when the team webhook received it, in an HDR histogram.
package bench

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/feedloop/feedloop/cmd/feedloop/internal/stack"
)

// Phases of a run, in order.
const (
	PhaseBaseline = "baseline"
	PhaseCeiling  = "ceiling"
	PhasePipeline = "pipeline"
	PhaseLatency  = "latency"
)

// Defaults of Options; Quick ones for a smaller run.
const (
	DefaultItems        = 10000
	DefaultConcurrency  = 64
	DefaultRate         = 1000
	DefaultDuration     = 10 * time.Second
	DefaultDrainTimeout = 30 * time.Second
	QuickItems          = 2000
	MaxRounds           = 20
	// settleTimeout bounds the wait for the consumers to catch up after
	// the pipeline phase.
	settleTimeout = 2 * time.Minute
	QuickDuration = 3 * time.Second
)

// Options configure a run. Zero values take the defaults.
type Options struct {
	// Examples holds rules.yaml, routes.yaml and templates/ (deploy/examples).
	Examples string
	// RedisURL is the Redis the pipeline uses; empty starts a redis-server
	// of the bench's own (if one is on PATH) or, with InProcessRedis or
	// without one, an in-process Redis-compatible server, as `feedloop dev`
	// does.
	RedisURL       string
	InProcessRedis bool
	// Items is how many items each saturation phase sends.
	Items int
	// Rounds repeats the saturation phases (baseline, ceiling, pipeline,
	// in turn) on the same pipeline; the figures are the medians of the
	// rounds, each ratio paired within its round, so that a slow minute of
	// a shared machine moves one round, not the result.
	Rounds int
	// Concurrency is how many items the saturation phases keep in flight.
	Concurrency int
	// Rate (items/s) and Duration shape the latency phase.
	Rate     int
	Duration time.Duration
	// DrainTimeout ends a phase when no item arrived for that long; the
	// missing ones are lost.
	DrainTimeout time.Duration
	// SyncAlways runs both embedded servers with sync_interval: always
	// (fsync before every acknowledgement), to measure what it costs.
	SyncAlways bool
	// SkipBaseline, SkipCeiling and SkipLatency leave those phases out (to
	// profile one).
	SkipBaseline, SkipCeiling, SkipLatency bool
	// Log is the services' logger (default: warnings and errors only, as
	// `feedloop dev` logs by default).
	Log *slog.Logger
	// Progress is told how many items of a phase went all the way.
	Progress func(phase string, done, total int)
}

func (o Options) withDefaults() Options {
	if o.Examples == "" {
		o.Examples = "deploy/examples"
	}
	if o.Items == 0 {
		o.Items = DefaultItems
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Rounds == 0 {
		o.Rounds = 1
	}
	if o.Rate == 0 {
		o.Rate = DefaultRate
	}
	if o.Duration == 0 {
		o.Duration = DefaultDuration
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

// Validate checks o after defaults.
func (o Options) Validate() error {
	o = o.withDefaults()
	var errs []error
	if o.Items < 1 {
		errs = append(errs, fmt.Errorf("items: must be at least 1, got %d", o.Items))
	}
	if o.Rounds < 1 || o.Rounds > MaxRounds {
		errs = append(errs, fmt.Errorf("rounds: must be 1..%d, got %d", MaxRounds, o.Rounds))
	}
	if o.Concurrency < 1 || o.Concurrency > 10000 {
		errs = append(errs, fmt.Errorf("concurrency: must be 1..10000, got %d", o.Concurrency))
	}
	if o.Rate < 1 || o.Rate > 1_000_000 {
		errs = append(errs, fmt.Errorf("rate: must be 1..1000000 items/s, got %d", o.Rate))
	}
	if o.Duration < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("duration: must be at least 100ms, got %s", o.Duration))
	}
	if o.latencyItems() < 1 {
		errs = append(errs, fmt.Errorf("rate × duration: must give at least one item"))
	}
	return errors.Join(errs...)
}

func (o Options) latencyItems() int { return int(float64(o.Rate) * o.Duration.Seconds()) }

func (o Options) progress(phase string) func(int) {
	if o.Progress == nil {
		return nil
	}
	total := o.Items
	if phase == PhaseLatency {
		total = o.latencyItems()
	}
	return func(done int) { o.Progress(phase, done, total) }
}

// Result is one run, printed by `feedloop bench --json` as one object.
type Result struct {
	BaselineItemsPerS float64 `json:"baseline_items_per_s"`
	PipelineItemsPerS float64 `json:"pipeline_items_per_s"`
	// Ratio is pipeline / baseline.
	Ratio float64 `json:"ratio"`
	// CeilingItemsPerS is the pass-through run of the pipeline's own event
	// flow; CeilingRatio = ceiling / baseline is the most Ratio can reach
	// with that flow, PipelineOfCeiling = pipeline / ceiling what the
	// handlers' work leaves of it.
	CeilingItemsPerS  float64 `json:"ceiling_items_per_s,omitempty"`
	CeilingRatio      float64 `json:"ceiling_ratio,omitempty"`
	PipelineOfCeiling float64 `json:"pipeline_of_ceiling,omitempty"`
	// CPUOfCeiling is the pipeline's CPU per item, Redis's included, over
	// the ceiling's: what the services cost per item in units of the bus's
	// own cost. With rounds, each round's own pair, then the median.
	CPUOfCeiling float64 `json:"cpu_of_ceiling,omitempty"`
	// Latency at Rate items/s for DurationS seconds, from intake to the
	// team webhook, over LatencyItems items.
	Rate         int     `json:"rate"`
	DurationS    float64 `json:"duration_s"`
	LatencyItems int     `json:"latency_items"`
	P50Ms        float64 `json:"p50_ms"`
	P90Ms        float64 `json:"p90_ms"`
	P99Ms        float64 `json:"p99_ms"`
	MaxMs        float64 `json:"max_ms"`
	// Hops split the latency into the path's hops (HopIntake…HopNotifier),
	// from the stream's timestamps of each item's events.
	Hops map[string]Percentiles `json:"hops,omitempty"`
	// Lost counts items of every phase that never arrived (a failed send
	// included); Duplicates counts second arrivals of one item.
	Lost       int `json:"lost"`
	Duplicates int `json:"duplicates"`
	// Late counts pipeline items that arrived after their phase had stopped
	// waiting (DrainTimeout without an arrival): a stall, not a loss; they
	// are not in Lost, and the latency phase's are in its percentiles.
	Late        int `json:"late"`
	SubmitFails int `json:"submit_errors"`
	// SettleMs is how long after the pipeline phase's last webhook every
	// consumer (the projector, above all) had caught up.
	SettleMs float64 `json:"settle_ms"`
	Settled  bool    `json:"settled"`
	// PeakBacklog is, per durable consumer, the most messages it had
	// pending or unacknowledged during the pipeline phase.
	PeakBacklog map[string]uint64 `json:"peak_backlog"`
	// RSSMB is the peak resident set of this process (NATS and the
	// services; with the in-process Redis, Redis too); RedisRSSMB that of
	// the redis-server the bench started.
	RSSMB      float64 `json:"rss_mb"`
	RedisRSSMB float64 `json:"redis_rss_mb,omitempty"`
	// Rounds are the figures of each round when there were several; the
	// ones above are then their medians, Flow per phase the round with the
	// median CPU per item, PeakBacklog and SettleMs the last round's.
	Rounds []Round `json:"rounds,omitempty"`
	// Items is how many items each saturation phase sent.
	Items       int `json:"items"`
	Concurrency int `json:"concurrency"`
	// Flow is, per saturation phase and for the latency phase, what one
	// item cost, measured on the stream and the consumers: events stored,
	// deliveries and mean event size (the baseline's and the pipeline's
	// sizes must match), and CPU. The latency phase's is the cost at the
	// rate, where batches are small: above the saturated pipeline's.
	Flow map[string]Flow `json:"flow"`
	// BaselineEventBytes and PipelineEventBytes repeat Flow's sizes.
	BaselineEventBytes float64 `json:"baseline_event_bytes"`
	PipelineEventBytes float64 `json:"pipeline_event_bytes"`
	// NATSSync is JetStream's fsync setting: "default (2m)" or "always".
	NATSSync string `json:"nats_sync"`
	// Redis says which Redis the pipeline used: "redis-server (started by
	// the bench)", "external (REDIS_URL)" or "in-process (miniredis)".
	Redis      string `json:"redis"`
	GoVersion  string `json:"go_version"`
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
}

// Run runs the phases one after the other and returns their figures. An
// error means a phase could not run at all; items that got lost are a
// result (Lost), not an error.
func Run(ctx context.Context, o Options) (res *Result, err error) {
	// In a CPU profile, what the bench runs itself (the load, the webhook
	// receiver) is "bench"; the pipeline's stack labels its own parts.
	pprof.Do(ctx, pprof.Labels(stack.PartLabel, partBench), func(ctx context.Context) {
		res, err = run(ctx, o)
	})
	return res, err
}

func run(ctx context.Context, o Options) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	o = o.withDefaults()
	res := &Result{
		Items:       o.Items,
		Concurrency: o.Concurrency,
		Rate:        o.Rate,
		DurationS:   o.Duration.Seconds(),
		Flow:        map[string]Flow{},
		Redis:       "in-process (miniredis)",
		NATSSync:    "default (2m)",
		GoVersion:   runtime.Version(),
		CPUs:        runtime.NumCPU(),
		GOMAXPROCS:  runtime.GOMAXPROCS(0),
		Settled:     true,
	}
	if o.SyncAlways {
		res.NATSSync = "always"
	}
	var own *redisServer
	switch {
	case o.RedisURL != "":
		res.Redis = "external (REDIS_URL)"
	case !o.InProcessRedis:
		var err error
		own, err = startRedisServer(ctx)
		switch {
		case errors.Is(err, errNoRedisServer):
			res.Redis = "in-process (miniredis; no redis-server on PATH)"
		case err != nil:
			return nil, err
		default:
			defer own.close()
			o.RedisURL, res.Redis = own.url, "redis-server (started by the bench)"
		}
	}
	payloads, err := BuildPayloads(ctx, o.Examples)
	if err != nil {
		return nil, err
	}
	// Item ids derive from (source, external id): a run of its own keeps
	// an external Redis's idempotency keys of earlier runs out of the way.
	run := runID()

	var p *pipeline
	defer func() {
		if p != nil {
			_ = p.close()
		}
	}()
	var (
		rounds   []Round
		flows    = map[string][]Flow{} // per phase, one per round
		trackers []phaseTracker        // the pipeline's, counted once everything settled
	)
	for i := range o.Rounds {
		tag := run
		if o.Rounds > 1 {
			tag = fmt.Sprintf("%s-r%d", run, i+1)
		}
		var rd Round
		for _, pass := range []struct {
			phase, id string
			skip      bool
			stages    func(*Payloads) []stage
			itemsPerS *float64
			cpu       *float64
		}{
			{PhaseBaseline, "b", o.SkipBaseline, baselineStages, &rd.BaselineItemsPerS, nil},
			{PhaseCeiling, "c", o.SkipCeiling, ceilingStages, &rd.CeilingItemsPerS, &rd.CeilingCPUMicros},
		} {
			if pass.skip {
				continue
			}
			out, fl, err := passThrough(ctx, o, pass.phase, pass.stages(payloads), tag+"-"+pass.id)
			if err != nil {
				return nil, err
			}
			*pass.itemsPerS = out.perSecond()
			if pass.cpu != nil {
				*pass.cpu = fl.CPUMicros
			}
			flows[pass.phase] = append(flows[pass.phase], fl)
			res.add(out)
		}
		// One pipeline for every round (started after the first round's
		// pass-through phases, so a single round measures those alone).
		if p == nil {
			if p, err = startPipeline(ctx, o); err != nil {
				return nil, err
			}
		}
		pt, fl, err := res.saturatePipeline(ctx, o, p, tag, &rd)
		if err != nil {
			return nil, err
		}
		trackers = append(trackers, pt)
		flows[PhasePipeline] = append(flows[PhasePipeline], fl)
		rd.derive()
		rounds = append(rounds, rd)
	}
	if !o.SkipLatency {
		lt, err := res.latency(ctx, o, p, run)
		if err != nil {
			return nil, err
		}
		trackers = append(trackers, lt)
	}
	// Lost is counted once every consumer caught up (or the settle gave up).
	for _, pt := range trackers {
		res.add(pt.t.outcome(pt.total))
		res.Late += pt.t.late()
	}
	err = p.close()
	p = nil
	if err != nil {
		return nil, fmt.Errorf("bench: pipeline stopped with: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res.summarise(rounds, flows)
	res.RSSMB = peakRSSMB()
	if own != nil {
		res.RedisRSSMB = own.peakRSSMB()
	}
	return res, nil
}

// Round is one round of the saturation phases.
type Round struct {
	BaselineItemsPerS float64 `json:"baseline_items_per_s,omitempty"`
	CeilingItemsPerS  float64 `json:"ceiling_items_per_s,omitempty"`
	PipelineItemsPerS float64 `json:"pipeline_items_per_s"`
	Ratio             float64 `json:"ratio,omitempty"`
	CeilingRatio      float64 `json:"ceiling_ratio,omitempty"`
	PipelineOfCeiling float64 `json:"pipeline_of_ceiling,omitempty"`
	PipelineCPUMicros float64 `json:"pipeline_cpu_us_per_item"`
	// PipelineRedisCPUMicros and CeilingCPUMicros are the round's
	// redis-server CPU per pipeline item and the ceiling's CPU per item;
	// CPUOfCeiling = (PipelineCPUMicros + PipelineRedisCPUMicros) / CeilingCPUMicros.
	PipelineRedisCPUMicros float64 `json:"pipeline_redis_cpu_us_per_item,omitempty"`
	CeilingCPUMicros       float64 `json:"ceiling_cpu_us_per_item,omitempty"`
	CPUOfCeiling           float64 `json:"cpu_of_ceiling,omitempty"`
	// PipelineDeliveries is the round's deliveries per item: above the
	// others', redeliveries made the round incomparable.
	PipelineDeliveries float64 `json:"pipeline_deliveries_per_item"`
}

// derive computes the round's ratios from its items/s.
func (rd *Round) derive() {
	if rd.BaselineItemsPerS > 0 {
		rd.Ratio = rd.PipelineItemsPerS / rd.BaselineItemsPerS
		rd.CeilingRatio = rd.CeilingItemsPerS / rd.BaselineItemsPerS
	}
	if rd.CeilingItemsPerS > 0 {
		rd.PipelineOfCeiling = rd.PipelineItemsPerS / rd.CeilingItemsPerS
	}
	if rd.CeilingCPUMicros > 0 {
		rd.CPUOfCeiling = (rd.PipelineCPUMicros + rd.PipelineRedisCPUMicros) / rd.CeilingCPUMicros
	}
}

// summarise sets r's figures to the medians of rounds, each phase's flow
// to that of its round with the median CPU per item, and lists the rounds
// when there were several.
func (r *Result) summarise(rounds []Round, flows map[string][]Flow) {
	for phase, fs := range flows {
		fs = slices.Clone(fs)
		slices.SortFunc(fs, func(a, b Flow) int { return cmp.Compare(a.CPUMicros, b.CPUMicros) })
		r.Flow[phase] = fs[(len(fs)-1)/2]
	}
	r.BaselineEventBytes = r.Flow[PhaseBaseline].EventBytes
	r.PipelineEventBytes = r.Flow[PhasePipeline].EventBytes
	med := func(f func(Round) float64) float64 {
		xs := make([]float64, len(rounds))
		for i, rd := range rounds {
			xs[i] = f(rd)
		}
		return median(xs)
	}
	r.BaselineItemsPerS = med(func(rd Round) float64 { return rd.BaselineItemsPerS })
	r.CeilingItemsPerS = med(func(rd Round) float64 { return rd.CeilingItemsPerS })
	r.PipelineItemsPerS = med(func(rd Round) float64 { return rd.PipelineItemsPerS })
	r.Ratio = med(func(rd Round) float64 { return rd.Ratio })
	r.CeilingRatio = med(func(rd Round) float64 { return rd.CeilingRatio })
	r.PipelineOfCeiling = med(func(rd Round) float64 { return rd.PipelineOfCeiling })
	r.CPUOfCeiling = med(func(rd Round) float64 { return rd.CPUOfCeiling })
	if len(rounds) > 1 {
		r.Rounds = rounds
	}
}

// median of xs (the mean of the middle two for an even count); 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	xs = slices.Clone(xs)
	slices.Sort(xs)
	m := len(xs) / 2
	if len(xs)%2 == 0 {
		return (xs[m-1] + xs[m]) / 2
	}
	return xs[m]
}

// phaseTracker is a phase's tracker and how many items it sent.
type phaseTracker struct {
	t     *tracker
	total int
}

// saturatePipeline runs one pipeline saturation phase of items tagged tag,
// waits for every consumer to catch up, and records its figures in rd, its
// flow, and (those of the last round) r.
func (r *Result) saturatePipeline(ctx context.Context, o Options, p *pipeline, tag string, rd *Round) (phaseTracker, Flow, error) {
	t := newTracker(false, o.progress(PhasePipeline))
	p.sink.track(t)
	sctx, stopSampling := context.WithCancel(ctx)
	backlog := p.backlog(sctx)
	from, err := markFlow(ctx, p.s.Bus, consumers)
	if err != nil {
		stopSampling()
		return phaseTracker{}, Flow{}, err
	}
	cpu := startCPU(ctx, p.s.Redis, true)
	saturate(ctx, o.Items, o.Concurrency, p.sender(tag+"-p"), t)
	t.wait(ctx, o.Items, o.DrainTimeout)
	t.close()
	stopSampling()
	r.PeakBacklog = backlog()
	out := t.outcome(o.Items)
	rd.PipelineItemsPerS = out.perSecond()
	// A consumer still behind after the wait is a result, not a failure:
	// the next phase then runs with that backlog, and Settled says so.
	r.Settled = settle(ctx, p.s.Bus, consumers, settleTimeout) == nil && r.Settled
	if !out.last.IsZero() {
		r.SettleMs = ms(time.Since(out.last))
	}
	fl := measureFlow(ctx, p.s.Bus, consumers, o.Items, from)
	if err := cpu.stop(ctx, &fl, o.Items); err != nil {
		return phaseTracker{}, Flow{}, err
	}
	rd.PipelineCPUMicros, rd.PipelineRedisCPUMicros, rd.PipelineDeliveries = fl.CPUMicros, fl.RedisCPUMicros, fl.DeliveriesPerItem
	return phaseTracker{t, o.Items}, fl, nil
}

// latency runs the latency phase on p and records its figures in r.
func (r *Result) latency(ctx context.Context, o Options, p *pipeline, run string) (phaseTracker, error) {
	total := o.latencyItems()
	from, err := lastSeq(ctx, p.s.Bus)
	if err != nil {
		return phaseTracker{}, err
	}
	mark, err := markFlow(ctx, p.s.Bus, consumers)
	if err != nil {
		return phaseTracker{}, err
	}
	lt := newTracker(true, o.progress(PhaseLatency))
	p.sink.track(lt)
	// What an item costs at the rate, not at saturation, where every
	// batch is full. Not split by part: under the CPU profile the phase's
	// p99 went from 59 to 498 ms (why was not tracked down).
	cpu := startCPU(ctx, p.s.Redis, false)
	fixedRate(ctx, total, o.Rate, p.sender(run+"-l"), lt)
	lt.wait(ctx, total, o.DrainTimeout)
	lt.close()
	r.LatencyItems = total
	// What is still on its way arrives now, late: a stall, not a loss.
	r.Settled = settle(ctx, p.s.Bus, consumers, settleTimeout) == nil && r.Settled
	fl := measureFlow(ctx, p.s.Bus, consumers, total, mark)
	if err := cpu.stop(ctx, &fl, total); err != nil {
		return phaseTracker{}, err
	}
	r.Flow[PhaseLatency] = fl
	r.P50Ms, r.P90Ms, r.P99Ms, r.MaxMs = lt.quantiles()
	if r.Hops, err = hopLatencies(ctx, p.s.Bus, from+1, lt); err != nil {
		return phaseTracker{}, err
	}
	return phaseTracker{lt, total}, nil
}

func (r *Result) add(o outcome) {
	r.Lost += o.lost
	r.Duplicates += o.dups
	r.SubmitFails += o.failed
}

func usToMs(us int64) float64 { return float64(us) / 1000 }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func runID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
