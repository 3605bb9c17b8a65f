package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/rebuild"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router/internal/projection"
	"github.com/feedloop/feedloop/services/router/internal/readmodel"
	"github.com/feedloop/feedloop/services/router/internal/sla"
)

// folder is a Projector with just what foldBatch uses: the read model on a
// real Redis and, when withSLA, the SLA index.
func folder(t *testing.T, withSLA bool) (*Projector, *readmodel.Store, *redis.Client) {
	t.Helper()
	rdb := testkit.RedisClient(t)
	store, err := readmodel.New(rdb)
	if err != nil {
		t.Fatal(err)
	}
	s := &Projector{Store: store, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Tracer: noop.NewTracerProvider().Tracer(""), Timeout: time.Minute}
	if withSLA {
		if s.SLA, err = sla.NewIndex(rdb, sla.Config{}); err != nil {
			t.Fatal(err)
		}
	}
	return s, store, rdb
}

// A batch that cannot be folded as a whole (here: one item's stored state
// is corrupt) is folded event by event, so only the bad item's event fails
// and the others land on their first delivery.
func TestFoldBatchIsolatesAnEventThatCannotBeFolded(t *testing.T) {
	ctx := context.Background()
	s, store, rdb := folder(t, true)
	if err := rdb.Set(ctx, readmodel.DefaultPrefix+"item:bad", "not a protobuf item \xff\xff", 0).Err(); err != nil {
		t.Fatal(err)
	}
	ids := []string{"a1", "a2", "bad", "a3", "a4"}
	batch := make([]*fold, len(ids))
	for i, id := range ids {
		batch[i] = &fold{ctx: ctx, ev: &feedloopv1.Event{
			Id: "received-" + id, FeedbackId: id, OccurredAt: timestamppb.New(time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)),
			Payload: &feedloopv1.Event_Received{Received: &feedloopv1.Received{Feedback: &feedloopv1.Feedback{Id: id, Source: "helpdesk", Text: "text of " + id}}},
		}, traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	}
	errs := s.foldBatch(ctx, batch)
	for i, id := range ids {
		if (id == "bad") != (errs[i] != nil) {
			t.Errorf("%s: err = %v", id, errs[i])
		}
		if id == "bad" {
			continue
		}
		if _, err := store.Item(ctx, id); err != nil {
			t.Errorf("%s not in the read model: %v", id, err)
		}
		if tp, err := store.Trace(ctx, id); err != nil || tp == "" {
			t.Errorf("%s: trace %q, %v; want the received event's", id, tp, err)
		}
	}
}

// The committer runs outside the bus's Recoverer: an event whose fold
// panics gets a permanent error (dead-lettered) instead of crashing the
// router, and the events batched with it are folded on their own.
func TestFoldPanicIsAPermanentErrorNotACrash(t *testing.T) {
	ctx := context.Background()
	// No SLA index: folding a routed event panics; a received one does not
	// touch it.
	s, store, _ := folder(t, false)
	at := timestamppb.New(time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC))
	received := &fold{ctx: ctx, ev: &feedloopv1.Event{Id: "received-ok", FeedbackId: "ok", OccurredAt: at,
		Payload: &feedloopv1.Event_Received{Received: &feedloopv1.Received{Feedback: &feedloopv1.Feedback{Id: "ok", Source: "helpdesk", Text: "fine"}}}}}
	routed := &fold{ctx: ctx, ev: &feedloopv1.Event{Id: "routed-boom", FeedbackId: "boom", OccurredAt: at,
		Payload: &feedloopv1.Event_Routed{Routed: &feedloopv1.Routed{Feedback: &feedloopv1.Feedback{Id: "boom"}, Assignment: &feedloopv1.Assignment{Team: "billing"}}}}}
	errs := s.foldSafely(ctx, []*fold{received, routed})
	if errs[0] != nil {
		t.Errorf("the received event: %v; folded on its own it does not panic", errs[0])
	}
	if !bus.IsPermanent(errs[1]) {
		t.Errorf("the panicking event: %v, want a permanent error", errs[1])
	}
	if _, err := store.Item(ctx, "ok"); err != nil {
		t.Errorf("the received event's item is not in the read model: %v", err)
	}
}

// readModelCommands counts into n the commands a client sends on
// read-model keys.
func readModelCommands(n *atomic.Int64) testkit.CommandHook {
	return func(cmd redis.Cmder) {
		if a := cmd.Args(); len(a) > 1 && strings.HasPrefix(fmt.Sprint(a[1]), readmodel.DefaultPrefix) {
			n.Add(1)
		}
	}
}

// itemCounts counts, by command name, the Redis commands on one item's key.
type itemCounts struct {
	mu sync.Mutex
	k  map[string]int
}

// itemCommands counts from now on the commands rdb sends on item id's key.
func itemCommands(rdb *redis.Client, id string) *itemCounts {
	c := &itemCounts{k: map[string]int{}}
	rdb.AddHook(testkit.CommandHook(func(cmd redis.Cmder) {
		if a := cmd.Args(); len(a) > 1 && fmt.Sprint(a[1]) == readmodel.DefaultPrefix+"item:"+id {
			c.mu.Lock()
			c.k[cmd.Name()]++
			c.mu.Unlock()
		}
	}))
	return c
}

func (c *itemCounts) n(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.k[name]
}

func (c *itemCounts) all() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.k)
}

func (c *itemCounts) reset() {
	c.mu.Lock()
	clear(c.k)
	c.mu.Unlock()
}

// A routed event the routing consumer had applied at once reaches the
// projector's own delivery with nothing left to do in the read model: that
// delivery costs no read-model command, only the SLA index's.
func TestProjectorSkipsTheReadModelForAnEventAppliedAtOnce(t *testing.T) {
	ctx := context.Background()
	s, store, rdb := folder(t, true)
	p := s
	p.appliedNow = map[string]string{}
	at := timestamppb.New(time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC))
	routed := &feedloopv1.Event{Id: "routed-1", FeedbackId: "fb-1", OccurredAt: at,
		Payload: &feedloopv1.Event_Routed{Routed: &feedloopv1.Routed{Feedback: &feedloopv1.Feedback{Id: "fb-1", Text: "hi"},
			Assignment: &feedloopv1.Assignment{Team: "billing", AcknowledgeBy: timestamppb.New(at.AsTime().Add(time.Hour))}}}}
	p.commit([]*fold{{ctx: ctx, ev: routed, readModelOnly: true}})
	if _, err := store.Item(ctx, "fb-1"); err != nil {
		t.Fatalf("applied at once: %v", err)
	}
	var rm atomic.Int64
	rdb.AddHook(readModelCommands(&rm))
	trips := &testkit.RedisTrips{}
	rdb.AddHook(trips)
	f := &fold{ctx: ctx, ev: routed, err: make(chan error, 1)}
	p.commit([]*fold{f})
	if err := <-f.err; err != nil {
		t.Fatal(err)
	}
	if n := rm.Load(); n != 0 {
		t.Errorf("%d read-model commands for an event applied at once, want 0", n)
	}
	if _, cmds := trips.Take(); cmds == 0 {
		t.Error("no command at all: the SLA index was not told of the routed event")
	}
	// Forgotten once seen: a redelivery goes through the read model again
	// (where it finds the event applied).
	f = &fold{ctx: ctx, ev: routed, err: make(chan error, 1)}
	p.commit([]*fold{f})
	if err := <-f.err; err != nil || rm.Load() == 0 {
		t.Errorf("redelivery: err %v, %d read-model commands; want the read model asked", err, rm.Load())
	}
}

// The routing consumer hands over the classified event with the routed
// events it became: folded in one batch, the item is read and written
// once for both, and the projector's own delivery of the classified event
// (which the SLA index ignores) then costs no Redis command at all.
func TestClassifiedAppliedAtOnceWithItsRoutedEvent(t *testing.T) {
	ctx := context.Background()
	p, store, rdb := folder(t, true)
	p.appliedNow = map[string]string{}
	classified, routed := classifiedAndRouted("fb-1")
	k := itemCommands(rdb, "fb-1")
	p.commit([]*fold{{ctx: ctx, ev: classified, readModelOnly: true}, {ctx: ctx, ev: routed, readModelOnly: true}})
	if k.n("get") != 1 || k.n("set") != 1 {
		t.Errorf("item read %d and written %d times for its classified and routed events, want once each", k.n("get"), k.n("set"))
	}
	item, err := store.Item(ctx, "fb-1")
	if err != nil {
		t.Fatal(err)
	}
	if item.GetClassification().GetSentiment() != feedloopv1.Sentiment_SENTIMENT_NEGATIVE || len(item.GetAssignments()) != 1 {
		t.Errorf("item %v, want the classification and the billing share", item)
	}
	trips := &testkit.RedisTrips{}
	rdb.AddHook(trips)
	f := &fold{ctx: ctx, ev: classified, err: make(chan error, 1)}
	p.commit([]*fold{f})
	if err := <-f.err; err != nil {
		t.Fatal(err)
	}
	if rt, cmds := trips.Take(); rt != 0 {
		t.Errorf("%d round trips (%d commands) for a classified event applied at once, want none", rt, cmds)
	}
}

// The projector's own delivery of a classified event applied at once has
// nothing left to do: AppliedAtOnce tells its handler to ack it before
// decoding it. A routed event (the SLA index's) or an event not applied at
// once still goes through, and so does a redelivery once the id was asked
// for.
func TestAppliedAtOnceForAClassifiedEvent(t *testing.T) {
	ctx := context.Background()
	p, _, _ := folder(t, true)
	p.appliedNow = map[string]string{}
	classified, routed := classifiedAndRouted("fb-1")
	done := func(subject, id string) bool {
		_, ok := p.AppliedAtOnce(subject, id)
		return ok
	}
	if done(bus.SubjectClassified, "classified-fb-1") {
		t.Error("applied at once before the event was applied")
	}
	p.commit([]*fold{{ctx: ctx, ev: classified, readModelOnly: true}, {ctx: ctx, ev: routed, readModelOnly: true}})
	if done(bus.RoutedSubject("billing"), "routed-fb-1") {
		t.Error("reported for a routed event: the SLA index still needs it")
	}
	if done(bus.SubjectNotified, "classified-fb-1") {
		t.Error("reported for the id on another subject")
	}
	if fid, ok := p.AppliedAtOnce(bus.SubjectClassified, "classified-fb-1"); !ok || fid != "fb-1" {
		t.Errorf("classified event applied at once: %q, %v; want fb-1, true", fid, ok)
	}
	if done(bus.SubjectClassified, "classified-fb-1") {
		t.Error("reported again: a redelivery must go through the read model")
	}
	// An event whose fold failed (the read model being rebuilt: the
	// guard's key is missing) is not reported.
	p.Store = p.Store.Fenced(rebuild.Guard{Key: "router:rebuild:ready"})
	classified2, _ := classifiedAndRouted("fb-2")
	p.commit([]*fold{{ctx: ctx, ev: classified2, readModelOnly: true}})
	if done(bus.SubjectClassified, "classified-fb-2") {
		t.Error("reported for an event whose fold failed")
	}
}

// The routing consumer applies the received event too, rebuilt from the
// classified one: the item gets its status token and received entry in the
// same read and write, and the projector's own delivery of the received
// event, later, only keeps its message's trace, without touching the item.
func TestReceivedAppliedAtOnceLeavesOnlyItsTrace(t *testing.T) {
	ctx := context.Background()
	p, store, rdb := folder(t, true)
	p.Start() // the committer KeepTrace hands its fold to
	t.Cleanup(p.Close)
	classified, routed := classifiedAndRouted("fb-1")
	at := classified.GetOccurredAt()
	classified.GetClassified().Received = &feedloopv1.ReceivedRef{EventId: "received-fb-1", OccurredAt: at, StatusToken: "tok-1"}
	received := projection.ReceivedOf(classified)
	k := itemCommands(rdb, "fb-1")
	p.commit([]*fold{{ctx: ctx, ev: received, readModelOnly: true}, {ctx: ctx, ev: classified, readModelOnly: true}, {ctx: ctx, ev: routed, readModelOnly: true}})
	if k.n("get") != 1 || k.n("set") != 1 {
		t.Errorf("item read %d and written %d times for its three events, want once each", k.n("get"), k.n("set"))
	}
	item, err := store.Item(ctx, "fb-1")
	if err != nil {
		t.Fatal(err)
	}
	if item.GetStatusToken() != "tok-1" || item.GetTimeline()[0].GetKind() != feedloopv1.TimelineKind_TIMELINE_KIND_RECEIVED {
		t.Errorf("item %v, want the received event's token and entry", item)
	}

	k.reset()

	// The projector's delivery of the received event, as its handler
	// (natsport) takes it.
	fid, ok := p.AppliedAtOnce(bus.SubjectReceived, "received-fb-1")
	if !ok || fid != "fb-1" {
		t.Fatalf("received event applied at once: %q, %v; want fb-1, true", fid, ok)
	}
	var rm atomic.Int64
	rdb.AddHook(readModelCommands(&rm))
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	if err := p.KeepTrace(ctx, fid, tp); err != nil {
		t.Fatal(err)
	}
	if n := rm.Load(); n != 1 {
		t.Errorf("%d read-model commands to keep the trace, want 1 (its SETNX)", n)
	}
	if got, err := store.Trace(ctx, "fb-1"); err != nil || got != tp {
		t.Errorf("trace %q, %v; want the received message's %q", got, err, tp)
	}
	if got := k.all(); len(got) != 0 {
		t.Errorf("the item was read or written again (%v) for the received event's own delivery", got)
	}
}

// classifiedAndRouted are an item's classified event (negative) and the
// routed event it became (billing, acknowledge within the hour), with ids
// "classified-<id>" and "routed-<id>".
func classifiedAndRouted(id string) (classified, routed *feedloopv1.Event) {
	at := timestamppb.New(time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC))
	fb := &feedloopv1.Feedback{Id: id, Text: "hi"}
	classified = &feedloopv1.Event{Id: "classified-" + id, FeedbackId: id, OccurredAt: at,
		Payload: &feedloopv1.Event_Classified{Classified: &feedloopv1.Classified{Feedback: fb,
			Classification: &feedloopv1.Classification{RedactedText: "hi", Sentiment: feedloopv1.Sentiment_SENTIMENT_NEGATIVE}}}}
	routed = &feedloopv1.Event{Id: "routed-" + id, FeedbackId: id, OccurredAt: at,
		Payload: &feedloopv1.Event_Routed{Routed: &feedloopv1.Routed{Feedback: fb,
			Assignment: &feedloopv1.Assignment{Team: "billing", AcknowledgeBy: timestamppb.New(at.AsTime().Add(time.Hour))}}}}
	return classified, routed
}

// The trace left to keep for a received event applied at once rides in
// the transaction of the batch it lands in: no round trip of its own.
func TestTraceToKeepTakesNoRoundTripOfItsOwn(t *testing.T) {
	ctx := context.Background()
	p, store, rdb := folder(t, true)
	p.appliedNow = map[string]string{}
	received := func(id string) *fold {
		return &fold{ctx: ctx, err: make(chan error, 1), ev: &feedloopv1.Event{
			Id: "received-" + id, FeedbackId: id, OccurredAt: timestamppb.New(time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)),
			Payload: &feedloopv1.Event_Received{Received: &feedloopv1.Received{Feedback: &feedloopv1.Feedback{Id: id, Source: "helpdesk", Text: "text of " + id}}},
		}}
	}
	commit := func(batch ...*fold) int64 {
		trips := &testkit.RedisTrips{}
		rdb.AddHook(trips)
		p.commit(batch)
		for _, f := range batch {
			if err := <-f.err; err != nil {
				t.Fatal(err)
			}
		}
		n, _ := trips.Take()
		return n
	}
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	alone := commit(received("fb-a"))
	with := commit(received("fb-b"), &fold{ctx: ctx, traceOf: "fb-1", traceparent: tp, err: make(chan error, 1)})
	if with != alone {
		t.Errorf("%d round trips with a trace to keep, %d without: want the same", with, alone)
	}
	if got, err := store.Trace(ctx, "fb-1"); err != nil || got != tp {
		t.Errorf("trace %q, %v; want %q", got, err, tp)
	}
}
