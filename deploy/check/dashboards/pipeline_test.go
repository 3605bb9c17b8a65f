package dashboards

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/pkg/redisx"
	"github.com/feedloop/feedloop/pkg/telemetry"
	"github.com/feedloop/feedloop/pkg/testkit"
	"github.com/feedloop/feedloop/pkg/testkit/smtptest"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/classifier"
	"github.com/feedloop/feedloop/services/intake"
	"github.com/feedloop/feedloop/services/intake/access"
	"github.com/feedloop/feedloop/services/notifier"
	"github.com/feedloop/feedloop/services/notifier/webhooksig"
	"github.com/feedloop/feedloop/services/router"
)

const examples = "../../examples"

// noData lists the panel queries allowed to return no series (or only
// NaN) after the test's run, by dashboard file and panel title, with the
// reason. Every entry is a panel the test proves nothing about: add one
// only when a panel cannot have data in a short run for a real reason.
var noData = map[[2]string]string{}

// slaRoutes sends everything to triage with a two-second acknowledge
// deadline and a leads escalation, so the run sees warnings, breaches and
// escalations; product is there to reroute to.
const slaRoutes = `route:
  team: triage
  sla: { acknowledge: 2s, resolve: 1h }
  escalate:
    - { team: leads, after: 0s }
  routes:
    - team: product
      matchers: ['source="nowhere"']
`

const webhookSecret = "dashboards-webhook-secret-0123456789"

var teamTokens = map[string]string{"triage": "dash-triage-token-3e1a", "product": "dash-product-token-90bd"}

// TestEveryPanelHasDataOnARealPrometheus runs the pipeline (embedded NATS
// JetStream, a real redis-server, the four services through their public
// New/Run, one /metrics for the process as `feedloop dev` serves it),
// drives every flow the dashboards show, scrapes /metrics every second into
// Prometheus's TSDB, fills in Grafana's variables ($team from its
// label_values query, "All" selected; $__range and $__rate_interval the
// scraped window) and evaluates every panel query with Prometheus's PromQL
// engine as Grafana asks for it: an instant query at the last scrape, or a
// range query over the scrapes for a time series. Each must return a
// series with a number in it, or the test lists (dashboard, panel, query).
func TestEveryPanelHasDataOnARealPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the pipeline")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Metrics are read from /metrics only, whatever the environment says.
	for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SERVICE_NAME"} {
		t.Setenv(k, "")
	}
	shutdown, err := telemetry.Setup(ctx, "feedloop-deploy-check")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shutdown(context.Background()) })

	p := startPipeline(t)
	prom := startPrometheus(t, p.metricsAddr)
	has := func(expr string) bool {
		r, err := prom.instant(ctx, expr, time.Now())
		return err == nil && len(r.series) > 0
	}
	// Twice: Prometheus sees a counter from its first scrape on, so the
	// first round creates the series and the second moves them, which
	// rates, increases, ratios and quantiles need to have numbers.
	for round := 1; round <= 2; round++ {
		p.drive(ctx, t, round, has)
		prom.waitScrapes(t, 2)
	}
	if n := p.teams.count(); n == 0 {
		t.Error("no team message reached the webhook team channel")
	}
	prom.stop()
	if errs := prom.errors(); len(errs) > 0 {
		t.Fatalf("%d scrapes failed, first: %v", len(errs), errs[0])
	}
	first, last, scrapes := prom.span()
	// The window reaches one interval before the first scrape, so every
	// sample is in it.
	window := fmt.Sprintf("%ds", int(last.Sub(first)/time.Second)+2*int(scrapeInterval/time.Second))
	t.Logf("%d scrapes over %s; $__range = $__rate_interval = %s", scrapes, last.Sub(first).Round(time.Millisecond), window)

	var missing []string
	n := 0
	for _, b := range boards(t) {
		vars := map[string]string{}
		for _, v := range b.vars {
			if v.Type == "datasource" {
				continue
			}
			val, err := prom.variable(ctx, v, first, last)
			if err != nil {
				t.Errorf("%s variable %s: %v", b.file, v.Name, err)
				continue
			}
			vars[v.Name] = val
		}
		for _, q := range b.queries {
			n++
			e := fill(q.expr, window, window, vars)
			why, err := prom.noData(ctx, q, e, first, last)
			switch {
			case err != nil:
				t.Errorf("%s panel %q: %v\n  %s", b.file, q.panel, err, e)
			case why == "":
				t.Logf("%s panel %q: data", b.file, q.panel)
			case noData[[2]string{b.file, q.panel}] != "":
				t.Logf("%s panel %q: %s, allowed: %s", b.file, q.panel, why, noData[[2]string{b.file, q.panel}])
			default:
				missing = append(missing, fmt.Sprintf("%s, panel %q (%s): %s", b.file, q.panel, why, e))
			}
		}
	}
	if n == 0 {
		t.Fatal("no panel queries")
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d panel queries show no data:\n  %s", len(missing), n, strings.Join(missing, "\n  "))
	}

	// The check is not vacuous: on the same data, the mistakes it exists
	// for each make a shipped query show nothing.
	for _, c := range []struct{ what, file, old, new string }{
		{"histogram_quantile without le", "pipeline.json", "sum by (consumer, le)", "sum by (consumer)"},
		{"a label value no series has", "pipeline.json", `outcome="dead_letter"`, `outcome="dead-letter"`},
		{"a by clause without the legend's label", "closed-loop.json", "sum by (team) (increase(feedloop_items_routed_total", "sum by (teams) (increase(feedloop_items_routed_total"},
		{"a misspelt metric", "closed-loop.json", "feedloop_reroutes_total", "feedloop_reroute_total"},
	} {
		found := false
		for _, b := range boards(t) {
			for _, q := range b.queries {
				if b.file != c.file || !strings.Contains(q.expr, c.old) {
					continue
				}
				found = true
				q.expr = strings.Replace(q.expr, c.old, c.new, 1)
				why, err := prom.noData(ctx, q, fill(q.expr, window, window, map[string]string{"team": ".*"}), first, last)
				if err == nil && why == "" {
					t.Errorf("%s: %s panel %q still shows data: %s", c.what, c.file, q.panel, q.expr)
				}
			}
		}
		if !found {
			t.Errorf("%s: no query of %s has %s", c.what, c.file, c.old)
		}
	}
}

// pipeline is the four services on an embedded NATS and a redis-server,
// wired as cmd/feedloop's stack wires them: one bus, one Redis client, one
// /metrics for the process.
type pipeline struct {
	metricsAddr string
	bus         *bus.Bus
	intake      feedloopv1.IntakeServiceClient
	team        feedloopv1.TeamServiceClient
	customers   *hook
	teams       *hook
}

func startPipeline(t *testing.T) *pipeline {
	t.Helper()
	ctx := t.Context()
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	natsURL, redisURL := testkit.NATS(t), testkit.Redis(t)
	common := lifecycle.MustDefaults[lifecycle.Common]()
	common.NATSURL, common.RedisURL = natsURL, redisURL
	// The bus reads the global meter provider when it is made: after Setup.
	nc, err := bus.Connect(natsURL, "deploy-check-dashboards")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Drain() })
	b, err := bus.New(nc, bus.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.EnsureStreams(ctx, common.Streams()); err != nil {
		t.Fatal(err)
	}
	rdb, err := redisx.Connect(ctx, redisURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	t.Cleanup(lifecycle.ObserveRedis(otel.GetMeterProvider(), rdb))
	ms, err := telemetry.ServeMetrics("127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ms.Close() })

	p := &pipeline{metricsAddr: ms.Addr(), bus: b, customers: newHook(t), teams: newHook(t)}
	dir := t.TempDir()
	var tokens strings.Builder
	tokens.WriteString("tokens:\n")
	for team, tok := range teamTokens {
		sum := sha256.Sum256([]byte(tok))
		fmt.Fprintf(&tokens, "  - {team: %s, name: %s-agent, sha256: %s}\n", team, team, hex.EncodeToString(sum[:]))
	}
	for name, body := range map[string]string{
		"routes.yaml": slaRoutes,
		"tokens.yaml": tokens.String(),
		// Every team's messages go to a webhook team channel, so the
		// notifier's series have channel="webhook" for teams too.
		"teams.yaml": "teams:\n  default:\n    - type: webhook\n      url: " + p.teams.URL + "/hooks\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	smtp := smtptest.Start(t, smtptest.Options{})

	infra := &lifecycle.Infra{Bus: b, Redis: rdb, Log: log}
	ic := intake.DefaultConfig()
	ic.Common, ic.GRPCAddr, ic.HTTPAddr = common, "127.0.0.1:0", "127.0.0.1:0"
	ic.RateLimit = access.Rate{} // one source sends the whole load
	in, err := intake.New(ic, infra)
	if err != nil {
		t.Fatalf("intake: %v", err)
	}
	cc := classifier.DefaultConfig()
	cc.Common, cc.RulesFile = common, filepath.Join(examples, "rules.yaml")
	cc.Languages = nil // the customer's locale decides: no language models to load
	cl, err := classifier.New(cc, infra)
	if err != nil {
		t.Fatalf("classifier: %v", err)
	}
	rc := router.DefaultConfig()
	rc.Common, rc.RoutesFile, rc.TeamTokensFile = common, filepath.Join(dir, "routes.yaml"), filepath.Join(dir, "tokens.yaml")
	rc.GRPCAddr, rc.HTTPAddr, rc.SLAWarnAt, rc.SLATick = "127.0.0.1:0", "127.0.0.1:0", 0.5, 20*time.Millisecond
	rt, err := router.New(rc, infra)
	if err != nil {
		t.Fatalf("router: %v", err)
	}
	ncfg := notifier.DefaultConfig()
	ncfg.Common, ncfg.TemplatesDir, ncfg.TeamsFile = common, filepath.Join(examples, "templates"), filepath.Join(dir, "teams.yaml")
	ncfg.CustomerWebhookURL, ncfg.WebhookSecret = p.customers.URL+"/customers", webhookSecret
	ncfg.SMTPAddr, ncfg.SMTPFrom = smtp.Addr, "Acme Support <support@acme.example>"
	ncfg.StatusURL, ncfg.ConsoleOutput = "http://"+rt.HTTPAddr()+"/status", io.Discard
	ncfg.CustomerDailyCap = 0 // every step of every item reaches the customer
	nt, err := notifier.New(ncfg, infra)
	if err != nil {
		t.Fatalf("notifier: %v", err)
	}
	for _, run := range []func(context.Context) error{in.Run, cl.Run, rt.Run, nt.Run} {
		testkit.Run(t, run)
	}
	dial := func(addr string) *grpc.ClientConn {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		return conn
	}
	p.intake = feedloopv1.NewIntakeServiceClient(dial(in.GRPCAddr()))
	p.team = feedloopv1.NewTeamServiceClient(dial(rt.GRPCAddr()))
	return p
}

func as(ctx context.Context, team string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+teamTokens[team])
}

func int32p(v int32) *int32 { return &v }

// drive runs the flows the dashboards show, as cmd/feedloop's metrics
// end-to-end test does: two items routed to triage miss their acknowledge
// deadline (warnings, breaches, escalations); one carries an NPS score,
// is acknowledged, rerouted to product, acknowledged and resolved (closed
// loop, survey), and its customer answers the survey; the other is
// declined; a submission that cannot be read is dead-lettered. Then it
// waits until every consumer has caught up. has tells whether a PromQL
// expression has a result on what was scraped so far.
func (p *pipeline) drive(ctx context.Context, t *testing.T, round int, has func(expr string) bool) {
	t.Helper()
	customer := &feedloopv1.Customer{Id: "c-dash", Email: "lin@example.com", Locale: "en", Consent: &feedloopv1.Consent{Contact: true, Survey: true}}
	submit := func(ext string, nps *int32) string {
		t.Helper()
		r, err := p.intake.Submit(ctx, &feedloopv1.SubmitRequest{Feedback: &feedloopv1.Feedback{
			Source: "survey-tool", ExternalId: ext, Customer: customer, Subject: "Parcel " + ext,
			Text: "The parcel came late and the box was damaged.", Nps: nps,
		}})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetFeedbackId()
	}
	a := submit(fmt.Sprintf("dash-%d-a", round), int32p(2))
	b := submit(fmt.Sprintf("dash-%d-b", round), nil)
	testkit.Eventually(t, "both items past their acknowledge deadline, scraped", func() bool {
		return has(fmt.Sprintf(`sum(feedloop_sla_breaches_total{team="triage"}) >= %d`, 2*round))
	})
	call := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	_, err := p.team.Acknowledge(as(ctx, "triage"), &feedloopv1.AcknowledgeRequest{FeedbackId: a})
	call("triage acknowledges", err)
	_, err = p.team.Reroute(as(ctx, "triage"), &feedloopv1.RerouteRequest{FeedbackId: a, Team: "product", InternalNote: "a product defect"})
	call("triage reroutes", err)
	testkit.Eventually(t, "product to see the rerouted item", func() bool {
		_, err := p.team.Get(as(ctx, "product"), &feedloopv1.GetRequest{FeedbackId: a})
		return err == nil
	})
	_, err = p.team.Acknowledge(as(ctx, "product"), &feedloopv1.AcknowledgeRequest{FeedbackId: a})
	call("product acknowledges", err)
	_, err = p.team.Resolve(as(ctx, "product"), &feedloopv1.ResolveRequest{FeedbackId: a, CustomerMessage: "A new box is on its way."})
	call("product resolves", err)
	_, err = p.team.Decline(as(ctx, "triage"), &feedloopv1.DeclineRequest{FeedbackId: b, CustomerMessage: "The carrier handles damage claims."})
	call("triage declines", err)
	testkit.Eventually(t, "the customer's survey", func() bool { return p.customers.has(a, "survey") })
	_, err = p.intake.Submit(ctx, &feedloopv1.SubmitRequest{Feedback: &feedloopv1.Feedback{
		Source: "survey-tool", ExternalId: fmt.Sprintf("dash-%d-answer", round), Customer: customer, InReplyTo: a, Csat: int32p(5), Text: "Thanks, all good now.",
	}})
	call("the survey answer", err)
	_, err = p.bus.PublishData(ctx, bus.SubmitSubject("garbage"), fmt.Sprintf("garbage-%d", round), []byte{0xff, 0x01}, nil)
	call("the unreadable submission", err)
	testkit.Eventually(t, "the survey answer and the dead letter, scraped", func() bool {
		return has(fmt.Sprintf(`sum(feedloop_survey_responses_total{origin="survey"}) >= %d`, round)) &&
			has(fmt.Sprintf(`sum(feedloop_messages_processed_total{consumer="intake",outcome="dead_letter"}) >= %d`, round))
	})
	testkit.Eventually(t, "every consumer to catch up", func() bool {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		for stream, durables := range map[string][]string{
			bus.StreamSubmit:   {"intake"},
			bus.StreamFeedback: {classifier.Durable, "router", router.ProjectorDurable, notifier.Durable},
		} {
			for _, d := range durables {
				c, err := p.bus.JetStream().Consumer(cctx, stream, d)
				if err != nil {
					return false
				}
				info, err := c.Info(cctx)
				if err != nil || info.NumPending > 0 || info.NumAckPending > 0 {
					return false
				}
			}
		}
		return true
	})
}

// hook is a webhook receiver on loopback that checks each call's signature
// and records its feedback id and step.
type hook struct {
	*httptest.Server
	mu    sync.Mutex
	calls [][2]string
}

func newHook(t *testing.T) *hook {
	h := &hook{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		if err := webhooksig.Verify([]byte(webhookSecret), r.Header.Get(webhooksig.Header), raw); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var body struct {
			Step       string `json:"step"`
			FeedbackID string `json:"feedback_id"`
		}
		_ = json.Unmarshal(raw, &body)
		h.mu.Lock()
		h.calls = append(h.calls, [2]string{body.FeedbackID, body.Step})
		h.mu.Unlock()
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hook) has(feedbackID, step string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.calls {
		if c == [2]string{feedbackID, step} {
			return true
		}
	}
	return false
}

func (h *hook) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.calls)
}
