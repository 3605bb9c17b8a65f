package readmodel_test

import (
	"testing"

	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
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

	applied, err := s.ApplyTraced(ctx, []*feedloopv1.Event{received}, []string{tp1})
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
	if _, err := s.ApplyTraced(ctx, []*feedloopv1.Event{received}, []string{tp2}); err != nil {
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
	applied, err = s.ApplyTraced(ctx, []*feedloopv1.Event{received}, []string{tp2})
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
	if _, err := s.ApplyTraced(ctx, []*feedloopv1.Event{received}, []string{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}); err != nil {
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
