package readmodel_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
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
