package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/feedloop/feedloop/cmd/feedloop/internal/bench"
	"github.com/feedloop/feedloop/pkg/testkit"
)

// bench --json prints exactly one JSON object with the contract's fields,
// through a real Redis from REDIS_URL, and writes the profiles asked for.
func TestBenchJSON(t *testing.T) {
	t.Setenv("REDIS_URL", testkit.Redis(t))
	dir := t.TempDir()
	cpu, mem := filepath.Join(dir, "cpu.pprof"), filepath.Join(dir, "mem.pprof")
	code, stdout, stderr := run(t, "bench", "--json", "--examples", examples,
		"--items", "30", "--concurrency", "4", "--rate", "30", "--duration", "1s",
		"--cpuprofile", cpu, "--memprofile", mem)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var obj map[string]any
	dec := json.NewDecoder(strings.NewReader(stdout))
	if err := dec.Decode(&obj); err != nil {
		t.Fatalf("stdout is not a JSON object: %v\n%s", err, stdout)
	}
	if dec.More() {
		t.Errorf("stdout holds more than one JSON value:\n%s", stdout)
	}
	for _, k := range []string{"baseline_items_per_s", "pipeline_items_per_s", "ratio", "p50_ms", "p90_ms", "p99_ms", "max_ms", "lost", "rss_mb", "items", "go_version", "cpus"} {
		if _, ok := obj[k]; !ok {
			t.Errorf("no %q in %s", k, stdout)
		}
	}
	if obj["lost"] != 0.0 || obj["items"] != 30.0 || obj["redis"] != "external (REDIS_URL)" {
		t.Errorf("lost %v, items %v, redis %v; want 0, 30, external", obj["lost"], obj["items"], obj["redis"])
	}
	for _, f := range []string{cpu, mem} {
		if st, err := os.Stat(f); err != nil || st.Size() == 0 {
			t.Errorf("profile %s not written: %v", f, err)
		}
	}
}

// Bad flags are usage errors (exit 2) before anything starts.
func TestBenchRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--rate", "0", "--examples", examples},
		{"bench", "--duration", "1ms", "--examples", examples},
		{"bench", "--phases", "baseline,warp", "--examples", examples},
		{"bench", "--rounds", "0", "--examples", examples},
		{"bench", "--examples", t.TempDir()},
	} {
		if code, _, stderr := run(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, stderr)
		}
	}
}

// The text output's pipeline line gives Redis's CPU and what it counted
// per item, and the latency phase the same at its rate.
func TestBenchTextShowsRedisCounts(t *testing.T) {
	var out bytes.Buffer
	printBench(&out, &bench.Result{PipelineItemsPerS: 2000, Settled: true, Rate: 1000, DurationS: 10, LatencyItems: 10000, Flow: map[string]bench.Flow{
		bench.PhasePipeline: {WritesPerItem: 4, DeliveriesPerItem: 8, EventBytes: 860, CPUMicros: 900, RedisCPUMicros: 130, RedisCommands: 26.8, RedisBytesIn: 5923},
		bench.PhaseLatency:  {WritesPerItem: 4, DeliveriesPerItem: 8, EventBytes: 860, CPUMicros: 1300, RedisCPUMicros: 180, RedisCommands: 31.5, RedisBytesIn: 6600},
	}})
	for _, want := range []string{
		"900 µs CPU/item + 130 in Redis (26.8 commands, 5923 bytes in)",
		"  at that rate         1300 µs CPU/item + 180 in Redis (31.5 commands, 6600 bytes in)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, out.String())
		}
	}
}
