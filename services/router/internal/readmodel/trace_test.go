package readmodel_test

import (
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router/internal/readmodel"
)

// A received event's traceparent is remembered in the batch's own
// transaction (WATCH, reads, MULTI/EXEC: no round trip of its own), the
// first one stays, and a redelivery of an event already applied still
// puts a missing trace back.
func TestApplyTracedSetsTraceInTheTransaction(t *testing.T) {
	ctx := t.Context()
	s, rdb := store(t)
	trips := &testkit.RedisTrips{}
	rdb.AddHook(trips)
	received := realistic().events[0]
	if received.GetReceived() == nil {
		t.Fatal("the script's first event is not a received event")
	}
	id := received.GetFeedbackId()
	const tp1 = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	const tp2 = "00-11111111111111111111111111111111-2222222222222222-01"

	applied, err := s.ApplyTraced(ctx, []*feedloopv1.Event{received}, []string{tp1}, nil)
	if err != nil || !applied[0] {
		t.Fatalf("apply: %v, %v", applied, err)
	}
	if n, _ := trips.Take(); n != 2 {
		t.Errorf("%d round trips, want 2 (WATCH and reads, MULTI/EXEC)", n)
	}
	if got, err := s.Trace(ctx, id); err != nil || got != tp1 {
		t.Fatalf("trace = %q, %v; want %q", got, err, tp1)
	}

	// Already applied, a later traceparent does not replace the first.
	if _, err := s.ApplyTraced(ctx, []*feedloopv1.Event{received}, []string{tp2}, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Trace(ctx, id); got != tp1 {
		t.Fatalf("trace = %q after a redelivery, want the first, %q", got, tp1)
	}

	// Lost (say, the key expired alone): a redelivery puts it back though
	// the event changes nothing.
	if err := rdb.Del(ctx, "rm:trace:"+id).Err(); err != nil {
		t.Fatal(err)
	}
	applied, err = s.ApplyTraced(ctx, []*feedloopv1.Event{received}, []string{tp2}, nil)
	if err != nil || applied[0] {
		t.Fatalf("redelivery: %v, %v; want not applied", applied, err)
	}
	if got, _ := s.Trace(ctx, id); got != tp2 {
		t.Fatalf("trace = %q after a redelivery, want %q", got, tp2)
	}
}

// DumpRebuilt leaves out the trace contexts, which a rebuild does not
// restore, and nothing else.
func TestDumpRebuiltLeavesOutTraces(t *testing.T) {
	ctx := t.Context()
	s, _ := store(t)
	received := realistic().events[0]
	id := received.GetFeedbackId()
	if _, err := s.ApplyTraced(ctx, []*feedloopv1.Event{received}, []string{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}, nil); err != nil {
		t.Fatal(err)
	}
	all, err := s.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := all["rm:trace:"+id]; !ok {
		t.Fatalf("Dump has no trace key: %v", all)
	}
	rebuilt, err := s.DumpRebuilt(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rebuilt["rm:trace:"+id]; ok || len(rebuilt) != len(all)-1 {
		t.Fatalf("DumpRebuilt has %d of Dump's %d keys, trace included: %v; want all but the trace", len(rebuilt), len(all), ok)
	}
}

// Traces of items no event of the batch names (more) ride in the batch's
// transaction too, and are kept when a batch that keeps losing races is
// split into single events.
func TestApplyTracedKeepsMoreTraces(t *testing.T) {
	ctx := t.Context()
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	var received []*feedloopv1.Event
	for _, ev := range realistic().events {
		if ev.GetReceived() != nil {
			received = append(received, ev)
		}
	}
	if len(received) < 2 {
		t.Fatal("the script has fewer than two received events")
	}

	s, rdb := store(t)
	trips := &testkit.RedisTrips{}
	rdb.AddHook(trips)
	if _, err := s.ApplyTraced(ctx, received[:1], []string{""}, map[string]string{"fb-x": tp}); err != nil {
		t.Fatal(err)
	}
	if n, _ := trips.Take(); n != 2 {
		t.Errorf("%d round trips, want 2 (WATCH and reads, MULTI/EXEC): the trace in the transaction", n)
	}
	if got, err := s.Trace(ctx, "fb-x"); err != nil || got != tp {
		t.Errorf("trace of fb-x = %q, %v; want %q", got, err, tp)
	}

	// Another writer touches an item of the batch before each of its
	// first EXECs, so the batch is split (after three conflicts).
	s, rdb = store(t)
	other := redis.NewClient(rdb.Options())
	t.Cleanup(func() { _ = other.Close() })
	key := readmodel.DefaultPrefix + "item:" + received[0].GetFeedbackId()
	var execs atomic.Int32
	rdb.AddHook(testkit.CommandHook(func(c redis.Cmder) {
		if c.Name() == "multi" && execs.Add(1) <= 3 {
			if err := other.Set(ctx, key, "x", 0).Err(); err != nil {
				t.Error(err)
			}
			if err := other.Del(ctx, key).Err(); err != nil {
				t.Error(err)
			}
		}
	}))
	applied, err := s.ApplyTraced(ctx, received[:2], []string{"", ""}, map[string]string{"fb-x": tp})
	if err != nil || !applied[0] || !applied[1] {
		t.Fatalf("split batch: %v, %v; want both applied", applied, err)
	}
	if execs.Load() <= 3 {
		t.Fatalf("%d EXECs: the batch was not split", execs.Load())
	}
	if got, err := s.Trace(ctx, "fb-x"); err != nil || got != tp {
		t.Errorf("trace of fb-x after the split = %q, %v; want %q", got, err, tp)
	}
}
