package readmodel_test

import (
	"context"
	"math"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router/internal/loopmetrics"
	"github.com/feedloop/feedloop/services/router/internal/readmodel"
)

// collected is one collection: counters and gauges by "name{attrs}",
// histograms' count and sum likewise.
type collected struct {
	value      map[string]int64
	count, sum map[string]float64
}

func collect(t *testing.T, r *sdkmetric.ManualReader) collected {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	c := collected{value: map[string]int64{}, count: map[string]float64{}, sum: map[string]float64{}}
	key := func(name string, s attribute.Set) string {
		return name + "{" + s.Encoded(attribute.DefaultEncoder()) + "}"
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					c.value[key(m.Name, p.Attributes)] = p.Value
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					c.value[key(m.Name, p.Attributes)] = p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					c.count[key(m.Name, p.Attributes)] = float64(p.Count)
					c.sum[key(m.Name, p.Attributes)] = p.Sum
				}
			}
		}
	}
	return c
}

// The closed-loop metrics count each event once, however often it is
// applied, with the read model's own definitions of first acknowledgement,
// close and closed loop, and times from the events. Applied in one batch,
// with the recorder told the item only of the events loopmetrics.ReadsItem
// names (no copies of it), they count the same.
func TestAppliedEventsFeedTheClosedLoopMetrics(t *testing.T) {
	t.Run("one at a time", func(t *testing.T) {
		testAppliedMetrics(t, readmodel.WithApplied, func(s *readmodel.Store, evs []*feedloopv1.Event) { applyAll(t, s, evs) })
	})
	t.Run("one batch, reading", func(t *testing.T) {
		reading := func(f readmodel.AppliedFunc) readmodel.Option {
			return readmodel.WithAppliedReading(f, loopmetrics.ReadsItem)
		}
		testAppliedMetrics(t, reading, func(s *readmodel.Store, evs []*feedloopv1.Event) {
			if _, err := s.ApplyBatch(context.Background(), evs); err != nil {
				t.Fatal(err)
			}
		})
	})
}

func testAppliedMetrics(t *testing.T, with func(readmodel.AppliedFunc) readmodel.Option, apply func(*readmodel.Store, []*feedloopv1.Event)) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	rec := loopmetrics.New(mp)
	s, _ := store(t, with(rec.Applied))
	stop := rec.ObserveOpen(func() []string { return []string{"billing", "product", "logistics"} }, s.OpenCounts)
	defer stop()

	sc := realistic()
	apply(s, sc.events)
	apply(s, sc.events) // redelivered, or applied by the team API first: no change
	got := collect(t, reader)

	for k, want := range map[string]int64{
		"feedloop.items.routed{team=billing}":                                                2,
		"feedloop.items.routed{team=product}":                                                2,
		"feedloop.items.routed{team=logistics}":                                              1,
		"feedloop.reroutes{from_team=product,to_team=logistics}":                             1,
		"feedloop.item.transitions{status=acknowledged,team=billing}":                        1,
		"feedloop.item.transitions{status=planned,team=billing}":                             1,
		"feedloop.item.transitions{status=declined,team=billing}":                            1,
		"feedloop.item.transitions{status=reopened,team=billing}":                            1,
		"feedloop.item.transitions{status=resolved,team=billing}":                            1,
		"feedloop.item.transitions{status=rerouted,team=product}":                            1,
		"feedloop.item.transitions{status=acknowledged,team=logistics}":                      1,
		"feedloop.items.closed{team=billing}":                                                2,
		"feedloop.loops.closed{team=billing}":                                                2,
		"feedloop.sla.warnings{team=logistics}":                                              1,
		"feedloop.sla.breaches{team=logistics}":                                              1,
		"feedloop.escalations{level=1,team=logistics}":                                       1,
		"feedloop.survey.responses{band=unsatisfied,origin=survey,survey=csat,team=billing}": 1,
		"feedloop.items.open{team=billing}":                                                  1, // fb-b reopened
		"feedloop.items.open{team=product}":                                                  1, // fb-c
		"feedloop.items.open{team=logistics}":                                                1, // fb-a acknowledged
	} {
		if got.value[k] != want {
			t.Errorf("%s = %d, want %d", k, got.value[k], want)
		}
	}
	for k, want := range map[string][2]float64{ // count, sum of seconds
		"feedloop.time_to_acknowledge{team=billing}":   {1, (10*time.Minute - 2*time.Second).Seconds()},
		"feedloop.time_to_acknowledge{team=logistics}": {1, (90 * time.Minute).Seconds()},
		"feedloop.time_to_close{team=billing}": {2, (2*time.Hour - 5*time.Minute - 2*time.Second +
			4*time.Hour - 2*time.Second).Seconds()},
		"feedloop.end_to_end.latency{stage=routed}":                {4, 8},
		"feedloop.end_to_end.latency{stage=customer_acknowledged}": {1, 3},
	} {
		if got.count[k] != want[0] || math.Abs(got.sum[k]-want[1]) > 1e-6 {
			t.Errorf("%s: count %g sum %g, want count %g sum %g", k, got.count[k], got.sum[k], want[0], want[1])
		}
	}
}
