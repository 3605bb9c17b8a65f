package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// sendFunc sends the n-th item of a phase and returns the key its arrival
// will carry.
type sendFunc func(ctx context.Context, n int) (key string, err error)

// saturate sends total items from conc workers, each sending its next item
// as soon as the previous one was accepted (closed loop): the system runs
// as fast as it can take items in.
func saturate(ctx context.Context, total, conc int, send sendFunc, t *tracker) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for ctx.Err() == nil {
				n := int(next.Add(1)) - 1
				if n >= total {
					return
				}
				at := time.Now()
				key, err := send(ctx, n)
				if err != nil {
					t.fail()
					continue
				}
				t.expect(key, at)
			}
		})
	}
	wg.Wait()
}

// maxInFlight bounds the open-loop sends in flight, so a stalled system
// cannot make the bench itself run out of memory.
const maxInFlight = 10000

// fixedRate sends total items at rate items/s whatever the system does
// (open loop). Latency counts from when an item was due, not from when it
// was sent, so a stall of the sender or of the system is not hidden
// (coordinated omission).
func fixedRate(ctx context.Context, total, rate int, send sendFunc, t *tracker) {
	start := time.Now()
	interval := time.Second / time.Duration(rate)
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for n := 0; n < total; n++ {
		due := start.Add(time.Duration(n) * interval)
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		select {
		case <-ctx.Done():
			return
		case sem <- struct{}{}:
		}
		wg.Go(func() {
			defer func() { <-sem }()
			key, err := send(ctx, n)
			if err != nil {
				t.fail()
				return
			}
			t.expect(key, due)
		})
	}
}
