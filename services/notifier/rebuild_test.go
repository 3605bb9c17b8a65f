package notifier_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/services/notifier"
)

// TestFlushMidStreamSendsNothingTwice runs two notifier replicas over a
// steady stream of new items and flushes Redis half-way, with the delivery
// records of the first half in it. Every item's received event is then
// delivered again (as after a replay or a republish past the duplicate
// window): the customer still gets exactly one acknowledgement per item,
// counted at the real webhook receiver, and the records are back.
func TestFlushMidStreamSendsNothingTwice(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.start()
	const items = 40
	fid := func(i int) string { return fmt.Sprintf("fb-flush-%02d", i) }
	var evs = make([]string, items)
	for i := range items {
		ev := receivedEvent(fid(i), true)
		evs[i] = ev.GetId()
		e.publish(bus.SubjectReceived, ev)
		if i == items/2 {
			e.idle() // the first half is sent and recorded…
			if err := e.rdb.FlushAll(t.Context()).Err(); err != nil {
				t.Fatal(err)
			}
			// …and its records are gone.
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.idle()
	// Every event again, under new message ids (the stream keeps them).
	for i := range items {
		ev := receivedEvent(fid(i), true)
		ev.Id = evs[i]
		ev.OccurredAt = nil
		e.redeliver(bus.SubjectReceived, ev, "again-"+evs[i])
	}
	e.idle()
	// And once more after a second flush, with nothing in flight.
	if err := e.rdb.FlushAll(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	for i := range items {
		ev := receivedEvent(fid(i), true)
		ev.Id = evs[i]
		e.redeliver(bus.SubjectReceived, ev, "third-"+evs[i])
	}
	e.idle()

	for i := range items {
		if got := e.hooks.at("/customer", fid(i)); len(got) != 1 {
			t.Errorf("%s: the customer webhook got %d acknowledgements, want 1", fid(i), len(got))
		}
	}
	keys, err := e.rdb.Keys(t.Context(), "notify:sent:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2*items { // email and webhook per item
		t.Errorf("%d delivery records after the rebuild, want %d", len(keys), 2*items)
	}
	if n, _ := e.rdb.Exists(t.Context(), notifier.RebuildPrefix+"ready").Result(); n != 1 {
		t.Error("no ready key after the rebuild")
	}
	if emails := len(e.smtp.To("ada@example.com")); emails != items {
		t.Errorf("%d emails sent, want %d (one per item)", emails, items)
	}
}
