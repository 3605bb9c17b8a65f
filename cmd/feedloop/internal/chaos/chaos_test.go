package chaos_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/feedloop/feedloop/cmd/feedloop/internal/chaos"
)

// The small version of `make chaos`: 2,000 items, one fault of each kind
// (every service SIGKILLed once, nats-server killed and restarted, Redis
// flushed, 1% poison), every service its own process. Nothing may be lost,
// nothing sent to a customer twice, every poison message dead-lettered,
// and the read model must equal a rebuild from the stream.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos: builds the services and runs them for about two minutes")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("chaos: redis-server is not on PATH; install it (apt-get install redis-server) — CI does")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	res, err := chaos.Run(ctx, chaos.Options{
		Items: 2000,
		// 100 items/s spreads the load over 20 s, so the faults fall while
		// items are in flight in every stage.
		Rate:     100,
		Progress: testWriter{t},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res.String())
	if res.Submitted != 2000 {
		t.Errorf("submitted %d, want 2000", res.Submitted)
	}
	if res.MissingRoutes != 0 {
		t.Errorf("missing_routes %d, want 0", res.MissingRoutes)
	}
	// Exactly one per item for a receiver honouring Idempotency-Key; raw
	// resends under the same key are the sender's unavoidable window (a kill
	// between the receiver's 2xx and the notifier's record of it).
	if res.DuplicateMessages != 0 || res.MissingMessages != 0 {
		t.Errorf("customer acknowledgements: %d duplicate (new or no Idempotency-Key), %d missing; want exactly one per item", res.DuplicateMessages, res.MissingMessages)
	}
	if res.ResentSameKey != 0 {
		t.Logf("%d raw resends under their first delivery's Idempotency-Key", res.ResentSameKey)
	}
	if res.PoisonSent != 20 || res.DeadLettered != res.PoisonSent {
		t.Errorf("poison sent %d, dead-lettered %d; want 20 and 20", res.PoisonSent, res.DeadLettered)
	}
	if len(res.DeadLettersOther) != 0 {
		t.Errorf("dead letters that are not poison: %v", res.DeadLettersOther)
	}
	if !res.ReadModelEqual {
		t.Error("the read model differs from a rebuild from the stream")
	}
	if len(res.Faults) != len(chaos.FaultNames) {
		t.Errorf("faults injected %v, want one of each of %v", res.Faults, chaos.FaultNames)
	}
	if !res.Quiescent {
		t.Error("the consumers did not catch up")
	}
}

// testWriter sends the harness's progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
