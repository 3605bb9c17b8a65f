package bench

import (
	"testing"
	"time"
)

// An item of an earlier phase that comes out after that phase stopped
// waiting (and the next phase began) is counted late in its own phase,
// not lost there and not a stray arrival of the phase in progress.
func TestLateArrivalIsNotALoss(t *testing.T) {
	s := &sink{}
	at := time.Now()
	first := newTracker(false, nil)
	s.track(first)
	first.expect("a", at)
	first.expect("b", at)
	s.arrive("a", at.Add(time.Millisecond))
	first.close()
	if o := first.outcome(2); o.lost != 1 {
		t.Fatalf("at the end of its wait the phase misses %d items, want 1", o.lost)
	}

	second := newTracker(true, nil)
	s.track(second)
	second.expect("c", at)
	s.arrive("b", at.Add(time.Minute)) // stalled past the first phase's wait
	s.arrive("c", at.Add(2*time.Millisecond))
	second.close()

	if o := first.outcome(2); o.lost != 0 || o.dups != 0 || first.late() != 1 {
		t.Errorf("first phase: lost %d, dups %d, late %d; want 0, 0, 1", o.lost, o.dups, first.late())
	}
	if o := second.outcome(1); o.lost != 0 || o.dups != 0 || second.late() != 0 {
		t.Errorf("second phase: lost %d, dups %d, late %d; want 0, 0, 0", o.lost, o.dups, second.late())
	}
	if _, _, _, most := second.quantiles(); most > 10 {
		t.Errorf("second phase max %.1f ms: the first phase's late item landed in it", most)
	}
}
