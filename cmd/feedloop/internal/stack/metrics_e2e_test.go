package stack_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/feedloop/feedloop/cmd/feedloop/internal/stack"
	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// grafanaDir holds the dashboards shipped for ops.
const grafanaDir = "../../../../deploy/grafana"

// slaRoutes sends everything to triage with a two-second acknowledge
// deadline, so a test sees warnings, breaches and escalations; product is
// there to reroute to.
const slaRoutes = `route:
  team: triage
  sla: { acknowledge: 2s, resolve: 1h }
  escalate:
    - { team: leads, after: 0s }
  routes:
    - team: product
      matchers: ['source="nowhere"']
`

var metricTokens = map[string]string{"triage": "m-triage-token-51f0", "product": "m-product-token-7c2e"}

// scrape reads every metric family served at addr.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", res.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value is the sum over fam's series whose labels include want: a
// counter's or gauge's value, a histogram's count.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	fam, ok := fams[name]
	if !ok {
		return 0, false
	}
	var sum float64
	found := false
next:
	for _, m := range fam.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum, found
}

// dashboardMetrics returns the feedloop metric names each dashboard's
// queries use, by dashboard file, histogram series reduced to their family.
func dashboardMetrics(t *testing.T) map[string][]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(grafanaDir, "*.json"))
	if err != nil || len(files) < 2 {
		t.Fatalf("dashboards in %s: %v %v", grafanaDir, files, err)
	}
	name := regexp.MustCompile(`\bfeedloop_[a-z0-9_]+`)
	out := map[string][]string{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Title  string `json:"title"`
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
			Templating struct {
				List []struct {
					Definition string `json:"definition"`
				} `json:"list"`
			} `json:"templating"`
		}
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var exprs []string
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				exprs = append(exprs, tg.Expr)
			}
		}
		for _, v := range d.Templating.List {
			exprs = append(exprs, v.Definition)
		}
		for _, e := range exprs {
			for _, n := range name.FindAllString(e, -1) {
				for _, suffix := range []string{"_bucket", "_count", "_sum"} {
					if strings.HasSuffix(n, "_seconds"+suffix) {
						n = strings.TrimSuffix(n, suffix)
					}
				}
				if !slices.Contains(out[f], n) {
					out[f] = append(out[f], n)
				}
			}
		}
		if len(out[f]) == 0 {
			t.Errorf("%s (%s) queries no feedloop metric", f, d.Title)
		}
	}
	return out
}

// After a run through the whole loop, /metrics serves the pipeline and
// closed-loop series with values that fit what happened, and every metric
// the dashboards query is one the services export.
func TestMetricsAfterARunAndDashboardsMatchThem(t *testing.T) {
	dir := t.TempDir()
	routes := filepath.Join(dir, "routes.yaml")
	tokens := filepath.Join(dir, "tokens.yaml")
	var tb strings.Builder
	tb.WriteString("tokens:\n")
	for team, tok := range metricTokens {
		tb.WriteString("  - {team: " + team + ", name: " + team + "-agent, sha256: " + sha256hex(tok) + "}\n")
	}
	for path, body := range map[string]string{routes: slaRoutes, tokens: tb.String()} {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e := startWith(t, func(cfg *stack.Config) {
		cfg.MetricsAddr = "127.0.0.1:0"
		cfg.Router.RoutesFile = routes
		cfg.Router.TeamTokensFile = tokens
		cfg.Router.SLAWarnAt = 0.5
		cfg.Router.SLATick = 20 * time.Millisecond
	})
	addr := e.s.MetricsAddr()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cc, err := grpc.NewClient(e.s.Router.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	api := feedloopv1.NewTeamServiceClient(cc)
	triage, product := team{api, metricTokens["triage"]}, team{api, metricTokens["product"]}

	customer := &feedloopv1.Customer{Id: "c-metrics", Email: "lin@example.com", Locale: "en", Consent: &feedloopv1.Consent{Contact: true, Survey: true}}
	submit := func(ext string, nps *int32) string {
		t.Helper()
		r, err := e.intake.Submit(ctx, &feedloopv1.SubmitRequest{Feedback: &feedloopv1.Feedback{
			Source: "survey-tool", ExternalId: ext, Customer: customer, Subject: "Parcel " + ext,
			Text: "The parcel came late and the box was damaged.", Nps: nps,
		}})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetFeedbackId()
	}
	a := submit("m-1", int32p(2))
	b := submit("m-2", nil)
	// The acknowledge deadline passes: warning, breach, escalation.
	testkit.Eventually(t, "triage's SLA breach", func() bool {
		v, _ := value(scrape(t, addr), "feedloop_sla_breaches_total", map[string]string{"team": "triage"})
		return v >= 2
	})
	if _, err := triage.c.Acknowledge(triage.ctx(ctx), &feedloopv1.AcknowledgeRequest{FeedbackId: a}); err != nil {
		t.Fatal(err)
	}
	if _, err := triage.c.Reroute(triage.ctx(ctx), &feedloopv1.RerouteRequest{FeedbackId: a, Team: "product", InternalNote: "a product defect"}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "product to see the rerouted item", func() bool {
		_, err := product.c.Get(product.ctx(ctx), &feedloopv1.GetRequest{FeedbackId: a})
		return err == nil
	})
	if _, err := product.c.Acknowledge(product.ctx(ctx), &feedloopv1.AcknowledgeRequest{FeedbackId: a}); err != nil {
		t.Fatal(err)
	}
	if _, err := product.c.Resolve(product.ctx(ctx), &feedloopv1.ResolveRequest{FeedbackId: a, CustomerMessage: "A new box is on its way."}); err != nil {
		t.Fatal(err)
	}
	if _, err := triage.c.Decline(triage.ctx(ctx), &feedloopv1.DeclineRequest{FeedbackId: b, CustomerMessage: "The carrier handles damage claims."}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the survey", func() bool { return len(e.customer.find(a, "survey")) == 1 })
	// The customer answers the survey; the answer comes through intake.
	if _, err := e.intake.Submit(ctx, &feedloopv1.SubmitRequest{Feedback: &feedloopv1.Feedback{
		Source: "survey-tool", ExternalId: "m-1-answer", Customer: customer, InReplyTo: a, Csat: int32p(5), Text: "Thanks, all good now.",
	}}); err != nil {
		t.Fatal(err)
	}
	// A submission that can never be read is dead-lettered.
	if _, err := e.s.Bus.PublishData(ctx, bus.SubmitSubject("garbage"), "garbage-1", []byte{0xff, 0x01}, nil); err != nil {
		t.Fatal(err)
	}
	var fams map[string]*dto.MetricFamily
	testkit.Eventually(t, "the survey answer and the dead letter counted", func() bool {
		fams = scrape(t, addr)
		s, _ := value(fams, "feedloop_survey_responses_total", map[string]string{"team": "product", "survey": "csat", "origin": "survey", "band": "satisfied"})
		d, _ := value(fams, "feedloop_messages_processed_total", map[string]string{"consumer": "intake", "outcome": "dead_letter"})
		return s >= 1 && d >= 1
	})
	e.idleAll(t)
	fams = scrape(t, addr)

	// Sane values: at least what this run did (other tests of this binary
	// share the process's registry, so counters may be higher).
	for _, c := range []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"feedloop_messages_processed_total", map[string]string{"consumer": "classifier", "subject": "feedback.received", "outcome": "ok"}, 3},
		{"feedloop_messages_processed_total", map[string]string{"consumer": "router", "subject": "feedback.classified", "outcome": "ok"}, 3},
		{"feedloop_messages_processed_total", map[string]string{"consumer": "router-projector", "outcome": "ok"}, 10},
		{"feedloop_messages_processed_total", map[string]string{"consumer": "notifier", "outcome": "ok"}, 5},
		{"feedloop_message_handling_duration_seconds", map[string]string{"consumer": "classifier", "outcome": "ok"}, 3},
		{"feedloop_messages_published_total", map[string]string{"subject": "feedback.routed.triage", "result": "stored"}, 2},
		{"feedloop_intake_submissions_total", map[string]string{"source": "survey-tool", "result": "accepted"}, 3},
		{"feedloop_intake_submit_duration_seconds", map[string]string{"result": "accepted"}, 3},
		{"feedloop_items_routed_total", map[string]string{"team": "triage"}, 2},
		{"feedloop_items_routed_total", map[string]string{"team": "product"}, 1},
		{"feedloop_reroutes_total", map[string]string{"from_team": "triage", "to_team": "product"}, 1},
		{"feedloop_item_transitions_total", map[string]string{"team": "triage", "status": "declined"}, 1},
		{"feedloop_time_to_acknowledge_seconds", map[string]string{"team": "triage"}, 1},
		{"feedloop_time_to_close_seconds", map[string]string{"team": "product"}, 1},
		{"feedloop_items_closed_total", map[string]string{"team": "product"}, 1},
		{"feedloop_loops_closed_total", map[string]string{"team": "product"}, 1},
		{"feedloop_sla_warnings_total", map[string]string{"team": "triage"}, 2},
		{"feedloop_escalations_total", map[string]string{"team": "triage", "level": "1"}, 2},
		{"feedloop_survey_responses_total", map[string]string{"team": "triage", "survey": "nps", "band": "detractor", "origin": "feedback"}, 1},
		{"feedloop_end_to_end_latency_seconds", map[string]string{"stage": "routed"}, 2},
		{"feedloop_end_to_end_latency_seconds", map[string]string{"stage": "customer_acknowledged"}, 2},
		{"feedloop_notifications_total", map[string]string{"audience": "customer", "step": "received", "result": "sent"}, 2},
		{"feedloop_notification_send_duration_seconds", map[string]string{"channel": "email"}, 2},
		{"feedloop_nats_connected", nil, 1},
		{"feedloop_redis_up", nil, 1},
	} {
		if v, ok := value(fams, c.name, c.labels); !ok || v < c.min {
			t.Errorf("%s%v = %g (present %v), want at least %g", c.name, c.labels, v, ok, c.min)
		}
	}
	// Gauges that must be exact: nothing left open or waiting.
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"feedloop_items_open", map[string]string{"team": "triage"}, 0},
		{"feedloop_items_open", map[string]string{"team": "product"}, 0},
		{"feedloop_consumer_pending", map[string]string{"consumer": "classifier", "stream": "FEEDBACK"}, 0},
		{"feedloop_consumer_ack_pending", map[string]string{"consumer": "notifier", "stream": "FEEDBACK"}, 0},
	} {
		if v, ok := value(fams, c.name, c.labels); !ok || v != c.want {
			t.Errorf("%s%v = %g (present %v), want %g", c.name, c.labels, v, ok, c.want)
		}
	}
	if _, ok := value(fams, "feedloop_consumer_redelivered", map[string]string{"consumer": "router-projector"}); !ok {
		t.Error("no redelivered gauge for the projector")
	}
	// Latency figures are durations, never negative.
	for _, name := range []string{"feedloop_end_to_end_latency_seconds", "feedloop_time_to_close_seconds", "feedloop_message_handling_duration_seconds"} {
		for _, m := range fams[name].GetMetric() {
			if m.GetHistogram().GetSampleSum() < 0 {
				t.Errorf("%s has a negative sum: %v", name, m)
			}
		}
	}

	// The dashboards must not drift from the code.
	for file, names := range dashboardMetrics(t) {
		for _, n := range names {
			if _, ok := fams[n]; !ok {
				t.Errorf("%s queries %s, which the services do not export", filepath.Base(file), n)
			}
		}
	}
}

func sha256hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
