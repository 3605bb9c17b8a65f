package itemlock_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/feedloop/feedloop/pkg/testkit"
	"github.com/feedloop/feedloop/services/router/internal/itemlock"
)

// Many goroutines (as if on several replicas) take the same lock: never two
// inside at once, and every one gets in eventually.
func TestMutualExclusion(t *testing.T) {
	rdb := testkit.RedisClient(t)
	a := itemlock.New(rdb, "lock:", 5*time.Second, 10*time.Second)
	b := itemlock.New(rdb, "lock:", 5*time.Second, 10*time.Second)
	var inside, maxInside, done atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		l := a
		if i%2 == 1 {
			l = b
		}
		wg.Go(func() {
			unlock, err := l.Lock(t.Context(), "fb-1")
			if err != nil {
				t.Error(err)
				return
			}
			n := inside.Add(1)
			for {
				m := maxInside.Load()
				if n <= m || maxInside.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(time.Millisecond)
			inside.Add(-1)
			done.Add(1)
			unlock()
		})
	}
	wg.Wait()
	if maxInside.Load() != 1 || done.Load() != 20 {
		t.Fatalf("max inside %d, done %d", maxInside.Load(), done.Load())
	}
}

// A held lock makes others wait and give up with ErrBusy; other items are
// not affected; a holder that never releases blocks only until the TTL.
func TestBusyAndExpiry(t *testing.T) {
	rdb := testkit.RedisClient(t)
	l := itemlock.New(rdb, "lock:", 300*time.Millisecond, 50*time.Millisecond)
	if _, err := l.Lock(t.Context(), "fb-1"); err != nil { // never released
		t.Fatal(err)
	}
	if _, err := l.Lock(t.Context(), "fb-1"); !errors.Is(err, itemlock.ErrBusy) {
		t.Fatalf("err = %v, want ErrBusy", err)
	}
	unlock, err := l.Lock(t.Context(), "fb-2")
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	patient := itemlock.New(rdb, "lock:", 300*time.Millisecond, 5*time.Second)
	unlock, err = patient.Lock(t.Context(), "fb-1")
	if err != nil {
		t.Fatalf("after the TTL: %v", err)
	}
	unlock()
}

// Releasing a lock that expired and was taken by someone else does not
// free the other holder's lock.
func TestReleaseOnlyOwn(t *testing.T) {
	rdb := testkit.RedisClient(t)
	l := itemlock.New(rdb, "lock:", time.Minute, 2*time.Second)
	stale, err := l.Lock(t.Context(), "fb-1")
	if err != nil {
		t.Fatal(err)
	}
	// The stale holder's lock expires (deleted here rather than waited out,
	// so a slow machine cannot also expire the fresh one before the check).
	if err := rdb.Del(t.Context(), "lock:fb-1").Err(); err != nil {
		t.Fatal(err)
	}
	fresh, err := l.Lock(t.Context(), "fb-1")
	if err != nil {
		t.Fatal(err)
	}
	stale()
	if n, _ := rdb.Exists(t.Context(), "lock:fb-1").Result(); n != 1 {
		t.Fatal("a stale release freed the new holder's lock")
	}
	fresh()
	if n, _ := rdb.Exists(t.Context(), "lock:fb-1").Result(); n != 0 {
		t.Fatal("release did not free the lock")
	}
}
