package stack

import (
	"bytes"
	"io"
	"runtime/pprof"
	"slices"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/feedloop/feedloop/pkg/testkit"
)

// Every part of a running stack, the in-process Redis included, runs on
// goroutines labelled with its name, so a CPU profile splits by part (the
// bench's cpu_us_by_part reads these labels).
func TestGoroutinesAreLabelledByPart(t *testing.T) {
	cfg := DevConfig("../../../../deploy/examples", t.TempDir())
	cfg.Notifier.ConsoleOutput = io.Discard
	s, err := Start(t.Context(), cfg) // RedisURL empty: the in-process stand-in
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, s.Run)

	want := []string{"intake", "classifier", "router", "notifier", "console", PartNATSServer, "nats-client", "redis"}
	var got []string
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("parts labelled: %q", got)
		}
	})
	testkit.Eventually(t, "a goroutine labelled for every part", func() bool {
		got = goroutineParts(t)
		for _, p := range want {
			if !slices.Contains(got, p) {
				return false
			}
		}
		return true
	})
	for _, p := range got {
		if !slices.Contains(want, p) {
			t.Errorf("goroutines labelled %s=%q: not a part of the stack", PartLabel, p)
		}
	}
	// The gRPC servers' stream workers run intake's and the router's calls;
	// they start when the service is built, not when it runs.
	workers := goroutinePartsIn(t, "google.golang.org/grpc.(*Server).serverWorker")
	if !slices.Equal(workers, []string{"intake", "router"}) {
		t.Errorf("gRPC stream workers labelled %q, want intake and router only", workers)
	}
}

// goroutineParts lists the PartLabel values of this process's goroutines.
func goroutineParts(t *testing.T) []string {
	t.Helper()
	return goroutinePartsIn(t, "")
}

// goroutinePartsIn lists the PartLabel values of the goroutines running
// function fn (fn empty: of every goroutine that has one); a goroutine of
// fn without one counts as "".
func goroutinePartsIn(t *testing.T, fn string) []string {
	t.Helper()
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 0); err != nil {
		t.Fatal(err)
	}
	p, err := profile.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, s := range p.Sample {
		vals := s.Label[PartLabel]
		if fn != "" {
			if !runs(s, fn) {
				continue
			}
			if len(vals) == 0 {
				vals = []string{""}
			}
		}
		for _, v := range vals {
			if !slices.Contains(parts, v) {
				parts = append(parts, v)
			}
		}
	}
	slices.Sort(parts)
	return parts
}

// runs reports whether fn is on the goroutine's stack.
func runs(s *profile.Sample, fn string) bool {
	for _, loc := range s.Location {
		for _, l := range loc.Line {
			if l.Function != nil && l.Function.Name == fn {
				return true
			}
		}
	}
	return false
}
