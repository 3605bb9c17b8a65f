package sla

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// The chain of most tests: the escalations desk at the deadline, customer
// success a minute later. With WarnAt 0.8, an acknowledge deadline 100s and
// a resolve deadline 1000s after routing fire at:
//
//	acknowledge: warning 80, level 1 100, level 2 160
//	resolve:     warning 800, level 1 1000, level 2 1060
var (
	cfg      = Config{WarnAt: 0.8, Tick: 5 * time.Millisecond}
	escChain = chain("support-escalations", 0, "customer-success", 60)
)

// firings lists what item fb's billing assignment publishes, as describe
// renders it, when routed at 0 and its timers run from start.
func firings(fb string, start int64, which ...string) []string {
	all := map[string][]string{
		"ack": {
			fmt.Sprintf("%s billing acknowledge WARNING 0 to - at %d due %d", fb, start+80, start+100),
			fmt.Sprintf("%s billing acknowledge BREACH 1 to support-escalations at %d due %d", fb, start+100, start+100),
			fmt.Sprintf("%s billing acknowledge BREACH 2 to customer-success at %d due %d", fb, start+160, start+100),
		},
		"resolve": {
			fmt.Sprintf("%s billing resolve WARNING 0 to - at %d due %d", fb, start+800, start+1000),
			fmt.Sprintf("%s billing resolve BREACH 1 to support-escalations at %d due %d", fb, start+1000, start+1000),
			fmt.Sprintf("%s billing resolve BREACH 2 to customer-success at %d due %d", fb, start+1060, start+1000),
		},
	}
	var out []string
	for _, w := range which {
		d, n, _ := strings.Cut(w, ":")
		k := len(all[d])
		if n != "" {
			fmt.Sscan(n, &k)
		}
		out = append(out, all[d][:k]...)
	}
	slices.Sort(out)
	return out
}

func TestWarningBreachAndChainOnceWithTwoSchedulers(t *testing.T) {
	e := newEnv(t, cfg)
	// Several items, so that the two replicas really race for firings due
	// in the same second.
	var items []string
	for i := range 8 {
		fb := fmt.Sprintf("fb-%d", i)
		items = append(items, fb)
		e.emit(bus.RoutedSubject("billing"), routed(fb, "billing", 100, 1000, escChain))
	}
	a, b := e.scheduler(), e.scheduler()
	testkit.Run(t, a.Run)
	testkit.Run(t, b.Run)

	steps := []struct {
		secs int64
		want []string // per item
	}{
		{79, nil},
		{80, []string{"ack:1"}},
		{99, []string{"ack:1"}},
		{100, []string{"ack:2"}},
		{159, []string{"ack:2"}},
		{160, []string{"ack"}},
		{800, []string{"ack", "resolve:1"}},
		{1000, []string{"ack", "resolve:2"}},
		{1060, []string{"ack", "resolve"}},
		{100000, []string{"ack", "resolve"}}, // the chain is exhausted
	}
	for _, st := range steps {
		e.settle(st.secs, a, b)
		var want []string
		for _, fb := range items {
			want = append(want, firings(fb, 0, st.want...)...)
		}
		slices.Sort(want)
		if got := e.fired(); !slices.Equal(got, want) {
			t.Fatalf("at %ds:\n got %d: %s\nwant %d: %s", st.secs, len(got), strings.Join(got, "\n  "), len(want), strings.Join(want, "\n  "))
		}
	}

	// One event in full.
	var l2 *feedloopv1.Event
	for _, ev := range e.escalations() {
		if describe(ev) == firings("fb-3", 0, "ack")[1] {
			l2 = ev
		}
	}
	x := l2.GetEscalated()
	if want := bus.DeriveID("fb-3", "escalated", "billing", "acknowledge", fmt.Sprint(at(100).Unix()), "ESCALATION_KIND_BREACH", "2"); l2.GetId() != want {
		t.Errorf("id = %s, want %s", l2.GetId(), want)
	}
	if x.GetFeedback().GetText() != "Call me on [phone], charged twice" || x.GetFeedback().GetSource() != "helpdesk" {
		t.Errorf("feedback = %v, want the redacted text and the rest", x.GetFeedback())
	}
	if x.GetPriority() != feedloopv1.Priority_PRIORITY_HIGH {
		t.Errorf("priority = %v", x.GetPriority())
	}
	if dump := e.dump(); dump[e.cfg.withDefaults().KeyPrefix+"due"] != "" {
		t.Errorf("timers left after every chain ended: %q", dump[e.cfg.withDefaults().KeyPrefix+"due"])
	}
}

// Two replicas' ticks at the same instant, on many due firings at once,
// still store one event per firing.
func TestRacingTicksPublishEachFiringOnce(t *testing.T) {
	e := newEnv(t, cfg)
	const n = 40
	for i := range n {
		e.emit(bus.RoutedSubject("billing"), routed(fmt.Sprintf("fb-%02d", i), "billing", 100, 1000, escChain))
	}
	a, b := e.scheduler(), e.scheduler()
	for _, secs := range []int64{80, 100, 160} {
		e.clock.Set(at(secs))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, s := range []*Scheduler{a, b} {
			wg.Go(func() {
				<-start
				if _, err := s.Fire(e.ctx); err != nil {
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
	}
	got := e.fired()
	var want []string
	for i := range n {
		want = append(want, firings(fmt.Sprintf("fb-%02d", i), 0, "ack")...)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("got %d escalations, want %d (3 per item, once each):\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
}

func TestAcknowledgeCancelsOnlyTheAcknowledgeTimers(t *testing.T) {
	for _, to := range []feedloopv1.Status{feedloopv1.Status_STATUS_ACKNOWLEDGED, feedloopv1.Status_STATUS_PLANNED} {
		t.Run(to.String(), func(t *testing.T) {
			e := newEnv(t, cfg)
			s := e.scheduler()
			e.emit(bus.RoutedSubject("billing"), routed("fb-1", "billing", 100, 1000, escChain))
			e.fire(s, 85) // the acknowledge warning
			e.emit(bus.UpdatedSubject("billing"), status("fb-1", "billing", to, 90))
			e.fire(s, 100000)
			if got, want := e.fired(), firings("fb-1", 0, "ack:1", "resolve"); !slices.Equal(got, want) {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

func TestResolveCancelsAllAndReopenRearms(t *testing.T) {
	for _, to := range []feedloopv1.Status{feedloopv1.Status_STATUS_RESOLVED, feedloopv1.Status_STATUS_DECLINED, feedloopv1.Status_STATUS_REROUTED} {
		t.Run(to.String(), func(t *testing.T) {
			e := newEnv(t, cfg)
			s := e.scheduler()
			e.emit(bus.RoutedSubject("billing"), routed("fb-1", "billing", 100, 1000, escChain))
			// Acknowledged late: the acknowledge chain has started.
			e.fire(s, 100)
			e.emit(bus.UpdatedSubject("billing"), status("fb-1", "billing", to, 120))
			e.fire(s, 5000)
			first := firings("fb-1", 0, "ack:2")
			if got := e.fired(); !slices.Equal(got, first) {
				t.Fatalf("after %s: got\n%s\nwant\n%s", to, strings.Join(got, "\n"), strings.Join(first, "\n"))
			}
			// The customer's answer reopens it at 6000: both windows again,
			// from then on; the first round's ids do not hide the second's.
			e.emit(bus.UpdatedSubject("billing"), status("fb-1", "billing", feedloopv1.Status_STATUS_REOPENED, 6000))
			e.fire(s, 6079)
			if got := e.fired(); len(got) != 2 {
				t.Fatalf("before the reopened warning: %d escalations, want 2", len(got))
			}
			e.fire(s, 100000)
			want := append(firings("fb-1", 6000, "ack", "resolve"), first...)
			slices.Sort(want)
			if got := e.fired(); !slices.Equal(got, want) {
				t.Errorf("after reopen: got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

func TestRestartFiresOverdueTimersOnce(t *testing.T) {
	e := newEnv(t, cfg)
	e.emit(bus.RoutedSubject("billing"), routed("fb-1", "billing", 100, 1000, escChain))
	first := e.scheduler()
	stop := testkit.Run(t, first.Run)
	e.settle(80, first)
	stop()

	// Down for half an hour: everything else falls due meanwhile.
	e.clock.Set(at(1800))
	if got, want := e.fired(), firings("fb-1", 0, "ack:1"); !slices.Equal(got, want) {
		t.Fatalf("while down: %v, want %v", got, want)
	}
	second := e.scheduler()
	testkit.Run(t, second.Run)
	e.settle(1800, second)
	// Each fired once, stamped with when it was due, not when it fired.
	want := firings("fb-1", 0, "ack", "resolve")
	if got := e.fired(); !slices.Equal(got, want) {
		t.Fatalf("after restart: got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	third := e.scheduler()
	testkit.Run(t, third.Run)
	e.settle(1900, second, third)
	if got := e.fired(); !slices.Equal(got, want) {
		t.Fatalf("another restart fired again: %d escalations, want %d", len(got), len(want))
	}
}

// An escalation that was published while the team acknowledged, and is
// applied after the acknowledgement, must not arm the next level.
func TestEscalationAppliedAfterAcknowledgeIsMoot(t *testing.T) {
	e := newEnv(t, cfg)
	e.emit(bus.RoutedSubject("billing"), routed("fb-1", "billing", 100, 1000, escChain))
	ev, err := e.idx.firing(e.ctx, member(memberBreach, Acknowledge, "billing", "fb-1"), at(100).Unix())
	if err != nil || ev == nil {
		t.Fatalf("level 1 not due at 100: %v, %v", ev, err)
	}
	if _, err := e.bus.Publish(e.ctx, bus.EscalatedSubject("billing"), ev); err != nil {
		t.Fatal(err)
	}
	e.emit(bus.UpdatedSubject("billing"), status("fb-1", "billing", feedloopv1.Status_STATUS_ACKNOWLEDGED, 100))
	if err := e.idx.Apply(e.ctx, ev); err != nil {
		t.Fatal(err)
	}
	e.fire(e.scheduler(), 500)
	want := []string{"fb-1 billing acknowledge BREACH 1 to support-escalations at 100 due 100"}
	if got := e.fired(); !slices.Equal(got, want) {
		t.Errorf("got %v, want only %v (no level 2 after the acknowledgement)", got, want)
	}
}

// An Escalated event moves the timer on only if the timer is still at the
// firing it reports: the same deadline round, the same level.
func TestEscalatedMovesOnlyTheFiringItReports(t *testing.T) {
	e := newEnv(t, cfg)
	e.emit(bus.RoutedSubject("billing"), routed("fb-1", "billing", 100, 1000, escChain))
	breach := func(level int32, due int64) *feedloopv1.Event {
		return &feedloopv1.Event{
			Id: fmt.Sprintf("forged-%d-%d", level, due), FeedbackId: "fb-1", OccurredAt: timestamppb.New(at(due)),
			Payload: &feedloopv1.Event_Escalated{Escalated: &feedloopv1.Escalated{
				Team: "billing", Deadline: Acknowledge, Level: level, DueAt: timestamppb.New(at(due)),
				Kind: feedloopv1.EscalationKind_ESCALATION_KIND_BREACH,
			}},
		}
	}
	timers := func() string { return e.dump()[e.idx.dueKey()] }
	before := timers()
	for _, ev := range []*feedloopv1.Event{breach(2, 100), breach(1, 5000), breach(0, 100)} {
		if err := e.idx.Apply(e.ctx, ev); err != nil {
			t.Fatal(err)
		}
		if after := timers(); after != before {
			t.Fatalf("%s moved the timers from\n%s to\n%s", describe(ev), before, after)
		}
	}
	// Level 1 applied before its warning went out (the warning's publish
	// failed): the warning is moot and never follows the breach.
	if err := e.idx.Apply(e.ctx, breach(1, 100)); err != nil {
		t.Fatal(err)
	}
	e.fire(e.scheduler(), 200)
	want := []string{"fb-1 billing acknowledge BREACH 2 to customer-success at 160 due 100"}
	if got := e.fired(); !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// Replaying the stream into an empty Redis gives the index the live one
// has, and applying every event again changes nothing.
func TestRebuildFromStreamEqualsLiveIndex(t *testing.T) {
	e := newEnv(t, cfg)
	s := e.scheduler()
	emit := func(ev *feedloopv1.Event) {
		switch p := ev.GetPayload().(type) {
		case *feedloopv1.Event_Routed:
			e.emit(bus.RoutedSubject(p.Routed.GetAssignment().GetTeam()), ev)
		case *feedloopv1.Event_StatusChanged:
			e.emit(bus.UpdatedSubject(p.StatusChanged.GetTeam()), ev)
		}
	}
	emit(routed("fb-a", "billing", 100, 1000, escChain))                          // runs its course
	emit(routed("fb-b", "billing", 100, 1000, escChain))                          // acknowledged mid-chain
	emit(routed("fb-c", "billing", 100, 1000, escChain))                          // resolved, then reopened
	emit(routed("fb-d", "product", 300, 0, nil))                                  // no chain, no resolve deadline
	emit(routed("fb-e", "marketing", 0, 0, nil))                                  // no deadlines at all
	emit(routed("fb-b", "logistics", 100, 2000, chain("support-escalations", 0))) // a second team on an item
	e.fire(s, 110)
	emit(status("fb-b", "billing", feedloopv1.Status_STATUS_ACKNOWLEDGED, 120))
	emit(status("fb-c", "billing", feedloopv1.Status_STATUS_RESOLVED, 130))
	emit(status("fb-e", "marketing", feedloopv1.Status_STATUS_RESOLVED, 130))
	e.fire(s, 500)
	emit(status("fb-c", "billing", feedloopv1.Status_STATUS_REOPENED, 600))
	e.fire(s, 700)
	// The race of the test above: in the stream before the acknowledgement,
	// applied after it.
	ev, err := e.idx.firing(e.ctx, member(memberWarning, Resolve, "logistics", "fb-b"), at(1600).Unix())
	if err != nil || ev == nil {
		t.Fatalf("resolve warning of fb-b/logistics: %v, %v", ev, err)
	}
	if _, err := e.bus.Publish(e.ctx, bus.EscalatedSubject("logistics"), ev); err != nil {
		t.Fatal(err)
	}
	emit(status("fb-b", "logistics", feedloopv1.Status_STATUS_DECLINED, 1600))
	if err := e.idx.Apply(e.ctx, ev); err != nil {
		t.Fatal(err)
	}
	e.fire(s, 1010)
	if n := len(e.fired()); n < 8 {
		t.Fatalf("only %d escalations: the scenario does not exercise the chain", n)
	}

	live := e.dump()
	if len(live) < 5 {
		t.Fatalf("live index has %d keys: %v", len(live), live)
	}
	var events []*feedloopv1.Event
	for _, m := range testkit.Messages(t, e.bus, bus.StreamFeedback, bus.AllFeedback) {
		ev, err := (&bus.Msg{Data: m.Data}).Event()
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	// Reset empties the index and nothing else; the brief's flushed Redis
	// follows.
	if err := e.rdb.Set(e.ctx, "feedloop:readmodel:x", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.idx.Reset(e.ctx); err != nil {
		t.Fatal(err)
	}
	if d := e.dump(); len(d) != 0 {
		t.Fatalf("after Reset: %v", d)
	}
	if e.rdb.Exists(e.ctx, "feedloop:readmodel:x").Val() != 1 {
		t.Fatal("Reset deleted a key outside the index")
	}
	if err := e.rdb.FlushAll(e.ctx).Err(); err != nil {
		t.Fatal(err)
	}
	rebuilt := e.index()
	for _, ev := range events {
		if err := rebuilt.Apply(e.ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if d := diff(live, e.dump()); d != "" {
		t.Fatalf("rebuilt index differs from the live one:\n%s", d)
	}
	for _, ev := range events {
		if err := rebuilt.Apply(e.ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if d := diff(live, e.dump()); d != "" {
		t.Fatalf("applying every event again changed the index:\n%s", d)
	}
}

func TestBreachWithoutChainOrWarning(t *testing.T) {
	e := newEnv(t, Config{WarnAt: 0})
	s := e.scheduler()
	e.emit(bus.RoutedSubject("billing"), routed("fb-1", "billing", 100, 0, nil))
	e.emit(bus.RoutedSubject("marketing"), routed("fb-1", "marketing", 0, 0, nil))
	e.fire(s, 100000)
	want := []string{"fb-1 billing acknowledge BREACH 1 to - at 100 due 100"}
	if got := e.fired(); !slices.Equal(got, want) {
		t.Errorf("got %v, want %v: one breach alerting the team alone", got, want)
	}
}

func TestDeadlinesRoundUpToTheSecond(t *testing.T) {
	e := newEnv(t, Config{WarnAt: 0.5})
	ev := routed("fb-1", "billing", 0, 0, nil)
	ev.OccurredAt = timestamppb.New(t0.Add(-300e6)) // 0.3s before t0: the window starts at t0
	ev.GetRouted().GetAssignment().AcknowledgeBy = timestamppb.New(at(9).Add(700e6))
	e.emit(bus.RoutedSubject("billing"), ev)
	s := e.scheduler()
	e.fire(s, 9)
	if got := e.fired(); len(got) != 1 || got[0] != "fb-1 billing acknowledge WARNING 0 to - at 5 due 10" {
		t.Fatalf("at 9s: %v, want the warning at 5 (half of the 10s window)", got)
	}
	e.fire(s, 10)
	if got := e.fired(); len(got) != 2 || got[0] != "fb-1 billing acknowledge BREACH 1 to - at 10 due 10" {
		t.Errorf("at 10s: %v, want the breach at 10, never before 9.7", got)
	}
}

func TestApply(t *testing.T) {
	e := newEnv(t, cfg)
	noTeam := routed("fb-1", "", 100, 0, nil)
	noTime := routed("fb-1", "billing", 100, 0, nil)
	noTime.OccurredAt = nil
	noFeedback := status("", "billing", feedloopv1.Status_STATUS_RESOLVED, 1)
	badDeadline := &feedloopv1.Event{Id: "x", FeedbackId: "fb-1", OccurredAt: timestamppb.New(t0), Payload: &feedloopv1.Event_Escalated{Escalated: &feedloopv1.Escalated{Team: "billing", Deadline: "reply", DueAt: timestamppb.New(t0)}}}
	for name, ev := range map[string]*feedloopv1.Event{"no team": noTeam, "no occurred_at": noTime, "no feedback id": noFeedback, "unknown deadline": badDeadline} {
		err := e.idx.Apply(e.ctx, ev)
		if !errors.Is(err, ErrMalformed) || !bus.IsPermanent(err) {
			t.Errorf("%s: err = %v, want a permanent ErrMalformed", name, err)
		}
	}
	// Events that have nothing to do with timers, and transitions of
	// assignments the index does not know, leave it alone.
	for _, ev := range []*feedloopv1.Event{
		{Id: "r", FeedbackId: "fb-1", Payload: &feedloopv1.Event_Received{Received: &feedloopv1.Received{}}},
		status("fb-1", "billing", feedloopv1.Status_STATUS_REOPENED, 5),
		status("fb-1", "billing", feedloopv1.Status_STATUS_ROUTED, 5),
	} {
		if err := e.idx.Apply(e.ctx, ev); err != nil {
			t.Errorf("%s: %v", bus.PayloadType(ev), err)
		}
	}
	if d := e.dump(); len(d) != 0 {
		t.Errorf("index not empty: %v", d)
	}
	// The same Routed twice, even after the chain moved on, arms once.
	s := e.scheduler()
	r := routed("fb-1", "billing", 100, 1000, escChain)
	e.emit(bus.RoutedSubject("billing"), r)
	e.fire(s, 100)
	before := e.dump()
	if err := e.idx.Apply(e.ctx, r); err != nil {
		t.Fatal(err)
	}
	if d := diff(before, e.dump()); d != "" {
		t.Errorf("a redelivered Routed changed the index:\n%s", d)
	}
	// A member whose record is gone (deleted by hand) does not block ticks.
	if err := e.rdb.Del(e.ctx, e.idx.recordKey("billing", "fb-1")).Err(); err != nil {
		t.Fatal(err)
	}
	e.fire(s, 100000)
	if n, err := e.rdb.ZCard(e.ctx, e.idx.dueKey()).Result(); err != nil || n != 0 {
		t.Errorf("due set keeps %d orphans (%v)", n, err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{WarnAt: 1}, {WarnAt: -0.1}, {Tick: -1}} {
		if _, err := NewIndex(redis.NewClient(&redis.Options{}), c); err == nil {
			t.Errorf("NewIndex(%+v) accepted", c)
		}
	}
}

func TestResetTakesThePrefixLiterally(t *testing.T) {
	e := newEnv(t, Config{WarnAt: 0.5, KeyPrefix: "{sla}[a]*:"})
	e.emit(bus.RoutedSubject("billing"), routed("fb-1", "billing", 100, 0, nil))
	for _, k := range []string{"{sla}a:x", "{sla}[a]x", "other"} {
		e.rdb.Set(e.ctx, k, "1", 0)
	}
	if len(e.dump()) != 2 {
		t.Fatalf("index keys: %v", e.dump())
	}
	if err := e.idx.Reset(e.ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.rdb.DBSize(e.ctx).Val(); n != 3 || len(e.dump()) != 0 {
		t.Errorf("after Reset: %d keys, index %v; want the 3 others only", n, e.dump())
	}
}

// TestApplyBatchEqualsOneAtATime folds the same events one at a time into
// one index and in batches into another: the indexes must be equal, a
// batch holding an event twice or an event of another assignment's record
// included, and a malformed event fails alone.
func TestApplyBatchEqualsOneAtATime(t *testing.T) {
	one, batched := newEnv(t, cfg), newEnv(t, cfg)
	bad := status("fb-a", "billing", feedloopv1.Status_STATUS_ACKNOWLEDGED, 50)
	bad.OccurredAt = nil
	evs := []*feedloopv1.Event{
		routed("fb-a", "billing", 100, 1000, escChain),
		routed("fb-b", "billing", 100, 1000, escChain),
		routed("fb-a", "product", 300, 0, nil),
		bad,
		status("fb-a", "billing", feedloopv1.Status_STATUS_ACKNOWLEDGED, 120),
		routed("fb-b", "billing", 100, 1000, escChain), // a redelivery
		status("fb-b", "billing", feedloopv1.Status_STATUS_RESOLVED, 130),
		status("fb-c", "billing", feedloopv1.Status_STATUS_RESOLVED, 130), // no such assignment
		status("fb-b", "billing", feedloopv1.Status_STATUS_REOPENED, 600),
		routed("fb-c", "marketing", 0, 0, nil),
		status("fb-a", "product", feedloopv1.Status_STATUS_DECLINED, 700),
	}
	for _, ev := range evs {
		err := one.idx.Apply(one.ctx, ev)
		if (ev == bad) != (err != nil) {
			t.Fatalf("Apply %s: %v", describe(ev), err)
		}
	}
	for _, size := range []int{5, 3, 3} {
		batch := evs[:size]
		evs = evs[size:]
		for i, err := range batched.idx.ApplyBatch(batched.ctx, batch) {
			if (batch[i] == bad) != (err != nil) {
				t.Fatalf("ApplyBatch %s: %v", describe(batch[i]), err)
			}
			if batch[i] == bad && !errors.Is(err, ErrMalformed) {
				t.Fatalf("malformed event: %v, want ErrMalformed", err)
			}
		}
	}
	want := one.dump()
	if len(want) < 4 {
		t.Fatalf("the index has %d keys: the scenario does not exercise it: %v", len(want), want)
	}
	if d := diff(want, batched.dump()); d != "" {
		t.Fatalf("batched index differs from the one applied one at a time:\n%s", d)
	}
}
