package dailycap_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/feedloop/feedloop/pkg/testkit"
	"github.com/feedloop/feedloop/services/notifier/internal/dailycap"
)

func TestAdmitCountsEachNoticeOnce(t *testing.T) {
	s := dailycap.New(testkit.RedisClient(t), time.Hour)
	ctx := context.Background()
	admit := func(notice, day string) dailycap.Decision {
		t.Helper()
		d, err := s.Admit(ctx, notice, "cust-a", day, 2)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := admit("n1", "2025-03-14"); d.Hold || d.Day != "2025-03-14" {
		t.Fatalf("first = %+v, want send", d)
	}
	// A redelivery is not a second message.
	if d := admit("n1", "2025-03-14"); d.Hold {
		t.Fatalf("n1 again = %+v, want send", d)
	}
	if d := admit("n2", "2025-03-14"); d.Hold {
		t.Fatalf("second = %+v, want send", d)
	}
	if d := admit("n3", "2025-03-14"); !d.Hold || d.Day != "2025-03-14" {
		t.Fatalf("third = %+v, want hold", d)
	}
	// Redelivered the next day, a notice keeps its first decision and day.
	if d := admit("n3", "2025-03-15"); !d.Hold || d.Day != "2025-03-14" {
		t.Fatalf("n3 next day = %+v, want hold for 2025-03-14", d)
	}
	if d := admit("n1", "2025-03-15"); d.Hold || d.Day != "2025-03-14" {
		t.Fatalf("n1 next day = %+v, want send for 2025-03-14", d)
	}
	// A new day has a new allowance; another customer has their own.
	if d := admit("n4", "2025-03-15"); d.Hold {
		t.Fatalf("new day = %+v, want send", d)
	}
	if d, err := s.Admit(ctx, "n5", "cust-b", "2025-03-14", 2); err != nil || d.Hold {
		t.Fatalf("other customer = %+v, %v; want send", d, err)
	}
}

// Replicas admitting different notices of one customer at once never
// send more than the cap.
func TestAdmitIsAtomicAcrossReplicas(t *testing.T) {
	s := dailycap.New(testkit.RedisClient(t), time.Hour)
	ctx := context.Background()
	const limit, notices = 3, 20
	var mu sync.Mutex
	sent := 0
	var wg sync.WaitGroup
	for i := range notices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := s.Admit(ctx, fmt.Sprintf("n%d", i), "cust", "2025-03-14", limit)
			if err != nil {
				t.Error(err)
				return
			}
			if !d.Hold {
				mu.Lock()
				sent++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if sent != limit {
		t.Fatalf("%d notices sent, want %d", sent, limit)
	}
}

func TestHoldDueDone(t *testing.T) {
	s := dailycap.New(testkit.RedisClient(t), time.Hour)
	ctx := context.Background()
	b := dailycap.Batch{Day: "2025-03-14", Customer: "cust"}
	due := time.Date(2025, 3, 15, 0, 5, 0, 0, time.UTC)
	if err := s.Hold(ctx, b, "n1", []byte("first"), due); err != nil {
		t.Fatal(err)
	}
	// A second hold of the same notice changes nothing.
	if err := s.Hold(ctx, b, "n1", []byte("changed"), due); err != nil {
		t.Fatal(err)
	}
	if err := s.Hold(ctx, b, "n2", []byte("second"), due.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Due(ctx, due.Add(-time.Millisecond), 10); err != nil || len(got) != 0 {
		t.Fatalf("due before its time: %v, %v", got, err)
	}
	got, err := s.Due(ctx, due, 10)
	if err != nil || len(got) != 1 || got[0] != b {
		t.Fatalf("due = %v, %v; want %v (scheduled by the first hold)", got, err, b)
	}
	held, err := s.Held(ctx, b)
	if err != nil || len(held) != 2 || string(held["n1"]) != "first" || string(held["n2"]) != "second" {
		t.Fatalf("held = %q, %v", held, err)
	}
	if err := s.Done(ctx, b); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Due(ctx, due.Add(time.Hour), 10); err != nil || len(got) != 0 {
		t.Fatalf("due after done: %v, %v", got, err)
	}
	// A late redelivery of a held notice does not revive a sent digest.
	if err := s.Hold(ctx, b, "n1", []byte("first"), due); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Due(ctx, due.Add(time.Hour), 10); err != nil || len(got) != 0 {
		t.Fatalf("due after a repeated hold: %v, %v", got, err)
	}
}
