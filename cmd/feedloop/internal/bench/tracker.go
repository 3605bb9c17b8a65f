package bench

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// tracker pairs the items a phase sent with the items that came out at the
// end of the path, whichever of the two it learns first: a webhook may
// arrive before the Submit call that caused it has returned.
type tracker struct {
	mu      sync.Mutex
	sent    map[string]time.Time // key → when the item was (due to be) sent
	arrived map[string]time.Time // key → first arrival, for keys not sent yet
	matched map[string]bool
	failed  int // sends that returned an error
	dups    int // arrivals of a key that had arrived before
	first   time.Time
	last    time.Time // latest matched arrival
	hist    *hdrhistogram.Histogram
	// times keeps, with hist, when each matched key was sent and arrived.
	times    map[string]ends
	progress func(done int)
	// closedAt is how many items had arrived when the phase stopped
	// waiting (-1 while it waits); the ones after are late.
	closedAt int
}

// newTracker returns a tracker; latency records send-to-arrival times.
func newTracker(latency bool, progress func(done int)) *tracker {
	t := &tracker{
		sent:     map[string]time.Time{},
		arrived:  map[string]time.Time{},
		matched:  map[string]bool{},
		progress: progress,
		closedAt: -1,
	}
	if latency {
		// 1µs to 5 minutes at 3 significant digits.
		t.hist = hdrhistogram.New(1, int64(5*time.Minute/time.Microsecond), 3)
		t.times = map[string]ends{}
	}
	return t
}

// expect records that key was sent at (or was due at) at.
func (t *tracker) expect(key string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.first.IsZero() || at.Before(t.first) {
		t.first = at
	}
	if arr, ok := t.arrived[key]; ok {
		delete(t.arrived, key)
		t.match(key, at, arr)
		return
	}
	t.sent[key] = at
}

// expects reports whether key was sent and has not arrived yet.
func (t *tracker) expects(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.sent[key]
	return ok
}

// close marks the end of the phase's wait: items arriving after it are
// late (a stall longer than the wait), counted apart from the lost.
func (t *tracker) close() {
	t.mu.Lock()
	t.closedAt = len(t.matched)
	t.mu.Unlock()
}

// late is how many items arrived after close.
func (t *tracker) late() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closedAt < 0 {
		return 0
	}
	return len(t.matched) - t.closedAt
}

// fail records a send that returned an error.
func (t *tracker) fail() {
	t.mu.Lock()
	t.failed++
	t.mu.Unlock()
}

// arrive records that key came out at at.
func (t *tracker) arrive(key string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.matched[key] {
		t.dups++
		return
	}
	if sent, ok := t.sent[key]; ok {
		delete(t.sent, key)
		t.match(key, sent, at)
		return
	}
	if _, ok := t.arrived[key]; ok {
		t.dups++
		return
	}
	t.arrived[key] = at
}

func (t *tracker) match(key string, sent, arrived time.Time) {
	t.matched[key] = true
	if arrived.After(t.last) {
		t.last = arrived
	}
	if t.hist != nil {
		_ = t.hist.RecordValue(max(int64(arrived.Sub(sent)/time.Microsecond), 1))
		t.times[key] = ends{sent, arrived}
	}
	if t.progress != nil && t.closedAt < 0 {
		t.progress(len(t.matched))
	}
}

// ends are when an item was (due to be) sent and when it arrived.
type ends struct{ sent, arrived time.Time }

// ends returns, for a latency tracker, the ends of every matched item.
func (t *tracker) ends() map[string]ends {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.times)
}

// quantiles are the p50, p90, p99 and max send-to-arrival times in ms.
func (t *tracker) quantiles() (p50, p90, p99, most float64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.hist
	return usToMs(h.ValueAtQuantile(50)), usToMs(h.ValueAtQuantile(90)), usToMs(h.ValueAtQuantile(99)), usToMs(h.Max())
}

// done is how many items went all the way.
func (t *tracker) done() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.matched)
}

// wait returns when want items went all the way, when none arrived for
// idle, or when ctx ends.
func (t *tracker) wait(ctx context.Context, want int, idle time.Duration) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	last, since := -1, time.Now()
	for {
		n := t.done()
		if n >= want {
			return
		}
		if n != last {
			last, since = n, time.Now()
		} else if time.Since(since) > idle {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// outcome sums up a phase that sent total items.
type outcome struct {
	total, done, failed, lost, dups int
	first, last                     time.Time
}

func (t *tracker) outcome(total int) outcome {
	t.mu.Lock()
	defer t.mu.Unlock()
	done := len(t.matched)
	return outcome{total: total, done: done, failed: t.failed, lost: total - done, dups: t.dups, first: t.first, last: t.last}
}

// perSecond is the phase's throughput: items done from the first send to
// the last arrival.
func (o outcome) perSecond() float64 {
	d := o.last.Sub(o.first)
	if o.done == 0 || d <= 0 {
		return 0
	}
	return float64(o.done) / d.Seconds()
}
