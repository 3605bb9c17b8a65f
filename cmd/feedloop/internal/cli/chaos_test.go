package cli

import "testing"

// Bad chaos flags are usage errors (exit 2) before anything is built or started.
func TestChaosRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"chaos", "--items", "10"},
		{"chaos", "--skip", "notifier,warp"},
		{"chaos", "--concurrency", "0"},
		{"chaos", "--rate", "-1"},
	} {
		if code, _, stderr := run(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, stderr)
		}
	}
}
