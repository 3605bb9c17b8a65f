package readmodel_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router/internal/readmodel"
)

func ids(sums []*feedloopv1.ItemSummary) []string {
	out := make([]string, len(sums))
	for i, s := range sums {
		out[i] = s.GetFeedbackId()
	}
	return out
}

func TestItemAndToken(t *testing.T) {
	ctx := context.Background()
	s, _ := store(t)
	sc := realistic()
	applyAll(t, s, sc.events)

	item, err := s.Item(ctx, "fb-a")
	if err != nil {
		t.Fatal(err)
	}
	if got := item.GetFeedback().GetText(); got != classification().RedactedText {
		t.Errorf("text = %q, want the redacted text", got)
	}
	var teams []string
	for _, a := range item.GetAssignments() {
		teams = append(teams, a.GetTeam()+"="+a.GetStatus().String())
	}
	if want := []string{"billing=STATUS_RESOLVED", "product=STATUS_REROUTED", "logistics=STATUS_ACKNOWLEDGED"}; !slices.Equal(teams, want) {
		t.Errorf("assignments = %v, want %v", teams, want)
	}
	var n int
	for _, ev := range sc.events {
		if ev.GetFeedbackId() == "fb-a" && ev.GetClassified() == nil {
			n++ // every event but Classified adds a timeline entry
		}
	}
	if len(item.GetTimeline()) != n {
		t.Errorf("timeline has %d entries, want %d", len(item.GetTimeline()), n)
	}

	byTok, err := s.ItemByToken(ctx, "tok-fb-b")
	if err != nil || byTok.GetFeedbackId() != "fb-b" {
		t.Errorf("ItemByToken = %v, %v; want fb-b", byTok.GetFeedbackId(), err)
	}
	if _, err := s.Item(ctx, "fb-zzz"); !errors.Is(err, readmodel.ErrNotFound) {
		t.Errorf("Item(unknown) error = %v, want ErrNotFound", err)
	}
	for _, tok := range []string{"tok-unknown", ""} {
		if _, err := s.ItemByToken(ctx, tok); !errors.Is(err, readmodel.ErrNotFound) {
			t.Errorf("ItemByToken(%q) error = %v, want ErrNotFound", tok, err)
		}
	}
}

// TestList: order by due time then id, nothing due last, status filters,
// paging, and a status change moving an item.
func TestList(t *testing.T) {
	ctx := context.Background()
	s, _ := store(t)
	sc := &script{}
	route := func(id string, d time.Duration, sl sla) {
		fb := sc.receive(id, "c-"+id, "", d)
		sc.route(fb, "billing", d, sl, "")
	}
	route("x1", 0, sla{ack: 2 * time.Hour, resolve: 48 * time.Hour})
	route("x2", 0, sla{ack: time.Hour})
	route("x3", 0, sla{})
	route("x0", 0, sla{ack: time.Hour, resolve: 24 * time.Hour})
	route("x4", 0, defaultSLA)
	sc.route(feedback("x1", "c-x1", "", 0), "product", time.Second, defaultSLA, "") // fan-out
	sc.change("x4", "billing", routedSt, resolvedSt, time.Minute)
	applyAll(t, s, sc.events)

	list := func(statuses []feedloopv1.Status, offset, limit int) ([]string, int64) {
		t.Helper()
		sums, total, err := s.List(ctx, "billing", statuses, "", offset, limit)
		if err != nil {
			t.Fatal(err)
		}
		return ids(sums), total
	}
	tests := []struct {
		name          string
		statuses      []feedloopv1.Status
		offset, limit int
		want          []string
		total         int64
	}{
		{"open by due then id", nil, 0, 0, []string{"x0", "x2", "x1", "x3"}, 4},
		{"open named explicitly", []feedloopv1.Status{reopenedSt, routedSt, plannedSt, ackSt}, 0, 10, []string{"x0", "x2", "x1", "x3"}, 4},
		{"page", nil, 1, 2, []string{"x2", "x1"}, 4},
		{"past the end", nil, 9, 2, []string{}, 4},
		{"one status", []feedloopv1.Status{resolvedSt}, 0, 10, []string{"x4"}, 1},
		{"several statuses", []feedloopv1.Status{resolvedSt, routedSt, resolvedSt}, 0, 0, []string{"x0", "x2", "x1", "x3", "x4"}, 5},
		{"several statuses, page", []feedloopv1.Status{resolvedSt, routedSt}, 3, 5, []string{"x3", "x4"}, 5},
		{"nothing", []feedloopv1.Status{declinedSt}, 0, 10, []string{}, 0},
	}
	for _, tt := range tests {
		got, total := list(tt.statuses, tt.offset, tt.limit)
		if !slices.Equal(got, tt.want) || total != tt.total {
			t.Errorf("%s: List = %v (total %d), want %v (total %d)", tt.name, got, total, tt.want, tt.total)
		}
	}

	sums, _, err := s.List(ctx, "billing", nil, "", 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := &feedloopv1.ItemSummary{
		FeedbackId: "x1",
		Assignment: &feedloopv1.AssignmentState{
			Team: "billing", Route: "billing-route", Priority: feedloopv1.Priority_PRIORITY_NORMAL,
			Status: routedSt, RoutedAt: at(0), AcknowledgeBy: at(2 * time.Hour), ResolveBy: at(48 * time.Hour),
			DueAt: at(2 * time.Hour),
		},
		Topics:     []string{"billing", "app"},
		Sentiment:  "negative",
		Excerpt:    "I was charged twice, call me on [PHONE]",
		ReceivedAt: at(0),
		OtherTeams: map[string]feedloopv1.Status{"product": routedSt},
		Customer:   &feedloopv1.Customer{Id: "c-x1"},
	}
	if !proto.Equal(sums[0], want) {
		t.Errorf("summary =\n%v\nwant\n%v", sums[0], want)
	}

	// Acknowledging x0 moves it to its resolve deadline, after x1's.
	more := &script{events: sc.events}
	more.change("x0", "billing", routedSt, ackSt, 10*time.Minute)
	applyAll(t, s, more.events[len(sc.events):])
	if got, _ := list(nil, 0, 0); !slices.Equal(got, []string{"x2", "x1", "x0", "x3"}) {
		t.Errorf("after ack: List = %v", got)
	}
	if got, _ := list([]feedloopv1.Status{routedSt}, 0, 0); !slices.Equal(got, []string{"x2", "x1", "x3"}) {
		t.Errorf("after ack: routed = %v", got)
	}
	if got, _ := list([]feedloopv1.Status{ackSt}, 0, 0); !slices.Equal(got, []string{"x0"}) {
		t.Errorf("after ack: acknowledged = %v", got)
	}
	if sums, total, _ := s.List(ctx, "product", nil, "", 0, 0); !slices.Equal(ids(sums), []string{"x1"}) || total != 1 {
		t.Errorf("product: List = %v", ids(sums))
	}
}

func TestCustomerHistory(t *testing.T) {
	ctx := context.Background()
	s, _ := store(t)
	sc := realistic()
	d := sc.receive("fb-d", "", " dan@example.com", 50*time.Minute)
	sc.route(d, "product", 50*time.Minute, defaultSLA, "")
	e := sc.receive("fb-e", "c-1", "", 6*time.Hour)
	sc.route(e, "billing", 6*time.Hour, defaultSLA, "")
	applyAll(t, s, sc.events)

	history := func(id string, limit int) []*feedloopv1.ItemSummary {
		t.Helper()
		item, err := s.Item(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		h, err := s.CustomerHistory(ctx, item, limit)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	tests := []struct {
		id    string
		limit int
		want  []string
	}{
		{"fb-a", 0, []string{"fb-e", "fb-b"}},
		{"fb-b", 0, []string{"fb-e", "fb-a"}},
		{"fb-e", 0, []string{"fb-b", "fb-a"}},
		{"fb-a", 1, []string{"fb-e"}},
		{"fb-e", 1, []string{"fb-b"}},
		{"fb-c", 0, []string{"fb-d"}}, // by email, whatever its case
		{"fb-d", 0, []string{"fb-c"}},
	}
	for _, tt := range tests {
		if got := ids(history(tt.id, tt.limit)); !slices.Equal(got, tt.want) {
			t.Errorf("CustomerHistory(%s, %d) = %v, want %v", tt.id, tt.limit, got, tt.want)
		}
	}
	h := history("fb-b", 0)
	want := map[string]feedloopv1.Status{"billing": resolvedSt, "product": reroutedSt, "logistics": ackSt}
	if a := h[1]; a.GetAssignment() != nil || len(a.GetOtherTeams()) != 3 || !mapsEqual(a.GetOtherTeams(), want) {
		t.Errorf("history summary of fb-a = %v, want every team's status %v", a, want)
	}
	if got, err := s.CustomerHistory(ctx, &feedloopv1.Item{FeedbackId: "anon"}, 0); err != nil || len(got) != 0 {
		t.Errorf("no customer: %v, %v", got, err)
	}
}

func mapsEqual(a, b map[string]feedloopv1.Status) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestKPIs follows two teams through a scripted day: both acknowledge after
// 10 minutes and close after an hour, the customer answers the survey with
// CSAT 1, both reopen; then billing resolves again, product reroutes to
// logistics, billing breaches an SLA.
func TestKPIs(t *testing.T) {
	ctx := context.Background()
	s, _ := store(t)
	sc := &script{}
	k := sc.receive("k1", "c-9", "", 0)
	sc.route(k, "billing", 0, defaultSLA, "")
	sc.route(k, "product", 0, defaultSLA, "")
	k2 := sc.receive("k2", "c-8", "", 0)
	sc.route(k2, "billing", 0, defaultSLA, "")
	sc.escalate("k2", "billing", feedloopv1.EscalationKind_ESCALATION_KIND_WARNING, 0, 45*time.Minute)
	sc.escalate("k2", "billing", feedloopv1.EscalationKind_ESCALATION_KIND_BREACH, 1, time.Hour)
	sc.escalate("k2", "billing", feedloopv1.EscalationKind_ESCALATION_KIND_BREACH, 2, 2*time.Hour)
	sc.change("k1", "billing", routedSt, ackSt, 10*time.Minute)
	sc.change("k1", "product", routedSt, ackSt, 10*time.Minute)
	sc.change("k1", "billing", ackSt, resolvedSt, time.Hour)
	sc.change("k1", "product", ackSt, declinedSt, time.Hour)
	sc.notify("k1", "billing", feedloopv1.Step_STEP_RESOLVED, time.Hour+time.Second)
	// Product's customer was not told (no consent, say): a team message
	// does not count.
	sc.add(bus.SubjectNotified, "k1", time.Hour+time.Second, &feedloopv1.Notified{Step: feedloopv1.Step_STEP_DECLINED, Audience: "team", Team: "product"})
	sc.add(bus.SubjectClosed, "k1", time.Hour+time.Second, &feedloopv1.Closed{Teams: []string{"billing", "product"}, Round: 1})
	for _, team := range []string{"billing", "product"} {
		sc.add(bus.UpdatedSubject(team), "k1", 2*time.Hour, &feedloopv1.Replied{Team: team, Csat: 1, Reopened: true})
		sc.change("k1", team, resolvedSt, reopenedSt, 2*time.Hour)
	}
	sc.change("k1", "billing", reopenedSt, ackSt, 2*time.Hour+time.Minute)             // not a first ack
	sc.change("k1", "billing", ackSt, resolvedSt, 3*time.Hour)                         // not a first close
	sc.notify("k1", "billing", feedloopv1.Step_STEP_RESOLVED, 3*time.Hour+time.Second) // told again: same share
	sc.change("k1", "product", reopenedSt, reroutedSt, 4*time.Hour, func(c *feedloopv1.StatusChanged) { c.RerouteTo = "logistics" })
	sc.route(k, "logistics", 4*time.Hour, defaultSLA, "product")
	applyAll(t, s, sc.events)

	csat := func(n ...int64) []int64 { return n }
	want := map[string]*feedloopv1.StatsResponse{
		"billing": {
			Team: "billing", Routed: 2, Open: 1, Acknowledged: 1, Resolved: 2, Reopened: 1,
			SlaWarnings: 1, SlaBreaches: 1,
			MeanTimeToAcknowledge: durationpb.New(10 * time.Minute),
			MeanTimeToClose:       durationpb.New(time.Hour),
			CsatResponses:         1, CsatMean: 1, CsatCounts: csat(1, 0, 0, 0, 0),
			ClosedLoopRate: 1,
		},
		"product": {
			Team: "product", Routed: 1, Open: 0, Acknowledged: 1, Declined: 1, Reopened: 1, ReroutedOut: 1,
			MeanTimeToAcknowledge: durationpb.New(10 * time.Minute),
			MeanTimeToClose:       durationpb.New(time.Hour),
			CsatResponses:         1, CsatMean: 1, CsatCounts: csat(1, 0, 0, 0, 0),
			ClosedLoopRate: 0,
		},
		"logistics": {Team: "logistics", Routed: 1, ReroutedIn: 1, Open: 1, CsatCounts: csat(0, 0, 0, 0, 0)},
		"nobody":    {Team: "nobody", CsatCounts: csat(0, 0, 0, 0, 0)},
	}
	for team, w := range want {
		got, err := s.Stats(ctx, team, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, w) {
			t.Errorf("Stats(%s) =\n%v\nwant\n%v", team, got, w)
		}
	}

	// Mixed scores average.
	more := &script{events: slices.Clone(sc.events)}
	more.add(bus.UpdatedSubject("billing"), "k2", 5*time.Hour, &feedloopv1.Replied{Team: "billing", Csat: 4})
	more.add(bus.UpdatedSubject("billing"), "k2", 5*time.Hour, &feedloopv1.Replied{Team: "billing", Csat: 5})
	applyAll(t, s, more.events[len(sc.events):])
	got, err := s.Stats(ctx, "billing", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if got.CsatResponses != 3 || got.CsatMean != 10.0/3 || !slices.Equal(got.CsatCounts, csat(1, 0, 0, 1, 1)) {
		t.Errorf("csat after 1, 4, 5: responses %d, mean %v, counts %v", got.CsatResponses, got.CsatMean, got.CsatCounts)
	}
}

// TestIdempotent: every event applied twice (at once, and all again later)
// gives the same state as once, KPI counters included.
func TestIdempotent(t *testing.T) {
	ctx := context.Background()
	once, _ := store(t)
	twice, _ := store(t)
	sc := realistic()
	applyAll(t, once, sc.events)
	for _, ev := range sc.events {
		for i, want := range []bool{true, false} {
			got, err := twice.Apply(ctx, ev)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("Apply #%d of %s = %v, want %v", i+1, ev.GetId(), got, want)
			}
		}
	}
	for _, ev := range sc.events {
		if applied, err := twice.Apply(ctx, ev); err != nil || applied {
			t.Fatalf("re-Apply of %s = %v, %v", ev.GetId(), applied, err)
		}
	}
	if diff := diffDumps(dump(t, twice), dump(t, once)); diff != "" {
		t.Errorf("applied twice differs from once:\n%s", diff)
	}
	// The projection's refusals are not failures and change nothing.
	for _, ev := range []*feedloopv1.Event{
		{Id: "x", FeedbackId: "fb-a"},
		{Id: "", FeedbackId: "fb-a", Payload: &feedloopv1.Event_Commented{Commented: &feedloopv1.Commented{}}},
	} {
		if applied, err := twice.Apply(ctx, ev); err != nil || applied {
			t.Errorf("Apply(%v) = %v, %v; want false, nil", ev, applied, err)
		}
	}
	if diff := diffDumps(dump(t, twice), dump(t, once)); diff != "" {
		t.Errorf("ignored events changed the state:\n%s", diff)
	}
}

// TestApplyBatchEqualsOneAtATime folds the realistic stream one event at a
// time into one store and in batches of every size into others: each
// batch holds several items and, at the seam, an event twice; the stores
// must be equal, each event reported applied exactly once, and the KPI
// funcs told of each once, with the item as that event left it (an item
// with one event in a batch is folded without a copy, one with several
// with a copy per event).
func TestApplyBatchEqualsOneAtATime(t *testing.T) {
	ctx := context.Background()
	after := map[string]string{} // event id → the item it left, one at a time
	encode := func(item *feedloopv1.Item) string {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(item)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	one, _ := store(t, readmodel.WithApplied(func(_ context.Context, ev *feedloopv1.Event, item *feedloopv1.Item, _ map[string]map[string]int64) {
		after[ev.GetId()] = encode(item)
	}))
	sc := realistic()
	applyAll(t, one, sc.events)
	want := dump(t, one)
	for _, size := range []int{2, 3, 7, len(sc.events)} {
		told := map[string]int{}
		batched, _ := store(t, readmodel.WithApplied(func(_ context.Context, ev *feedloopv1.Event, item *feedloopv1.Item, _ map[string]map[string]int64) {
			told[ev.GetId()]++
			if encode(item) != after[ev.GetId()] {
				t.Errorf("size %d: told of %s with another item than it left one at a time", size, ev.GetId())
			}
		}), readmodel.WithAppliedReading(func(_ context.Context, ev *feedloopv1.Event, item *feedloopv1.Item, _ map[string]map[string]int64) {
			// Told the item as the event left it when it reads it, nil
			// when it does not.
			switch {
			case isStatusChange(ev) && encode(item) != after[ev.GetId()]:
				t.Errorf("size %d: reading func told of %s with another item than it left one at a time", size, ev.GetId())
			case !isStatusChange(ev) && item != nil:
				t.Errorf("size %d: reading func told of %s with an item it does not read", size, ev.GetId())
			}
		}, isStatusChange))
		applied := map[string]int{}
		for i := 0; i < len(sc.events); i += size {
			batch := sc.events[i:min(i+size, len(sc.events))]
			if i > 0 {
				batch = append([]*feedloopv1.Event{sc.events[i-1]}, batch...) // applied already
			}
			got, err := batched.ApplyBatch(ctx, batch)
			if err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
			for j, ok := range got {
				if ok {
					applied[batch[j].GetId()]++
				}
			}
		}
		for _, ev := range sc.events {
			if applied[ev.GetId()] != 1 || told[ev.GetId()] != 1 {
				t.Errorf("size %d: %s reported applied %d times, told %d times; want once", size, ev.GetId(), applied[ev.GetId()], told[ev.GetId()])
			}
		}
		if diff := diffDumps(dump(t, batched), want); diff != "" {
			t.Errorf("size %d: batched differs from one at a time:\n%s", size, diff)
		}
	}
}

func isStatusChange(ev *feedloopv1.Event) bool {
	_, ok := ev.GetPayload().(*feedloopv1.Event_StatusChanged)
	return ok
}

// TestApplyConcurrent: events of one item applied at once from many
// goroutines, each twice, all land exactly once (the optimistic
// transaction retries the losers).
func TestApplyConcurrent(t *testing.T) {
	ctx := context.Background()
	s, _ := store(t)
	sc := &script{}
	fb := sc.receive("fb-1", "c-1", "", 0)
	sc.route(fb, "billing", 0, defaultSLA, "")
	applyAll(t, s, sc.events)
	base := len(sc.events)
	const n = 16
	for i := range n {
		sc.add(bus.UpdatedSubject("billing"), "fb-1", time.Duration(i)*time.Minute, &feedloopv1.Commented{Team: "billing", Text: fmt.Sprint(i)})
		sc.add(bus.UpdatedSubject("billing"), "fb-1", time.Duration(i)*time.Minute, &feedloopv1.Replied{Team: "billing", Csat: 5})
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var applied int
	for _, ev := range sc.events[base:] {
		for range 2 {
			wg.Go(func() {
				ok, err := s.Apply(ctx, ev)
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					applied++
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if applied != 2*n {
		t.Errorf("%d applies reported applied, want %d", applied, 2*n)
	}
	item, err := s.Item(ctx, "fb-1")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(item.GetTimeline()), 2+2*n; got != want {
		t.Errorf("timeline has %d entries, want %d", got, want)
	}
	st, err := s.Stats(ctx, "billing", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if st.CsatCounts[4] != n {
		t.Errorf("csat 5 counted %d times, want %d", st.CsatCounts[4], n)
	}
}

// TestRebuildEqualsLive publishes a realistic day to the stream and applies
// it live; Redis is flushed half-way and the live projector carries on from
// there, as it would; a rebuild then gives exactly the state of a read
// model that was never flushed, and leaves other services' keys alone.
func TestRebuildEqualsLive(t *testing.T) {
	ctx := context.Background()
	b := testkit.Bus(t)
	live, rdb := store(t)
	reference, _ := store(t)
	sc := realistic()
	half := len(sc.events) / 2

	for i, ev := range sc.events {
		if _, err := b.Publish(ctx, sc.subjects[i], ev); err != nil {
			t.Fatal(err)
		}
		if i == half {
			if err := rdb.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			if err := rdb.Set(ctx, "intake:idem:helpdesk:42", "fb-a", 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
		for _, s := range []*readmodel.Store{live, reference} {
			if _, err := s.Apply(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A republished event is dropped by the stream's duplicate window.
	if _, err := b.Publish(ctx, sc.subjects[0], sc.events[0]); err != nil {
		t.Fatal(err)
	}
	want := dump(t, reference)
	if diffDumps(dump(t, live), want) == "" {
		t.Fatal("the flush lost nothing: the test proves nothing")
	}

	var (
		mu   sync.Mutex
		seen = map[string][]string{} // per item: a rebuild folds items in parallel
	)
	also := readmodel.ApplierFunc(func(_ context.Context, ev *feedloopv1.Event) error {
		mu.Lock()
		defer mu.Unlock()
		seen[ev.GetFeedbackId()] = append(seen[ev.GetFeedbackId()], ev.GetId())
		return nil
	})
	n, err := live.Rebuild(ctx, b.JetStream(), bus.StreamFeedback, also)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(sc.events) {
		t.Errorf("Rebuild replayed %d events, want %d", n, len(sc.events))
	}
	wantSeen := map[string][]string{}
	for _, ev := range sc.events {
		wantSeen[ev.GetFeedbackId()] = append(wantSeen[ev.GetFeedbackId()], ev.GetId())
	}
	for id, want := range wantSeen {
		if !slices.Equal(seen[id], want) {
			t.Errorf("the extra applier saw %v of %s, want every event of the item in stream order %v", seen[id], id, want)
		}
	}
	if len(seen) != len(wantSeen) {
		t.Errorf("the extra applier saw %d items, want %d", len(seen), len(wantSeen))
	}
	if diff := diffDumps(dump(t, live), want); diff != "" {
		t.Errorf("rebuilt state differs from the never-flushed one:\n%s", diff)
	}
	if v, err := rdb.Get(ctx, "intake:idem:helpdesk:42").Result(); err != nil || v != "fb-a" {
		t.Errorf("rebuild touched another service's key: %q, %v", v, err)
	}

	// Rebuilding again is harmless.
	if _, err := live.Rebuild(ctx, b.JetStream(), bus.StreamFeedback); err != nil {
		t.Fatal(err)
	}
	if diff := diffDumps(dump(t, live), want); diff != "" {
		t.Errorf("second rebuild differs:\n%s", diff)
	}
}

func TestRebuildEmptyStream(t *testing.T) {
	b := testkit.Bus(t)
	s, rdb := store(t, readmodel.WithPrefix("rm2:"))
	applyAll(t, s, realistic().events)
	n, err := s.Rebuild(context.Background(), b.JetStream(), bus.StreamFeedback)
	if err != nil || n != 0 {
		t.Fatalf("Rebuild = %d, %v", n, err)
	}
	if keys, _ := rdb.Keys(context.Background(), "*").Result(); len(keys) != 0 {
		t.Errorf("keys left after rebuilding from an empty stream: %v", keys)
	}
}

func TestReplayStopsOnApplierError(t *testing.T) {
	ctx := context.Background()
	b := testkit.Bus(t)
	sc := realistic()
	for i, ev := range sc.events {
		if _, err := b.Publish(ctx, sc.subjects[i], ev); err != nil {
			t.Fatal(err)
		}
	}
	boom := errors.New("boom")
	calls := 0
	failing := readmodel.ApplierFunc(func(context.Context, *feedloopv1.Event) error {
		if calls++; calls == 3 {
			return boom
		}
		return nil
	})
	n, err := readmodel.Replay(ctx, b.JetStream(), bus.StreamFeedback, nil, failing)
	if !errors.Is(err, boom) || n != 2 {
		t.Errorf("Replay = %d, %v; want 2, boom", n, err)
	}
}

func TestNewRejectsEmptyPrefix(t *testing.T) {
	if _, err := readmodel.New(testkit.RedisClient(t), readmodel.WithPrefix("")); err == nil {
		t.Error("New accepted an empty prefix, which would let a rebuild delete every key")
	}
}

func BenchmarkApply(b *testing.B) {
	ctx := context.Background()
	s, _ := store(b)
	sc := &script{}
	for i := range b.N {
		id := fmt.Sprintf("bench-%d", i)
		fb := sc.receive(id, "c-"+id, "", 0)
		sc.route(fb, "billing", time.Second, defaultSLA, "")
		sc.change(id, "billing", routedSt, ackSt, time.Minute)
	}
	b.ResetTimer()
	for _, ev := range sc.events {
		if _, err := s.Apply(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(len(sc.events)), "ns/event")
}

// BenchmarkRebuild replays a stream of 2,000 items (received, routed,
// acknowledged) into an empty read model.
func BenchmarkRebuild(b *testing.B) {
	ctx := context.Background()
	bb := testkit.Bus(b)
	s, _ := store(b)
	sc := &script{}
	for i := range 2000 {
		id := fmt.Sprintf("rb-%d", i)
		fb := sc.receive(id, "c-"+id, "", 0)
		sc.route(fb, "billing", time.Second, defaultSLA, "")
		sc.change(id, "billing", routedSt, ackSt, time.Minute)
	}
	for i, ev := range sc.events {
		if _, err := bb.Publish(ctx, sc.subjects[i], ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		if n, err := s.Rebuild(ctx, bb.JetStream(), bus.StreamFeedback); err != nil || n != len(sc.events) {
			b.Fatalf("Rebuild = %d, %v; want %d", n, err, len(sc.events))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(sc.events)), "ns/event")
}

// TestApplyReadingSparesTheCopies: a batch of an item's events, told only
// to a func that reads none of their items, is folded without a copy of
// the item per event, so with fewer allocations than for a func that reads
// them all.
func TestApplyReadingSparesTheCopies(t *testing.T) {
	ctx := context.Background()
	noop := func(context.Context, *feedloopv1.Event, *feedloopv1.Item, map[string]map[string]int64) {}
	readsNone := func(*feedloopv1.Event) bool { return false }
	const runs, comments = 10, 8
	allocs := func(name string, opt readmodel.Option) float64 {
		s, _ := store(t, opt)
		// The batches are made first: one new item per run, received,
		// routed and commented on, so each run folds every event.
		batches := make([][]*feedloopv1.Event, 0, runs+1)
		for i := range runs + 1 {
			sc := &script{}
			id := fmt.Sprintf("%s-%d", name, i)
			fb := sc.receive(id, "c-"+id, "", 0)
			sc.route(fb, "billing", time.Second, defaultSLA, "")
			for j := range comments {
				sc.add(bus.UpdatedSubject("billing"), id, time.Duration(j)*time.Minute, &feedloopv1.Commented{Team: "billing", Text: fmt.Sprint(j)})
			}
			batches = append(batches, sc.events)
		}
		next := 0
		return testing.AllocsPerRun(runs, func() {
			if _, err := s.ApplyBatch(ctx, batches[next]); err != nil {
				t.Fatal(err)
			}
			next++
		})
	}
	all := allocs("all", readmodel.WithApplied(noop))
	none := allocs("none", readmodel.WithAppliedReading(noop, readsNone))
	t.Logf("allocations per batch of %d events: %.0f told with items, %.0f without", comments+3, all, none)
	// Each copy of an item (with its feedback, classification and
	// assignment) is a dozen allocations or more; a few per event is a
	// safe floor against noise.
	if none > all-3*comments {
		t.Errorf("a batch told to a func that reads no item took %.0f allocations, one told to a func that reads them all %.0f: the copies were made anyway", none, all)
	}
}
