package sla

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// A batch is applied in two round trips, the WATCH sent with the reads;
// a redelivery, which writes nothing, ends its WATCH (no EXEC to end it)
// in two too. The WATCH, armed in the reads' round trip, still fails a
// transaction whose record another writer changed after the reads: the
// event is applied on a retry, over that writer's change.
func TestApplyWatchesWithTheReads(t *testing.T) {
	e := newEnv(t, cfg)
	r := routed("fb-1", "billing", 100, 1000, escChain)
	var trips testkit.RedisTrips
	e.rdb.AddHook(&trips)
	if err := e.idx.Apply(e.ctx, r); err != nil {
		t.Fatal(err)
	}
	if rt, _ := trips.Take(); rt != 2 {
		t.Errorf("%d round trips to apply an event, want 2 (WATCH and reads, MULTI/EXEC)", rt)
	}
	if err := e.idx.Apply(e.ctx, r); err != nil {
		t.Fatal(err)
	}
	if rt, cmds := trips.Take(); rt != 2 {
		t.Errorf("%d round trips (%d commands) for a redelivery, want 2 (WATCH and reads, UNWATCH)", rt, cmds)
	}

	mine := status("fb-1", "billing", feedloopv1.Status_STATUS_ACKNOWLEDGED, 10)
	theirs := &feedloopv1.Event{Id: "theirs", FeedbackId: "fb-1", OccurredAt: mine.GetOccurredAt(),
		Payload: &feedloopv1.Event_StatusChanged{StatusChanged: &feedloopv1.StatusChanged{Team: "billing", To: feedloopv1.Status_STATUS_RESOLVED, Actor: "bob"}}}
	oc := redis.NewClient(&redis.Options{Addr: e.rdb.Options().Addr, DB: e.rdb.Options().DB})
	t.Cleanup(func() { _ = oc.Close() })
	other, err := NewIndex(oc, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.rdb.AddHook(&testkit.BeforeExec{Before: func() {
		if err := other.Apply(e.ctx, theirs); err != nil {
			t.Errorf("the other writer's apply: %v", err)
		}
	}})
	if err := e.idx.Apply(e.ctx, mine); err != nil {
		t.Fatal(err)
	}
	rec, err := load(e.ctx, e.rdb, e.idx.recordKey("billing", "fb-1"))
	if err != nil || rec == nil {
		t.Fatalf("record %v, %v", rec, err)
	}
	if !rec.seen(mine.GetId()) || !rec.seen(theirs.GetId()) {
		t.Errorf("record saw %q, want both writers' events (a lost update otherwise)", rec.Seen)
	}
	if n, err := e.rdb.ZCard(e.ctx, e.idx.dueKey()).Result(); err != nil || n != 0 {
		t.Errorf("the due set keeps %d timers (%v) after the other writer's resolve", n, err)
	}
}
