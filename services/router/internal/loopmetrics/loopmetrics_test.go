package loopmetrics_test

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/protobuf/types/known/timestamppb"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router/internal/loopmetrics"
	"github.com/feedloop/feedloop/services/router/internal/readmodel"
)

// collected is what one collection holds: every data point of every
// instrument, keyed by metric name and its attributes as "k=v,k=v".
type collected struct {
	sums  map[string]map[string]int64
	hists map[string]map[string]metricdata.HistogramDataPoint[float64]
}

func collect(t *testing.T, r *sdkmetric.ManualReader) collected {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("collect: %v", err)
	}
	c := collected{sums: map[string]map[string]int64{}, hists: map[string]map[string]metricdata.HistogramDataPoint[float64]{}}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				c.sums[m.Name] = map[string]int64{}
				for _, p := range d.DataPoints {
					c.sums[m.Name][attrs(p.Attributes)] = p.Value
				}
			case metricdata.Gauge[int64]:
				c.sums[m.Name] = map[string]int64{}
				for _, p := range d.DataPoints {
					c.sums[m.Name][attrs(p.Attributes)] = p.Value
				}
			case metricdata.Histogram[float64]:
				c.hists[m.Name] = map[string]metricdata.HistogramDataPoint[float64]{}
				for _, p := range d.DataPoints {
					c.hists[m.Name][attrs(p.Attributes)] = p
				}
			}
		}
	}
	return c
}

func attrs(s attribute.Set) string {
	var kv []string
	for _, a := range s.ToSlice() {
		kv = append(kv, string(a.Key)+"="+a.Value.Emit())
	}
	return strings.Join(kv, ",")
}

func newRecorder(t *testing.T) (*loopmetrics.Recorder, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return loopmetrics.New(mp), reader
}

var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

func ts(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(t0.Add(d)) }

// item is the read model's view of one item routed to billing at t0+2s,
// received at t0.
func item() *feedloopv1.Item {
	return &feedloopv1.Item{
		FeedbackId: "f1",
		ReceivedAt: ts(0),
		Assignments: []*feedloopv1.AssignmentState{
			{Team: "billing", RoutedAt: ts(2 * time.Second)},
		},
	}
}

func TestAppliedCountsARoutedItemFromTheReadModelsKPIs(t *testing.T) {
	rec, reader := newRecorder(t)
	ctx := context.Background()
	ev := &feedloopv1.Event{
		Id: "e1", FeedbackId: "f1", OccurredAt: ts(2 * time.Second),
		Payload: &feedloopv1.Event_Routed{Routed: &feedloopv1.Routed{
			Feedback:       &feedloopv1.Feedback{ReceivedAt: ts(0)},
			Classification: &feedloopv1.Classification{NpsBand: feedloopv1.NpsBand_NPS_BAND_DETRACTOR},
			Assignment:     &feedloopv1.Assignment{Team: "billing"},
		}},
	}
	rec.Applied(ctx, ev, item(), map[string]map[string]int64{"billing": {readmodel.KPIRouted: 1}})

	c := collect(t, reader)
	if got := c.sums["feedloop.items.routed"]["team=billing"]; got != 1 {
		t.Errorf("items.routed{team=billing} = %d, want 1 (from the KPI increment)", got)
	}
	if got := c.sums["feedloop.survey.responses"]["band=detractor,origin=feedback,survey=nps,team=billing"]; got != 1 {
		t.Errorf("survey.responses for the item's NPS band = %d, want 1; got %v", got, c.sums["feedloop.survey.responses"])
	}
	// Only the NPS band was set: no CSAT or CES series appear.
	if n := len(c.sums["feedloop.survey.responses"]); n != 1 {
		t.Errorf("survey.responses has %d series, want 1: %v", n, c.sums["feedloop.survey.responses"])
	}
	p, ok := c.hists["feedloop.end_to_end.latency"]["stage="+loopmetrics.StageRouted]
	if !ok || p.Count != 1 || p.Sum != 2 {
		t.Errorf("end_to_end.latency{stage=routed} = %+v (found %v), want one observation of 2 s (received → routed by event times)", p, ok)
	}
	// Counters a routed event did not move are absent, not zero.
	for _, name := range []string{"feedloop.items.closed", "feedloop.loops.closed", "feedloop.sla.breaches"} {
		if v, ok := c.sums[name]; ok && len(v) > 0 {
			t.Errorf("%s = %v after a routed event, want no series", name, v)
		}
	}
}

func TestAppliedCountsARerouteOnceAndNotAsANewArrival(t *testing.T) {
	rec, reader := newRecorder(t)
	ev := &feedloopv1.Event{
		Id: "e2", FeedbackId: "f1", OccurredAt: ts(time.Minute),
		Payload: &feedloopv1.Event_Routed{Routed: &feedloopv1.Routed{
			Feedback:       &feedloopv1.Feedback{ReceivedAt: ts(0)},
			Classification: &feedloopv1.Classification{NpsBand: feedloopv1.NpsBand_NPS_BAND_PROMOTER},
			Assignment:     &feedloopv1.Assignment{Team: "product", ReroutedFrom: "billing"},
		}},
	}
	rec.Applied(context.Background(), ev, item(), map[string]map[string]int64{"product": {readmodel.KPIRouted: 1}})

	c := collect(t, reader)
	if got := c.sums["feedloop.reroutes"]["from_team=billing,to_team=product"]; got != 1 {
		t.Errorf("reroutes{billing→product} = %d, want 1: %v", got, c.sums["feedloop.reroutes"])
	}
	if got := c.sums["feedloop.items.routed"]["team=product"]; got != 1 {
		t.Errorf("items.routed{team=product} = %d, want 1 (reroutes count as routed)", got)
	}
	// A reroute is not a new arrival: no pipeline latency, no second count of the bands.
	if h := c.hists["feedloop.end_to_end.latency"]; len(h) > 0 {
		t.Errorf("end_to_end.latency recorded for a reroute: %v", slices.Collect(maps.Keys(h)))
	}
	if s := c.sums["feedloop.survey.responses"]; len(s) > 0 {
		t.Errorf("survey.responses counted again for a reroute: %v", s)
	}
}

func TestAppliedTimesFirstAcknowledgeAndCloseOnly(t *testing.T) {
	rec, reader := newRecorder(t)
	ctx := context.Background()
	status := func(id string, to feedloopv1.Status, at time.Duration) *feedloopv1.Event {
		return &feedloopv1.Event{Id: id, FeedbackId: "f1", OccurredAt: ts(at),
			Payload: &feedloopv1.Event_StatusChanged{StatusChanged: &feedloopv1.StatusChanged{Team: "billing", To: to}}}
	}
	// Acknowledged an hour after routing (the first time: the read model says so).
	rec.Applied(ctx, status("a1", feedloopv1.Status_STATUS_ACKNOWLEDGED, time.Hour+2*time.Second), item(),
		map[string]map[string]int64{"billing": {readmodel.KPIAcknowledged: 1}})
	// Resolved after two hours, closing the share and telling the customer.
	rec.Applied(ctx, status("r1", feedloopv1.Status_STATUS_RESOLVED, 2*time.Hour+2*time.Second), item(),
		map[string]map[string]int64{"billing": {readmodel.KPIClosed: 1, readmodel.KPIClosedTold: 1}})
	// Reopened and resolved again: a transition, but no second close time.
	rec.Applied(ctx, status("o1", feedloopv1.Status_STATUS_REOPENED, 3*time.Hour), item(), nil)
	rec.Applied(ctx, status("r2", feedloopv1.Status_STATUS_RESOLVED, 4*time.Hour), item(), nil)

	c := collect(t, reader)
	tr := c.sums["feedloop.item.transitions"]
	for key, want := range map[string]int64{
		"status=acknowledged,team=billing": 1,
		"status=resolved,team=billing":     2,
		"status=reopened,team=billing":     1,
	} {
		if tr[key] != want {
			t.Errorf("item.transitions{%s} = %d, want %d (all: %v)", key, tr[key], want, tr)
		}
	}
	if p := c.hists["feedloop.time_to_acknowledge"]["team=billing"]; p.Count != 1 || p.Sum != 3600 {
		t.Errorf("time_to_acknowledge = count %d sum %g, want one of 3600 s", p.Count, p.Sum)
	}
	if p := c.hists["feedloop.time_to_close"]["team=billing"]; p.Count != 1 || p.Sum != 7200 {
		t.Errorf("time_to_close = count %d sum %g, want one of 7200 s (the second resolve is not a first close)", p.Count, p.Sum)
	}
	if c.sums["feedloop.items.closed"]["team=billing"] != 1 || c.sums["feedloop.loops.closed"]["team=billing"] != 1 {
		t.Errorf("items.closed / loops.closed = %v / %v, want 1 / 1", c.sums["feedloop.items.closed"], c.sums["feedloop.loops.closed"])
	}
}

func TestAppliedCountsBreachesNotWarningsAsEscalations(t *testing.T) {
	rec, reader := newRecorder(t)
	ctx := context.Background()
	esc := func(id string, kind feedloopv1.EscalationKind, level int32, kpi string) {
		rec.Applied(ctx, &feedloopv1.Event{Id: id, FeedbackId: "f1", OccurredAt: ts(time.Hour),
			Payload: &feedloopv1.Event_Escalated{Escalated: &feedloopv1.Escalated{Team: "billing", Kind: kind, Level: level}}},
			item(), map[string]map[string]int64{"billing": {kpi: 1}})
	}
	esc("w", feedloopv1.EscalationKind_ESCALATION_KIND_WARNING, 1, readmodel.KPISLAWarnings)
	esc("b1", feedloopv1.EscalationKind_ESCALATION_KIND_BREACH, 1, readmodel.KPISLABreaches)
	esc("b2", feedloopv1.EscalationKind_ESCALATION_KIND_BREACH, 2, "")

	c := collect(t, reader)
	if got := c.sums["feedloop.sla.warnings"]["team=billing"]; got != 1 {
		t.Errorf("sla.warnings = %d, want 1", got)
	}
	if got := c.sums["feedloop.sla.breaches"]["team=billing"]; got != 1 {
		t.Errorf("sla.breaches = %d, want 1", got)
	}
	want := map[string]int64{"level=1,team=billing": 1, "level=2,team=billing": 1}
	if got := c.sums["feedloop.escalations"]; !maps.Equal(got, want) {
		t.Errorf("escalations = %v, want %v (the warning is not an escalation step)", got, want)
	}
}

func TestAppliedBandsSurveyAnswersAndTimesTheCustomersAcknowledgement(t *testing.T) {
	rec, reader := newRecorder(t)
	ctx := context.Background()
	for i, csat := range []int32{5, 3, 1, 0} { // 0: no answer, not counted
		rec.Applied(ctx, &feedloopv1.Event{Id: "s" + string(rune('0'+i)), FeedbackId: "f1", OccurredAt: ts(time.Hour),
			Payload: &feedloopv1.Event_Replied{Replied: &feedloopv1.Replied{Team: "billing", Csat: csat}}}, item(), nil)
	}
	notified := func(id, audience string, step feedloopv1.Step) {
		rec.Applied(ctx, &feedloopv1.Event{Id: id, FeedbackId: "f1", OccurredAt: ts(5 * time.Second),
			Payload: &feedloopv1.Event_Notified{Notified: &feedloopv1.Notified{Audience: audience, Step: step}}}, item(), nil)
	}
	notified("n1", "customer", feedloopv1.Step_STEP_RECEIVED)
	notified("n2", "team", feedloopv1.Step_STEP_RECEIVED)     // a team alert is not the customer's acknowledgement
	notified("n3", "customer", feedloopv1.Step_STEP_RESOLVED) // nor is a later step

	c := collect(t, reader)
	want := map[string]int64{
		"band=satisfied,origin=survey,survey=csat,team=billing":   1,
		"band=neutral,origin=survey,survey=csat,team=billing":     1,
		"band=unsatisfied,origin=survey,survey=csat,team=billing": 1,
	}
	if got := c.sums["feedloop.survey.responses"]; !maps.Equal(got, want) {
		t.Errorf("survey.responses = %v, want %v", got, want)
	}
	p := c.hists["feedloop.end_to_end.latency"]["stage="+loopmetrics.StageCustomerAcknowledged]
	if p.Count != 1 || p.Sum != 5 {
		t.Errorf("end_to_end.latency{stage=customer_acknowledged} = count %d sum %g, want one of 5 s", p.Count, p.Sum)
	}
}

func TestObserveOpenReportsEachTeamUntilStopped(t *testing.T) {
	rec, reader := newRecorder(t)
	calls := 0
	stop := rec.ObserveOpen(func() []string { return []string{"billing", "product"} },
		func(_ context.Context, teams []string) (map[string]int64, error) {
			calls++
			out := map[string]int64{}
			for i, team := range teams {
				out[team] = int64(i + 3)
			}
			return out, nil
		})
	c := collect(t, reader)
	want := map[string]int64{"team=billing": 3, "team=product": 4}
	if got := c.sums["feedloop.items.open"]; !maps.Equal(got, want) {
		t.Errorf("items.open = %v, want %v", got, want)
	}
	stop()
	before := calls
	collect(t, reader)
	if calls != before {
		t.Errorf("counts called %d more times after stop, want none", calls-before)
	}
}
