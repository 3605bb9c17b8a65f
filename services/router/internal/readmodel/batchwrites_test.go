package readmodel_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router/internal/readmodel"
)

// keyCommands counts commands by name and key kind ("sadd applied"),
// pipelines and transactions included.
type keyCommands struct {
	mu sync.Mutex
	n  map[string]int
}

func (k *keyCommands) hook() testkit.CommandHook {
	return func(c redis.Cmder) {
		args := c.Args()
		if len(args) < 2 {
			return
		}
		if kind, _, ok := strings.Cut(strings.TrimPrefix(fmt.Sprint(args[1]), "rm:"), ":"); ok {
			k.mu.Lock()
			k.n[c.Name()+" "+kind]++
			k.mu.Unlock()
		}
	}
}

// An item's several events in one batch (what the projector hands over
// from a backlog) are folded into one read, one write of the item and one
// SADD of their ids, and leave what they leave one at a time.
func TestBatchWritesAnItemOnce(t *testing.T) {
	ctx := context.Background()
	sc := realistic()
	var evs []*feedloopv1.Event
	for _, ev := range sc.events {
		if ev.GetFeedbackId() == "fb-a" {
			evs = append(evs, ev)
		}
	}
	if len(evs) < 4 {
		t.Fatalf("the script has %d events of fb-a, want several", len(evs))
	}
	one, _ := store(t)
	applyAll(t, one, evs)

	batched, rdb := store(t)
	k := &keyCommands{n: map[string]int{}}
	rdb.AddHook(k.hook())
	applied, err := batched.ApplyBatch(ctx, evs)
	if err != nil {
		t.Fatal(err)
	}
	for i, ok := range applied {
		if !ok {
			t.Errorf("event %d (%s) not applied", i, evs[i].GetId())
		}
	}
	for _, c := range []string{"get item", "set item", "sadd applied"} {
		if k.n[c] != 1 {
			t.Errorf("%d × %s for one item's %d events, want 1 (all: %v)", k.n[c], c, len(evs), k.n)
		}
	}
	if diff := diffDumps(dump(t, batched), dump(t, one)); diff != "" {
		t.Errorf("batched differs from one at a time:\n%s", diff)
	}
}

// The KPI increments of a batch are summed per hash and field: many items
// routed to one team on one day are one HINCRBY per field and one ZADD of
// the day, with the counters one at a time would leave.
func TestBatchSumsKPIIncrements(t *testing.T) {
	ctx := context.Background()
	sc := &script{}
	const items = 10
	for i := range items {
		fb := sc.receive(fmt.Sprintf("kpi-%d", i), fmt.Sprintf("c-%d", i), "", 0)
		sc.route(fb, "billing", time.Second, defaultSLA, "")
	}
	var before, routed []*feedloopv1.Event
	for _, ev := range sc.events {
		if ev.GetRouted() != nil {
			routed = append(routed, ev)
		} else {
			before = append(before, ev)
		}
	}
	one, _ := store(t)
	applyAll(t, one, sc.events)

	batched, rdb := store(t)
	applyAll(t, batched, before)
	k := &keyCommands{n: map[string]int{}}
	rdb.AddHook(k.hook())
	if _, err := batched.ApplyBatch(ctx, routed); err != nil {
		t.Fatal(err)
	}
	if k.n["hincrby kpi"] >= len(routed) || k.n["zadd kpidays"] != 1 {
		t.Errorf("%d × HINCRBY of the totals and %d × ZADD of the days for %d routed events of one team and day, want one per field and 1 (all: %v)",
			k.n["hincrby kpi"], k.n["zadd kpidays"], len(routed), k.n)
	}
	if diff := diffDumps(dump(t, batched), dump(t, one)); diff != "" {
		t.Errorf("batched differs from one at a time:\n%s", diff)
	}
}

// An event is applied in two round trips, the WATCH sent with the reads
// (three with a WATCH of its own); an event applied before reads and
// ends its WATCH (no EXEC to end it) in two too, and the WATCH, armed in
// the reads' round trip, still fails a transaction whose item another
// writer changed after the reads: the event is applied once, on a retry,
// over that writer's change.
func TestApplyIsTwoRoundTrips(t *testing.T) {
	ctx := context.Background()
	sc := &script{}
	fb := sc.receive("fb-1", "c-1", "", 0)
	sc.route(fb, "billing", 0, defaultSLA, "")
	s, rdb := store(t)
	last := sc.events[len(sc.events)-1]
	applyAll(t, s, sc.events[:len(sc.events)-1])
	var trips testkit.RedisTrips
	rdb.AddHook(&trips)

	if ok, err := s.Apply(ctx, last); err != nil || !ok {
		t.Fatalf("routed = %v, %v", ok, err)
	}
	if rt, _ := trips.Take(); rt != 2 {
		t.Errorf("%d round trips to apply an event, want 2 (WATCH and reads, MULTI/EXEC)", rt)
	}
	if ok, err := s.Apply(ctx, last); err != nil || ok {
		t.Fatalf("routed again = %v, %v; want not applied", ok, err)
	}
	if rt, cmds := trips.Take(); rt != 2 {
		t.Errorf("%d round trips (%d commands) for an event applied before, want 2 (WATCH and reads, UNWATCH)", rt, cmds)
	}

	// Another writer changes the item between the reads and EXEC.
	mine := sc.add(bus.UpdatedSubject("billing"), "fb-1", time.Minute, &feedloopv1.Commented{Team: "billing", Text: "mine"})
	theirs := sc.add(bus.UpdatedSubject("billing"), "fb-1", 2*time.Minute, &feedloopv1.Commented{Team: "billing", Text: "theirs"})
	rdb.AddHook(otherWriterBeforeExec(t, rdb, theirs))
	if ok, err := s.Apply(ctx, mine); err != nil || !ok {
		t.Fatalf("comment = %v, %v", ok, err)
	}
	item, err := s.Item(ctx, "fb-1")
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, e := range item.GetTimeline() {
		if e.GetKind() == feedloopv1.TimelineKind_TIMELINE_KIND_COMMENT {
			texts = append(texts, e.GetText())
		}
	}
	if len(texts) != 2 {
		t.Fatalf("comments %q, want both writers' (a lost update otherwise)", texts)
	}
}

// Only the item key is watched, not its applied set: another writer that
// applies the same event between the reads and EXEC adds the id to the set
// in the transaction that writes the item, so ours fails on the item key
// and its retry finds the event applied. The event lands once (one
// comment, counted once in the KPIs) and only one writer reports it.
func TestSameEventFromAnotherWriterBeforeExec(t *testing.T) {
	ctx := context.Background()
	sc := &script{}
	fb := sc.receive("fb-1", "c-1", "", 0)
	sc.route(fb, "billing", 0, defaultSLA, "")
	s, rdb := store(t)
	applyAll(t, s, sc.events)
	ev := sc.add(bus.UpdatedSubject("billing"), "fb-1", time.Minute, &feedloopv1.Replied{Team: "billing", Text: "both", Csat: 5})
	rdb.AddHook(otherWriterBeforeExec(t, rdb, ev))
	ok, err := s.Apply(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		t.Error("applied by both writers, want only the other's")
	}
	item, err := s.Item(ctx, "fb-1")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range item.GetTimeline() {
		if e.GetText() == "both" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the reply is %d times in the timeline, want once", n)
	}
	st, err := s.Stats(ctx, "billing", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if st.CsatCounts[4] != 1 {
		t.Errorf("csat 5 counted %d times, want once", st.CsatCounts[4])
	}
}

// otherWriterBeforeExec is a hook that has another writer, a Store on a
// client of its own, apply ev between the reads and EXEC of rdb's first
// transaction.
func otherWriterBeforeExec(t *testing.T, rdb *redis.Client, ev *feedloopv1.Event) *testkit.BeforeExec {
	t.Helper()
	oc := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr, DB: rdb.Options().DB})
	t.Cleanup(func() { _ = oc.Close() })
	other, err := readmodel.New(oc)
	if err != nil {
		t.Fatal(err)
	}
	return &testkit.BeforeExec{Before: func() {
		if ok, err := other.Apply(context.Background(), ev); err != nil || !ok {
			t.Errorf("the other writer's apply = %v, %v", ok, err)
		}
	}}
}
