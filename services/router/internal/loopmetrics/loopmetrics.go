// Package loopmetrics turns the read model's applied events into the
// closed-loop metrics per team: what was routed and is open, how fast teams
// acknowledge and close, SLA warnings, breaches and escalations, reroutes,
// declines, survey answers by band, the closed-loop rate, and the
// end-to-end latency from intake to routed and to the customer's
// acknowledgement.
//
// It counts from readmodel.Store's applied hook, which fires once per event
// id whichever router part applied it first, and from the KPI increments
// the read model computed, so the metrics and the team stats (TeamService
// Stats) agree on what "first acknowledged" or "closed" means. Every time
// is an event time, never the clock.
//
// Metric names as Prometheus scrapes them:
//
//	feedloop_items_routed_total{team}                 shares routed to a team, reroutes included
//	feedloop_items_open{team}                         open shares now (gauge, from the read model)
//	feedloop_item_transitions_total{team,status}      acknowledged, planned, resolved, declined, rerouted, reopened
//	feedloop_reroutes_total{from_team,to_team}
//	feedloop_time_to_acknowledge_seconds{team}        routed → first acknowledged, per share
//	feedloop_time_to_close_seconds{team}              routed → first resolved or declined, per share
//	feedloop_items_closed_total{team}                 shares closed (first resolve or decline)
//	feedloop_loops_closed_total{team}                 of those, shares whose customer was told the outcome
//	feedloop_sla_warnings_total{team}                 pre-breach warnings
//	feedloop_sla_breaches_total{team}                 deadlines missed (escalation level 1)
//	feedloop_escalations_total{team,level}            every escalation step fired
//	feedloop_survey_responses_total{team,survey,band,origin}
//	feedloop_end_to_end_latency_seconds{stage}        intake accepted → routed | customer_acknowledged
//
// survey is nps, csat or ces; origin is "feedback" for a score the item
// itself carried (banded by the classifier) and "survey" for the answer to
// the satisfaction survey after resolution. NPS per team is then
// (promoter − detractor) / all, and the closed-loop rate loops_closed /
// items_closed.
package loopmetrics

import (
	"context"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router/internal/projection"
	"github.com/feedloop/feedloop/services/router/internal/readmodel"
)

// Stages of feedloop_end_to_end_latency_seconds.
const (
	StageRouted               = "routed"
	StageCustomerAcknowledged = "customer_acknowledged"
)

// Recorder records the closed-loop metrics.
type Recorder struct {
	routed, transitions, reroutes, closed, loopsClosed metric.Int64Counter
	warnings, breaches, escalations, surveys           metric.Int64Counter
	timeToAck, timeToClose, endToEnd                   metric.Float64Histogram
	open                                               metric.Int64ObservableGauge
	meter                                              metric.Meter
}

// lifecycleBuckets bound people's reaction times, a minute to a month.
var lifecycleBuckets = []float64{60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 345600, 604800, 1209600, 2592000}

// pipelineBuckets bound the machines' end-to-end latency.
var pipelineBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}

// New creates the instruments on mp.
func New(mp metric.MeterProvider) *Recorder {
	m := mp.Meter("github.com/feedloop/feedloop/services/router/loopmetrics")
	r := &Recorder{meter: m}
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		if err != nil {
			otel.Handle(err)
		}
		return c
	}
	hist := func(name, desc string, buckets []float64) metric.Float64Histogram {
		h, err := m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc), metric.WithExplicitBucketBoundaries(buckets...))
		if err != nil {
			otel.Handle(err)
		}
		return h
	}
	r.routed = counter("feedloop.items.routed", "{item}", "Shares of feedback items routed to a team, reroutes included.")
	r.transitions = counter("feedloop.item.transitions", "{transition}", "Status changes of a team's share, by the status entered.")
	r.reroutes = counter("feedloop.reroutes", "{item}", "Shares a team rerouted to another team.")
	r.closed = counter("feedloop.items.closed", "{item}", "Shares closed (first resolve or decline since routed).")
	r.loopsClosed = counter("feedloop.loops.closed", "{item}", "Closed shares whose customer was told the outcome.")
	r.warnings = counter("feedloop.sla.warnings", "{warning}", "SLA pre-breach warnings.")
	r.breaches = counter("feedloop.sla.breaches", "{breach}", "SLA deadlines missed (escalation level 1).")
	r.escalations = counter("feedloop.escalations", "{escalation}", "Escalation steps fired, by level.")
	r.surveys = counter("feedloop.survey.responses", "{response}", "NPS, CSAT and CES answers by band.")
	r.timeToAck = hist("feedloop.time_to_acknowledge", "Routed to first acknowledged, per share.", lifecycleBuckets)
	r.timeToClose = hist("feedloop.time_to_close", "Routed to first resolved or declined, per share.", lifecycleBuckets)
	r.endToEnd = hist("feedloop.end_to_end.latency", "Intake accepted an item → a later stage, by event times.", pipelineBuckets)
	var err error
	r.open, err = m.Int64ObservableGauge("feedloop.items.open", metric.WithUnit("{item}"),
		metric.WithDescription("Open shares per team (routed, acknowledged, planned or reopened)."))
	if err != nil {
		otel.Handle(err)
	}
	return r
}

// ObserveOpen reports feedloop_items_open for teams() from counts at every
// collection, until the returned func is called.
func (r *Recorder) ObserveOpen(teams func() []string, counts func(ctx context.Context, teams []string) (map[string]int64, error)) (stop func()) {
	reg, err := r.meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		n, err := counts(ctx, teams())
		if err != nil {
			return err
		}
		for team, v := range n {
			o.ObserveInt64(r.open, v, metric.WithAttributes(attribute.String("team", team)))
		}
		return nil
	}, r.open)
	if err != nil {
		otel.Handle(err)
		return func() {}
	}
	return func() { _ = reg.Unregister() }
}

// ReadsItem reports whether Applied reads the item of ev (for the
// readmodel.WithAppliedReading option): only status changes and
// notifications do; Applied is told a nil item of the others.
func ReadsItem(ev *feedloopv1.Event) bool {
	switch ev.GetPayload().(type) {
	case *feedloopv1.Event_StatusChanged, *feedloopv1.Event_Notified:
		return true
	}
	return false
}

// Applied records what one newly applied event says; it is a
// readmodel.AppliedFunc.
func (r *Recorder) Applied(ctx context.Context, ev *feedloopv1.Event, item *feedloopv1.Item, kpi map[string]map[string]int64) {
	team := func(t string) metric.MeasurementOption {
		return metric.WithAttributes(attribute.String("team", t))
	}
	for t, f := range kpi {
		r.add(ctx, r.routed, f[readmodel.KPIRouted], team(t))
		r.add(ctx, r.closed, f[readmodel.KPIClosed], team(t))
		r.add(ctx, r.loopsClosed, f[readmodel.KPIClosedTold], team(t))
		r.add(ctx, r.warnings, f[readmodel.KPISLAWarnings], team(t))
		r.add(ctx, r.breaches, f[readmodel.KPISLABreaches], team(t))
	}
	at := ev.GetOccurredAt()
	switch p := ev.GetPayload().(type) {
	case *feedloopv1.Event_Routed:
		a := p.Routed.GetAssignment()
		if from := a.GetReroutedFrom(); from != "" {
			r.reroutes.Add(ctx, 1, metric.WithAttributes(attribute.String("from_team", from), attribute.String("to_team", a.GetTeam())))
			return
		}
		if rec := p.Routed.GetFeedback().GetReceivedAt(); rec.IsValid() && at.IsValid() {
			r.endToEnd.Record(ctx, seconds(rec, at), metric.WithAttributes(attribute.String("stage", StageRouted)))
		}
		r.bands(ctx, a.GetTeam(), p.Routed.GetClassification())
	case *feedloopv1.Event_StatusChanged:
		sc := p.StatusChanged
		t := sc.GetTeam()
		r.transitions.Add(ctx, 1, metric.WithAttributes(attribute.String("team", t), attribute.String("status", statusLabel(sc.GetTo()))))
		routedAt := projection.Assignment(item, t).GetRoutedAt()
		if !routedAt.IsValid() || !at.IsValid() {
			return
		}
		if kpi[t][readmodel.KPIAcknowledged] > 0 {
			r.timeToAck.Record(ctx, seconds(routedAt, at), team(t))
		}
		if kpi[t][readmodel.KPIClosed] > 0 {
			r.timeToClose.Record(ctx, seconds(routedAt, at), team(t))
		}
	case *feedloopv1.Event_Escalated:
		if x := p.Escalated; projection.IsBreach(x) {
			r.escalations.Add(ctx, 1, metric.WithAttributes(attribute.String("team", x.GetTeam()), attribute.String("level", strconv.Itoa(int(x.GetLevel())))))
		}
	case *feedloopv1.Event_Replied:
		if band := csatBand(p.Replied.GetCsat()); band != "" {
			r.surveys.Add(ctx, 1, metric.WithAttributes(attribute.String("team", p.Replied.GetTeam()),
				attribute.String("survey", "csat"), attribute.String("band", band), attribute.String("origin", "survey")))
		}
	case *feedloopv1.Event_Notified:
		n := p.Notified
		if n.GetAudience() == projection.AudienceCustomer && n.GetStep() == feedloopv1.Step_STEP_RECEIVED {
			if rec := item.GetReceivedAt(); rec.IsValid() && at.IsValid() {
				r.endToEnd.Record(ctx, seconds(rec, at), metric.WithAttributes(attribute.String("stage", StageCustomerAcknowledged)))
			}
		}
	}
}

// bands counts the scores a routed item carried, for the team it went to.
func (r *Recorder) bands(ctx context.Context, team string, c *feedloopv1.Classification) {
	// An array, not a map: no allocation per routed event.
	for _, sb := range [...]struct{ survey, band string }{
		{"nps", bandLabel(c.GetNpsBand().String(), "NPS_BAND_")},
		{"csat", bandLabel(c.GetCsatBand().String(), "CSAT_BAND_")},
		{"ces", bandLabel(c.GetCesBand().String(), "CES_BAND_")},
	} {
		if sb.band != "" {
			r.surveys.Add(ctx, 1, metric.WithAttributes(attribute.String("team", team),
				attribute.String("survey", sb.survey), attribute.String("band", sb.band), attribute.String("origin", "feedback")))
		}
	}
}

func (r *Recorder) add(ctx context.Context, c metric.Int64Counter, n int64, o metric.MeasurementOption) {
	if n > 0 {
		c.Add(ctx, n, o)
	}
}

// bandLabel turns NPS_BAND_PROMOTER into "promoter"; unspecified is "".
func bandLabel(name, prefix string) string {
	b := strings.ToLower(strings.TrimPrefix(name, prefix))
	if b == "unspecified" {
		return ""
	}
	return b
}

// csatBand bands a 1..5 survey answer as the classifier bands CSAT scores.
func csatBand(score int32) string {
	switch {
	case score >= 1 && score <= 2:
		return "unsatisfied"
	case score == 3:
		return "neutral"
	case score >= 4 && score <= 5:
		return "satisfied"
	}
	return ""
}

// statusLabel turns STATUS_ACKNOWLEDGED into "acknowledged".
func statusLabel(s feedloopv1.Status) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "STATUS_"))
}

func seconds(from, to interface{ AsTime() time.Time }) float64 {
	d := to.AsTime().Sub(from.AsTime()).Seconds()
	return max(d, 0)
}
