package readmodel_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router/internal/readmodel"
)

const dayLen = 24 * time.Hour

// date is UTC midnight of t0's day plus n days (t0 is 2026-03-02 09:00).
func date(n int) time.Time { return time.Date(2026, 3, 2+n, 0, 0, 0, 0, time.UTC) }

func ptr(n int32) *int32 { return &n }

// answered routes a new item to billing with an NPS and a CES answer.
func (s *script) answered(id string, d time.Duration, nps, ces *int32) {
	fb := s.receive(id, "c-"+id, "", d)
	fb = proto.CloneOf(fb)
	fb.Nps, fb.Ces = nps, ces
	s.route(fb, "billing", d, defaultSLA, "")
}

// days: billing over four days (2026-03-02 to 03-05, nothing on 03-04).
//
//	03-02  d1 routed (NPS 10, CES 2), acknowledged after 10 min
//	03-03  d2 routed (NPS 3, CES 6), d1 resolved 26 h after routing, d2 breached
//	03-05  d3 routed (NPS 8), CSAT 4 on d1, d2 rerouted to product
func days() *script {
	sc := &script{}
	sc.answered("d1", 0, ptr(10), ptr(2))
	sc.change("d1", "billing", routedSt, ackSt, 10*time.Minute)
	sc.answered("d2", dayLen, ptr(3), ptr(6))
	sc.change("d1", "billing", ackSt, resolvedSt, 26*time.Hour)
	sc.escalate("d2", "billing", feedloopv1.EscalationKind_ESCALATION_KIND_BREACH, 1, dayLen+time.Hour)
	sc.answered("d3", 3*dayLen, ptr(8), nil)
	sc.add(bus.UpdatedSubject("billing"), "d1", 3*dayLen, &feedloopv1.Replied{Team: "billing", Csat: 4})
	sc.change("d2", "billing", routedSt, reroutedSt, 3*dayLen+time.Hour, func(c *feedloopv1.StatusChanged) { c.RerouteTo = "product" })
	sc.route(feedback("d2", "c-d2", "", dayLen), "product", 3*dayLen+time.Hour, defaultSLA, "billing")
	return sc
}

func stats(t *testing.T, s *readmodel.Store, team string, since, until time.Time) *feedloopv1.StatsResponse {
	t.Helper()
	st, err := s.Stats(context.Background(), team, since, until)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestStatsNPSAndCES: the answers of the feedback routed to the team.
func TestStatsNPSAndCES(t *testing.T) {
	s, _ := store(t)
	applyAll(t, s, days().events)
	got := stats(t, s, "billing", time.Time{}, time.Time{})
	if got.NpsResponses != 3 || got.NpsPromoters != 1 || got.NpsPassives != 1 || got.NpsDetractors != 1 || got.Nps != 0 ||
		got.CesResponses != 2 || got.CesMean != 4 {
		t.Errorf("billing, all time: %v", got)
	}
	// A reroute routes the feedback to the new team: it counts there too.
	if got := stats(t, s, "product", time.Time{}, time.Time{}); got.NpsResponses != 0 || got.Routed != 1 {
		t.Errorf("product: %v (the rerouted feedback of the script has no answers)", got)
	}
	got = stats(t, s, "billing", date(0), date(0))
	if got.NpsResponses != 1 || got.Nps != 100 || got.CesResponses != 1 || got.CesMean != 2 {
		t.Errorf("billing, first day: %v", got)
	}
	got = stats(t, s, "billing", date(1), date(1))
	if got.NpsResponses != 1 || got.Nps != -100 || got.CesMean != 6 {
		t.Errorf("billing, second day: %v", got)
	}
}

// TestStatsPeriod: a period counts the events that occurred in it, day by
// day, and nothing outside it.
func TestStatsPeriod(t *testing.T) {
	s, _ := store(t)
	applyAll(t, s, days().events)
	ts := timestamppb.New
	csat := func(n ...int64) []int64 { return n }

	// One day: d2's routing and d1's close, not d1's routing the day before.
	want := &feedloopv1.StatsResponse{
		Team: "billing", Routed: 1, Open: 1, Resolved: 1, SlaBreaches: 1,
		MeanTimeToClose: durationpb.New(26 * time.Hour),
		CsatCounts:      csat(0, 0, 0, 0, 0),
		ClosedLoopRate:  0,
		NpsResponses:    1, Nps: -100, NpsDetractors: 1, CesResponses: 1, CesMean: 6,
		Since: ts(date(1)), Until: ts(date(1)),
		Days: []*feedloopv1.StatsDay{{Day: ts(date(1)), Routed: 1, Closed: 1, MeanTimeToClose: durationpb.New(26 * time.Hour), SlaBreaches: 1}},
	}
	// The time of day is ignored.
	if got := stats(t, s, "billing", date(1).Add(23*time.Hour), date(1).Add(time.Minute)); !proto.Equal(got, want) {
		t.Errorf("03-03 =\n%v\nwant\n%v", got, want)
	}

	// The whole run, a quiet day included: the totals are all-time's.
	all := stats(t, s, "billing", time.Time{}, time.Time{})
	got := stats(t, s, "billing", date(0), date(3))
	if len(got.Days) != 4 {
		t.Fatalf("03-02..03-05: %d days, want 4", len(got.Days))
	}
	wantDays := []*feedloopv1.StatsDay{
		{Day: ts(date(0)), Routed: 1, MeanTimeToAcknowledge: durationpb.New(10 * time.Minute)},
		{Day: ts(date(1)), Routed: 1, Closed: 1, MeanTimeToClose: durationpb.New(26 * time.Hour), SlaBreaches: 1},
		{Day: ts(date(2))},
		{Day: ts(date(3)), Routed: 1, CsatResponses: 1, CsatMean: 4, ReroutedOut: 1},
	}
	for i, w := range wantDays {
		if !proto.Equal(got.Days[i], w) {
			t.Errorf("day %d = %v, want %v", i, got.Days[i], w)
		}
	}
	got.Since, got.Until, got.Days = nil, nil, nil
	if !proto.Equal(got, all) {
		t.Errorf("03-02..03-05 =\n%v\nall time\n%v", got, all)
	}

	// No since: from the team's first day. With nothing after until, the
	// all-time counters; with something after it, the days up to until.
	got = stats(t, s, "billing", time.Time{}, date(10))
	if got.Since != nil || !got.Until.AsTime().Equal(date(10)) || len(got.Days) != 11 || got.Days[0].Routed != 1 || got.Routed != 3 {
		t.Errorf("until 03-12: since %v until %v, %d days, routed %d", got.Since, got.Until, len(got.Days), got.Routed)
	}
	got = stats(t, s, "billing", time.Time{}, date(1))
	if got.Routed != 2 || got.NpsResponses != 2 || got.CsatResponses != 0 || got.ReroutedOut != 0 || len(got.Days) != 2 {
		t.Errorf("until 03-03: routed %d, nps %d, csat %d, rerouted %d, %d days; want 2, 2, 0, 0, 2",
			got.Routed, got.NpsResponses, got.CsatResponses, got.ReroutedOut, len(got.Days))
	}

	// Before anything happened, and a team with nothing at all.
	if got := stats(t, s, "billing", date(-5), date(-1)); got.Routed != 0 || len(got.Days) != 5 || got.Days[4].Routed != 0 {
		t.Errorf("before: %v", got)
	}
	if got := stats(t, s, "nobody", time.Time{}, date(3)); got.Routed != 0 || len(got.Days) != 0 || got.Until == nil {
		t.Errorf("nobody: %v", got)
	}

	// A long period: every day counts, the series holds the last 366.
	got = stats(t, s, "billing", date(-500), date(3))
	if got.Routed != 3 || len(got.Days) != readmodel.MaxSeriesDays ||
		!got.Days[0].Day.AsTime().Equal(date(3-readmodel.MaxSeriesDays+1)) || got.Days[len(got.Days)-1].Routed != 1 {
		t.Errorf("501 days: routed %d, %d days from %v", got.Routed, len(got.Days), got.Days[0].Day.AsTime())
	}
}

// TestRebuildKeepsTheDays: the daily counters are read-model state like
// the rest: a rebuild from the stream after a flush gives them back, key
// for key, on the days the events occurred.
func TestRebuildKeepsTheDays(t *testing.T) {
	ctx := context.Background()
	b := testkit.Bus(t)
	s, rdb := store(t)
	sc := days()
	for i, ev := range sc.events {
		if _, err := b.Publish(ctx, sc.subjects[i], ev); err != nil {
			t.Fatal(err)
		}
	}
	applyAll(t, s, sc.events)
	want := dump(t, s)
	var dayKeys []string
	for k := range want {
		if strings.HasPrefix(k, "rm:kpid:") {
			dayKeys = append(dayKeys, k)
		}
	}
	if len(dayKeys) != 4 || want["rm:kpidays:billing"] != "2026-03-02 20514\n2026-03-03 20515\n2026-03-05 20517" {
		t.Fatalf("day keys %v, days %q", dayKeys, want["rm:kpidays:billing"])
	}
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rebuild(ctx, b.JetStream(), bus.StreamFeedback); err != nil {
		t.Fatal(err)
	}
	if diff := diffDumps(dump(t, s), want); diff != "" {
		t.Errorf("rebuilt state differs:\n%s", diff)
	}
}
