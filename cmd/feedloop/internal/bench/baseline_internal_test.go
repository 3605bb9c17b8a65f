package bench

import (
	"slices"
	"testing"
)

// The ceiling's CPU splits into the parts the pipeline's does: each stage
// under the service it stands for, its server and connection under theirs.
// Enough items for a hundred or so profile samples, so that no part
// present goes unsampled.
func TestCeilingCPUSplitsByPart(t *testing.T) {
	p, err := BuildPayloads(t.Context(), "../../../../deploy/examples")
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Items: 3000, Concurrency: 64}.withDefaults()
	out, fl, err := passThrough(t.Context(), o, PhaseCeiling, ceilingStages(p), runID()+"-c")
	if err != nil {
		t.Fatal(err)
	}
	if out.lost != 0 {
		t.Fatalf("%d items lost", out.lost)
	}
	known := []string{"classifier", "router", "notifier", "nats-server", "nats-client", partBench, partOther}
	for part, us := range fl.CPUByPart {
		if !slices.Contains(known, part) {
			t.Errorf("cpu_us_by_part has %q (%.0f µs): not a part", part, us)
		}
	}
	for _, part := range []string{"classifier", "router", "notifier", "nats-server"} {
		if fl.CPUByPart[part] <= 0 {
			t.Errorf("cpu_us_by_part = %v: nothing for %s", fl.CPUByPart, part)
		}
	}
}
