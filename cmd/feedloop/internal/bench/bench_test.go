package bench_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/feedloop/feedloop/cmd/feedloop/internal/bench"
	"github.com/feedloop/feedloop/pkg/testkit"
)

const examples = "../../../../deploy/examples"

// A tiny run goes through every phase against a real Redis: every item
// arrives once, and the result has every figure of the JSON contract. Speed
// is never asserted.
func TestRunTiny(t *testing.T) {
	var phases = map[string]int{}
	res, err := bench.Run(t.Context(), bench.Options{
		Examples:     examples,
		RedisURL:     testkit.Redis(t),
		Items:        40,
		Concurrency:  8,
		Rate:         40,
		Duration:     time.Second,
		DrainTimeout: 20 * time.Second,
		Progress: func(phase string, done, total int) {
			if done > total {
				t.Errorf("%s: progress %d of %d", phase, done, total)
			}
			phases[phase] = done
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Lost != 0 || res.Duplicates != 0 || res.SubmitFails != 0 {
		t.Errorf("lost %d, duplicates %d, submit errors %d; want none", res.Lost, res.Duplicates, res.SubmitFails)
	}
	if res.Items != 40 || res.LatencyItems != 40 {
		t.Errorf("items %d, latency items %d; want 40 and 40", res.Items, res.LatencyItems)
	}
	if res.Redis != "external (REDIS_URL)" {
		t.Errorf("redis = %q", res.Redis)
	}
	for _, p := range []string{bench.PhaseBaseline, bench.PhaseCeiling, bench.PhasePipeline, bench.PhaseLatency} {
		if phases[p] != 40 {
			t.Errorf("progress of %s ended at %d, want 40", p, phases[p])
		}
	}
	// Both phases store events of the same size: the baseline is a fair ceiling.
	if d := res.BaselineEventBytes - res.PipelineEventBytes; d > 64 || d < -64 {
		t.Errorf("baseline events %.0f bytes, pipeline events %.0f: not the same size", res.BaselineEventBytes, res.PipelineEventBytes)
	}
	// The flows are measured, not assumed: the baseline chains four writes
	// with three deliveries, and the ceiling carries exactly the pipeline's
	// event flow (a consumer or an event added to the services and not to
	// the ceiling fails here).
	if f := res.Flow[bench.PhaseBaseline]; f.WritesPerItem != 4 || f.DeliveriesPerItem != 3 {
		t.Errorf("baseline flow %+v, want 4 writes and 3 deliveries per item", f)
	}
	c, p := res.Flow[bench.PhaseCeiling], res.Flow[bench.PhasePipeline]
	if c.WritesPerItem != p.WritesPerItem || c.DeliveriesPerItem != p.DeliveriesPerItem || p.DeliveriesPerItem <= 3 {
		t.Errorf("ceiling flow %+v, pipeline flow %+v: the ceiling must carry the pipeline's event flow", c, p)
	}
	for phase, f := range res.Flow {
		if f.CPUMicros <= 0 {
			t.Errorf("%s: cpu_us_per_item = %v, want a measured figure", phase, f.CPUMicros)
		}
	}
	// The pipeline's CPU splits by part, under the names the stack and the
	// bench give them.
	parts := []string{"intake", "classifier", "router", "notifier", "nats-server", "nats-client", "bench", "other"}
	var inServices float64
	for part, us := range p.CPUByPart {
		if !slices.Contains(parts, part) {
			t.Errorf("cpu_us_by_part has %q (%.0f µs): not a part", part, us)
		}
		if slices.Contains(parts[:4], part) {
			inServices += us
		}
	}
	if inServices <= 0 {
		t.Errorf("cpu_us_by_part = %v: nothing in the services", p.CPUByPart)
	}
	if p.RedisCPUMicros <= 0 {
		t.Errorf("pipeline: redis_cpu_us_per_item = %v, want the redis-server's CPU per item", p.RedisCPUMicros)
	}
	// Every item costs Redis commands (intake's idempotency key, the
	// notifier's claim, the read model's writes), each a few bytes at least.
	if p.RedisCommands < 3 || p.RedisBytesIn < 10*p.RedisCommands {
		t.Errorf("pipeline: redis_commands_per_item %v, redis_bytes_in_per_item %v: want what the redis-server counted", p.RedisCommands, p.RedisBytesIn)
	}
	// The latency phase reports what an item costs at the rate: the same
	// event flow as the pipeline's, its own CPU and Redis counts.
	l, ok := res.Flow[bench.PhaseLatency]
	if !ok || l.WritesPerItem != p.WritesPerItem || l.DeliveriesPerItem != p.DeliveriesPerItem {
		t.Errorf("latency flow %+v (found %v), pipeline flow %+v: want the pipeline's event flow at the rate", l, ok, p)
	}
	if l.RedisCPUMicros <= 0 || l.RedisCommands < 3 {
		t.Errorf("latency flow %+v: want Redis's CPU and commands per item", l)
	}
	if res.CeilingRatio <= 0 || res.PipelineOfCeiling <= 0 {
		t.Errorf("ceiling ratio %v, pipeline of ceiling %v: want measured figures", res.CeilingRatio, res.PipelineOfCeiling)
	}
	// One round: the CPU ratio is that of the two flows above.
	if want := (p.CPUMicros + p.RedisCPUMicros) / c.CPUMicros; res.CPUOfCeiling != want || want <= 0 {
		t.Errorf("cpu_of_ceiling %v, want (pipeline %v + Redis %v) / ceiling %v = %v", res.CPUOfCeiling, p.CPUMicros, p.RedisCPUMicros, c.CPUMicros, want)
	}

	// The latency splits into the path's hops; none can take longer than
	// the whole path did.
	for _, hop := range []string{bench.HopIntake, bench.HopClassifier, bench.HopRouter, bench.HopNotifier} {
		h, ok := res.Hops[hop]
		if !ok || h.P50Ms <= 0 || h.MaxMs > res.MaxMs*1.01 {
			t.Errorf("hop %s: %+v (found %v); want p50 > 0 and max ≤ the path's %.3f ms", hop, h, ok, res.MaxMs)
		}
	}

	raw, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"baseline_items_per_s", "pipeline_items_per_s", "ratio", "p50_ms", "p90_ms", "p99_ms", "max_ms",
		"lost", "late", "rss_mb", "items", "go_version", "cpus", "redis", "ceiling_items_per_s", "ceiling_ratio", "pipeline_of_ceiling", "cpu_of_ceiling", "flow", "hops"} {
		if _, ok := obj[k]; !ok {
			t.Errorf("JSON has no %q: %s", k, raw)
		}
	}
	for _, k := range []string{"baseline_items_per_s", "pipeline_items_per_s", "ratio", "p50_ms", "p99_ms", "max_ms", "rss_mb", "cpus"} {
		if v, _ := obj[k].(float64); v <= 0 {
			t.Errorf("%s = %v, want a measured figure above 0", k, obj[k])
		}
	}
}

// Without REDIS_URL the pipeline runs on a redis-server of the bench's own
// (redis-server is on PATH wherever the tests run), or on the in-process
// stand-in when asked; the result says which.
func TestRunsOnItsOwnRedisServer(t *testing.T) {
	for _, tc := range []struct {
		inProcess bool
		want      string
	}{{false, "redis-server (started by the bench)"}, {true, "in-process (miniredis)"}} {
		res, err := bench.Run(t.Context(), bench.Options{
			Examples: examples, InProcessRedis: tc.inProcess, Items: 20, Concurrency: 4,
			DrainTimeout: 20 * time.Second, SkipBaseline: true, SkipLatency: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Redis != tc.want || res.Lost != 0 {
			t.Errorf("in-process %v: redis %q, lost %d; want %q, 0", tc.inProcess, res.Redis, res.Lost, tc.want)
		}
		if (res.RedisRSSMB > 0) == tc.inProcess {
			t.Errorf("in-process %v: redis_rss_mb = %v", tc.inProcess, res.RedisRSSMB)
		}
	}
}

// Rounds run the saturation phases in turn on one pipeline: each round's
// flow is its own (not the stream's total so far), the figures are the
// medians and each ratio is paired within its round.
func TestRounds(t *testing.T) {
	res, err := bench.Run(t.Context(), bench.Options{
		Examples: examples, RedisURL: testkit.Redis(t), Items: 20, Concurrency: 4, Rounds: 3,
		DrainTimeout: 20 * time.Second, SkipLatency: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Lost != 0 || len(res.Rounds) != 3 {
		t.Fatalf("lost %d, %d rounds; want 0 and 3", res.Lost, len(res.Rounds))
	}
	var pipe, ratios, cpus []float64
	for i, rd := range res.Rounds {
		if rd.BaselineItemsPerS <= 0 || rd.CeilingItemsPerS <= 0 || rd.PipelineItemsPerS <= 0 || rd.PipelineCPUMicros <= 0 ||
			rd.PipelineRedisCPUMicros <= 0 || rd.CeilingCPUMicros <= 0 {
			t.Errorf("round %d: %+v, want every figure measured", i+1, rd)
		}
		if want := rd.PipelineItemsPerS / rd.BaselineItemsPerS; rd.Ratio != want {
			t.Errorf("round %d: ratio %v, want its own pipeline / baseline %v", i+1, rd.Ratio, want)
		}
		if want := (rd.PipelineCPUMicros + rd.PipelineRedisCPUMicros) / rd.CeilingCPUMicros; rd.CPUOfCeiling != want {
			t.Errorf("round %d: cpu_of_ceiling %v, want its own (pipeline + Redis) / ceiling %v", i+1, rd.CPUOfCeiling, want)
		}
		// Cumulative counters would give 16 and 24 in rounds 2 and 3.
		if rd.PipelineDeliveries != 8 {
			t.Errorf("round %d: %v deliveries per item, want the round's own 8", i+1, rd.PipelineDeliveries)
		}
		pipe, ratios, cpus = append(pipe, rd.PipelineItemsPerS), append(ratios, rd.Ratio), append(cpus, rd.CPUOfCeiling)
	}
	slices.Sort(pipe)
	slices.Sort(ratios)
	slices.Sort(cpus)
	if res.PipelineItemsPerS != pipe[1] || res.Ratio != ratios[1] || res.CPUOfCeiling != cpus[1] {
		t.Errorf("pipeline %v, ratio %v, cpu of ceiling %v; want the medians %v, %v and %v of %+v",
			res.PipelineItemsPerS, res.Ratio, res.CPUOfCeiling, pipe[1], ratios[1], cpus[1], res.Rounds)
	}
	if f := res.Flow[bench.PhasePipeline]; f.WritesPerItem != 4 || f.DeliveriesPerItem != 8 {
		t.Errorf("pipeline flow %+v, want 4 writes and 8 deliveries per item", f)
	}
}

func TestOptionsValidate(t *testing.T) {
	for name, o := range map[string]bench.Options{
		"negative rate":   {Rate: -1},
		"short duration":  {Duration: time.Millisecond},
		"no items":        {Items: -5},
		"too few items":   {Rate: 1, Duration: 500 * time.Millisecond},
		"negative rounds": {Rounds: -1},
		"too many rounds": {Rounds: bench.MaxRounds + 1},
	} {
		if err := o.Validate(); err == nil {
			t.Errorf("%s: Validate() = nil, want an error", name)
		}
	}
	if err := (bench.Options{}).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
