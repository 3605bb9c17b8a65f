package dedup_test

import (
	"context"
	"testing"
	"time"

	"github.com/feedloop/feedloop/pkg/testkit"
	"github.com/feedloop/feedloop/services/notifier/internal/dedup"
)

func TestTwoPhaseClaim(t *testing.T) {
	rdb := testkit.RedisClient(t)
	ctx := context.Background()
	s := dedup.New(rdb, time.Minute, 90*24*time.Hour)
	const key = "notify:sent:f1:received:email:ada@example.com"

	first, err := s.Claim(ctx, key)
	if err != nil || first.State != dedup.Acquired {
		t.Fatalf("first claim = %v, %v; want acquired", first.State, err)
	}
	second, err := s.Claim(ctx, key)
	if err != nil || second.State != dedup.Held {
		t.Fatalf("second claim = %v, %v; want held", second.State, err)
	}
	// Releasing someone else's (non-acquired) claim changes nothing.
	if err := s.Release(ctx, second); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Claim(ctx, key); c.State != dedup.Held {
		t.Fatalf("after a foreign release the claim is %v, want held", c.State)
	}

	// A failed send releases the claim: a retry may send.
	if err := s.Release(ctx, first); err != nil {
		t.Fatal(err)
	}
	retry, err := s.Claim(ctx, key)
	if err != nil || retry.State != dedup.Acquired {
		t.Fatalf("claim after release = %v, %v; want acquired", retry.State, err)
	}

	if err := s.MarkSent(ctx, retry, "event-1"); err != nil {
		t.Fatal(err)
	}
	after, err := s.Claim(ctx, key)
	if err != nil || after.State != dedup.Sent || after.Cause != "event-1" {
		t.Fatalf("claim after sent = %+v, %v; want sent by event-1", after, err)
	}
	// Releasing after the mark must not forget the delivery.
	if err := s.Release(ctx, retry); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Claim(ctx, key); c.State != dedup.Sent {
		t.Fatalf("after a late release the delivery is %v, want sent", c.State)
	}
	ttl, err := rdb.TTL(ctx, key).Result()
	if err != nil || ttl < 89*24*time.Hour {
		t.Fatalf("sent TTL = %v, %v; want about 90 days", ttl, err)
	}
}

func TestExpiredClaimCanBeTakenOverAndIsNotReleasedByItsFormerOwner(t *testing.T) {
	rdb := testkit.RedisClient(t)
	ctx := context.Background()
	s := dedup.New(rdb, time.Minute, time.Hour)
	const key = "notify:sent:f2:received:webhook:customer-webhook"

	crashed, err := s.Claim(ctx, key)
	if err != nil || crashed.State != dedup.Acquired {
		t.Fatal(crashed.State, err)
	}
	// The claim TTL bounds how long a crashed sender blocks the delivery:
	// expire it now instead of waiting.
	if err := rdb.PExpire(ctx, key, time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	var next dedup.Claim
	for {
		next, err = s.Claim(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if next.State == dedup.Acquired || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if next.State != dedup.Acquired {
		t.Fatalf("expired claim still %v", next.State)
	}
	if err := s.Release(ctx, crashed); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Claim(ctx, key); c.State != dedup.Held {
		t.Fatalf("former owner released the new claim: state %v", c.State)
	}
}
