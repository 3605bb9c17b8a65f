package tlsfiles

import (
	"testing"
	"time"
)

// SetRecheck changes how often certificate files are looked at, for one test.
func SetRecheck(t *testing.T, d time.Duration) {
	old := recheck
	recheck = d
	t.Cleanup(func() { recheck = old })
}
