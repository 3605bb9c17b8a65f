package bench

import (
	"slices"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// The ceiling runs as the pipeline does, bar the handlers' work: each
// service's stages on a connection of their own, and its CPU splits into
// the pipeline's parts: each stage under the service it stands for, its
// server and connections under theirs.
// Enough items for a hundred or so profile samples, so that no part
// present goes unsampled.
func TestCeilingCPUSplitsByPart(t *testing.T) {
	p, err := BuildPayloads(t.Context(), "../../../../deploy/examples")
	if err != nil {
		t.Fatal(err)
	}
	// Each service on a connection of its own, as in the pipeline (the
	// load's stands for intake's): the server writes to as many.
	var names []string
	connected = func(ns *server.Server) {
		cz, err := ns.Connz(nil)
		if err != nil {
			t.Error(err)
			return
		}
		for _, c := range cz.Conns {
			names = append(names, c.Name)
		}
	}
	t.Cleanup(func() { connected = nil })
	o := Options{Items: 3000, Concurrency: 64}.withDefaults()
	out, fl, err := passThrough(t.Context(), o, PhaseCeiling, ceilingStages(p), runID()+"-c")
	if err != nil {
		t.Fatal(err)
	}
	if out.lost != 0 {
		t.Fatalf("%d items lost", out.lost)
	}
	slices.Sort(names)
	if want := []string{"feedloop-bench-classifier", "feedloop-bench-intake", "feedloop-bench-notifier", "feedloop-bench-router"}; !slices.Equal(names, want) {
		t.Errorf("connections %q, want %q", names, want)
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
