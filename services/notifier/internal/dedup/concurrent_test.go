package dedup_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/feedloop/feedloop/pkg/testkit"
	"github.com/feedloop/feedloop/services/notifier/internal/dedup"
)

// Senders racing for the same deliveries, as competing replicas and
// redeliveries do, send each exactly once: never twice (the claim), and
// never lost when a send fails (the release lets another sender retry).
func TestConcurrentSendersSendEachDeliveryOnce(t *testing.T) {
	rdb := testkit.RedisClient(t)
	s := dedup.New(rdb, time.Minute, time.Hour).Guarded("notify:ready")
	if err := rdb.Set(t.Context(), "notify:ready", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	const deliveries, senders = 40, 12
	keys := make([]string, deliveries)
	for i := range keys {
		keys[i] = fmt.Sprintf("notify:sent:f%d:routed:webhook:billing", i)
	}
	var mu sync.Mutex
	sent := map[string]int{}   // successful sends per delivery
	failed := map[string]int{} // failed sends per delivery
	var wg sync.WaitGroup
	for w := range senders {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 18))
			for pass := 0; pass < 200; pass++ {
				done := 0
				for _, i := range rng.Perm(deliveries) {
					key := keys[i]
					c, err := s.Claim(t.Context(), key)
					if err != nil {
						t.Error(err)
						return
					}
					switch c.State {
					case dedup.Sent:
						done++
						continue
					case dedup.Held:
						continue
					}
					// A third of the sends fail, and are released for a retry.
					if rng.IntN(3) == 0 {
						mu.Lock()
						failed[key]++
						mu.Unlock()
						if err := s.Release(t.Context(), c); err != nil {
							t.Error(err)
							return
						}
						continue
					}
					mu.Lock()
					sent[key]++
					mu.Unlock()
					if err := s.MarkSent(t.Context(), c, fmt.Sprintf("ev-%d-%d", w, i)); err != nil {
						t.Error(err)
						return
					}
				}
				if done == deliveries {
					return
				}
			}
			t.Errorf("sender %d: deliveries still unsent after 200 passes", w)
		})
	}
	wg.Wait()
	var failures int
	for _, key := range keys {
		if sent[key] != 1 {
			t.Errorf("%s sent %d times, want once", key, sent[key])
		}
		failures += failed[key]
	}
	if failures == 0 {
		t.Error("no send failed: the release path was not exercised")
	}
}
