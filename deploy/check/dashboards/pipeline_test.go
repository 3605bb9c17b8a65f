package dashboards

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
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
	"github.com/feedloop/feedloop/services/notifier"
	"github.com/feedloop/feedloop/services/notifier/webhooksig"
	"github.com/feedloop/feedloop/services/router"
)

const examples = "../../examples"

// scrapeInterval is how often the test's Prometheus scrapes /metrics.
const scrapeInterval = time.Second

// noDataAllowed lists the panel queries that may return no series after the
// short run, by dashboard file and panel title, with the reason. Keep it
// empty unless a panel cannot have data in a test for a real reason.
var noDataAllowed = map[[2]string]string{}

// slaRoutes sends everything to triage with a two-second acknowledge
// deadline, so the run sees warnings, breaches and escalations; product is
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

const webhookSecret = "dashboards-webhook-secret-0123456789"

var teamTokens = map[string]string{"triage": "d-triage-token-51f0", "product": "d-product-token-7c2e"}

// TestEveryPanelHasDataOnARealPrometheus runs the pipeline (NATS JetStream,
// redis-server, the four services through their public packages, one
// /metrics for the process as `feedloop dev` serves it), drives every flow
// the dashboards show, scrapes /metrics every second into Prometheus's TSDB
// the way Prometheus's scraper does (its text parser, job and instance
// labels, stale markers), fills in Grafana's variables (the team variable
// from its label_values query on that TSDB, "All" selected) and evaluates
// every panel query with Prometheus's PromQL engine at the last scrape:
// each must return at least one series, and one with a number (not NaN:
// Grafana shows no value for it).
func TestEveryPanelHasDataOnARealPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the pipeline")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		t.Setenv(k, "")
	}
	shutdown, err := telemetry.Setup(ctx, "feedloop-deploy-check")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shutdown(context.Background()) })

	p := startPipeline(t)
	prom := startScraping(t, p.metricsAddr)
	engine := promql.NewEngine(promql.EngineOpts{
		MaxSamples: 10_000_000, Timeout: 30 * time.Second, LookbackDelta: 5 * time.Minute,
		Parser: parser.NewParser(parser.Options{}),
	})
	scraped := func(expr string) bool {
		n, _, err := prom.eval(ctx, engine, expr, time.Now())
		return err == nil && n > 0
	}
	// Twice: as Prometheus does, the test's counts a series only from its
	// first scrape on, so the first round creates the series and the
	// second moves them, for rates, ratios and quantiles to have numbers.
	for round := 1; round <= 2; round++ {
		p.drive(ctx, t, round, scraped)
		prom.waitScrapes(t, 2)
	}
	prom.waitScrapes(t, 1)
	prom.stop()
	if errs := prom.errors(); len(errs) > 0 {
		t.Fatalf("scrapes failed: %v", errs)
	}
	first, last := prom.span()
	window := fmt.Sprintf("%ds", int(math.Ceil(last.Sub(first).Seconds()))+int(scrapeInterval.Seconds()))
	t.Logf("%d scrapes over %s, queries evaluated at the last with $__range = $__rate_interval = %s", prom.count(), last.Sub(first).Round(time.Millisecond), window)

	var empty, noNumber []string
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
			series, nonNaN, err := prom.eval(ctx, engine, e, last)
			switch {
			case err != nil:
				t.Errorf("%s panel %q: %v\n  %s", b.file, q.panel, err, e)
			case series == 0:
				if why, ok := noDataAllowed[[2]string{b.file, q.panel}]; ok {
					t.Logf("%s panel %q: no series, allowed: %s", b.file, q.panel, why)
					continue
				}
				empty = append(empty, fmt.Sprintf("%s, panel %q: %s", b.file, q.panel, e))
			case nonNaN == 0:
				if why, ok := noDataAllowed[[2]string{b.file, q.panel}]; ok {
					t.Logf("%s panel %q: only NaN, allowed: %s", b.file, q.panel, why)
					continue
				}
				noNumber = append(noNumber, fmt.Sprintf("%s, panel %q: %s", b.file, q.panel, e))
			}
		}
	}
	if n == 0 {
		t.Fatal("no panel queries")
	}
	if len(empty) > 0 {
		t.Errorf("%d of %d panel queries return no series:\n  %s", len(empty), n, strings.Join(empty, "\n  "))
	}
	if len(noNumber) > 0 {
		t.Errorf("%d of %d panel queries return only NaN (an empty panel in Grafana):\n  %s", len(noNumber), n, strings.Join(noNumber, "\n  "))
	}
}

// pipeline is the four services on an embedded NATS and a redis-server,
// wired as cmd/feedloop's stack wires them (one bus, one Redis client, one
// /metrics for the process).
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
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	natsURL, redisURL := testkit.NATS(t), testkit.Redis(t)
	common := lifecycle.Common{
		NATSURL: natsURL, RedisURL: redisURL, StreamReplicas: 1,
		DuplicateWindow: bus.DefaultDuplicateWindow, LogLevel: "info",
	}
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

	dir := t.TempDir()
	p := &pipeline{metricsAddr: ms.Addr(), bus: b, customers: newHook(t), teams: newHook(t)}
	var tokens strings.Builder
	tokens.WriteString("tokens:\n")
	for team, tok := range teamTokens {
		sum := sha256.Sum256([]byte(tok))
		fmt.Fprintf(&tokens, "  - {team: %s, name: %s-agent, sha256: %s}\n", team, team, hex.EncodeToString(sum[:]))
	}
	files := map[string]string{
		"routes.yaml": slaRoutes,
		"tokens.yaml": tokens.String(),
		// Every team's messages go to a webhook team channel.
		"teams.yaml": "teams:\n  default:\n    - type: webhook\n      url: " + p.teams.URL + "/hooks\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	smtp := smtptest.Start(t, smtptest.Options{})

	infra := &lifecycle.Infra{Bus: b, Redis: rdb, Log: log}
	in, err := intake.New(intake.Config{Common: common, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, infra)
	if err != nil {
		t.Fatalf("intake: %v", err)
	}
	cc := classifier.DefaultConfig()
	cc.Common, cc.RulesFile = common, filepath.Join(examples, "rules.yaml")
	cl, err := classifier.New(cc, infra)
	if err != nil {
		t.Fatalf("classifier: %v", err)
	}
	rt, err := router.New(router.Config{
		Common: common, RoutesFile: filepath.Join(dir, "routes.yaml"), TeamTokensFile: filepath.Join(dir, "tokens.yaml"),
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", SLAWarnAt: 0.5, SLATick: 20 * time.Millisecond,
	}, infra)
	if err != nil {
		t.Fatalf("router: %v", err)
	}
	nt, err := notifier.New(notifier.Config{
		Common: common, TemplatesDir: filepath.Join(examples, "templates"),
		TeamsFile: filepath.Join(dir, "teams.yaml"), CustomerWebhookURL: p.customers.URL + "/customers", WebhookSecret: webhookSecret,
		SMTPAddr: smtp.Addr, SMTPFrom: "Acme Support <support@acme.example>",
		StatusURL: "http://" + rt.HTTPAddr() + "/status", ConsoleOutput: io.Discard,
	}, infra)
	if err != nil {
		t.Fatalf("notifier: %v", err)
	}
	for _, run := range []func(context.Context) error{in.Run, cl.Run, rt.Run, nt.Run} {
		testkit.Run(t, run)
	}
	for addr, set := range map[string]func(*grpc.ClientConn){
		in.GRPCAddr(): func(c *grpc.ClientConn) { p.intake = feedloopv1.NewIntakeServiceClient(c) },
		rt.GRPCAddr(): func(c *grpc.ClientConn) { p.team = feedloopv1.NewTeamServiceClient(c) },
	} {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		set(conn)
	}
	return p
}

func as(ctx context.Context, team string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+teamTokens[team])
}

func int32p(v int32) *int32 { return &v }

// drive runs the flows the dashboards show, as the metrics end-to-end test
// of cmd/feedloop does: two items routed to triage miss their acknowledge
// deadline (warnings, breaches, escalations); one is acknowledged,
// rerouted to product, acknowledged and resolved (closed loop, survey), the
// other declined; team messages go to a webhook team channel; the
// customer answers the survey; a submission that
// cannot be read is dead-lettered. Then it waits for the pipeline to settle.
// scraped tells whether a PromQL expression has a result on what was
// scraped so far.
func (p *pipeline) drive(ctx context.Context, t *testing.T, round int, scraped func(expr string) bool) {
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
	a := submit(fmt.Sprintf("d-%d-1", round), int32p(2))
	b := submit(fmt.Sprintf("d-%d-2", round), nil)
	testkit.Eventually(t, "both items past their acknowledge deadline, scraped", func() bool {
		return scraped(fmt.Sprintf(`sum(feedloop_sla_breaches_total{team="triage"}) >= %d`, 2*round))
	})
	if _, err := p.team.Acknowledge(as(ctx, "triage"), &feedloopv1.AcknowledgeRequest{FeedbackId: a}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.team.Reroute(as(ctx, "triage"), &feedloopv1.RerouteRequest{FeedbackId: a, Team: "product", Reason: "a product defect"}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "product to see the rerouted item", func() bool {
		_, err := p.team.Get(as(ctx, "product"), &feedloopv1.GetRequest{FeedbackId: a})
		return err == nil
	})
	if _, err := p.team.Acknowledge(as(ctx, "product"), &feedloopv1.AcknowledgeRequest{FeedbackId: a}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.team.Resolve(as(ctx, "product"), &feedloopv1.ResolveRequest{FeedbackId: a, Message: "A new box is on its way."}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.team.Decline(as(ctx, "triage"), &feedloopv1.DeclineRequest{FeedbackId: b, Reason: "The carrier handles damage claims."}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the survey", func() bool { return len(p.customers.find(a, "survey")) == 1 })
	if _, err := p.intake.Submit(ctx, &feedloopv1.SubmitRequest{Feedback: &feedloopv1.Feedback{
		Source: "survey-tool", ExternalId: fmt.Sprintf("d-%d-answer", round), Customer: customer, InReplyTo: a, Csat: int32p(5), Text: "Thanks, all good now.",
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.bus.PublishData(ctx, bus.SubmitSubject("garbage"), fmt.Sprintf("garbage-%d", round), []byte{0xff, 0x01}, nil); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the pipeline to settle", func() bool {
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

// hook is a webhook receiver on loopback that checks signatures and
// records (feedback id, step) of each call.
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

func (h *hook) find(fid, step string) [][2]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out [][2]string
	for _, c := range h.calls {
		if c == [2]string{fid, step} {
			out = append(out, c)
		}
	}
	return out
}

// prometheus scrapes one target into a TSDB as Prometheus's scrape loop
// does: the exposition parsed by Prometheus's own parser, job and instance
// labels added, each sample stamped with the scrape's time, and a stale
// marker for every series that a scrape no longer shows.
type prometheus struct {
	db       *tsdb.DB
	target   string
	done     chan struct{}
	stopped  chan struct{}
	mu       sync.Mutex
	times    []time.Time
	errs     []error
	previous map[string]labels.Labels
}

func startScraping(t *testing.T, target string) *prometheus {
	t.Helper()
	db, err := tsdb.Open(t.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	p := &prometheus{db: db, target: target, done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(p.stopped)
		tick := time.NewTicker(scrapeInterval)
		defer tick.Stop()
		for {
			p.scrape()
			select {
			case <-p.done:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *prometheus) stop() {
	select {
	case <-p.done:
	default:
		close(p.done)
	}
	<-p.stopped
}

func (p *prometheus) scrape() {
	ts := time.Now()
	err := p.scrapeAt(ts)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.errs = append(p.errs, err)
		return
	}
	p.times = append(p.times, ts)
}

func (p *prometheus) scrapeAt(ts time.Time) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.target+telemetry.MetricsPath, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /metrics: %s", res.Status)
	}
	parser, err := textparse.New(body, res.Header.Get("Content-Type"), labels.NewSymbolTable(), textparse.ParserOptions{})
	if err != nil {
		return fmt.Errorf("parser for %q: %w", res.Header.Get("Content-Type"), err)
	}
	app := p.db.Appender(context.Background())
	ms := ts.UnixMilli()
	seen := map[string]labels.Labels{}
	for {
		entry, err := parser.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			_ = app.Rollback()
			return fmt.Errorf("parse /metrics: %w", err)
		}
		if entry != textparse.EntrySeries {
			continue
		}
		_, _, v := parser.Series()
		var lset labels.Labels
		parser.Labels(&lset)
		lb := labels.NewBuilder(lset)
		lb.Set("job", "feedloop")
		lb.Set("instance", p.target)
		lset = lb.Labels()
		if _, err := app.Append(0, lset, ms, v); err != nil {
			_ = app.Rollback()
			return fmt.Errorf("append %s: %w", lset, err)
		}
		seen[lset.String()] = lset
	}
	for k, lset := range p.previous {
		if _, ok := seen[k]; !ok {
			if _, err := app.Append(0, lset, ms, math.Float64frombits(value.StaleNaN)); err != nil {
				_ = app.Rollback()
				return fmt.Errorf("stale marker %s: %w", lset, err)
			}
		}
	}
	p.previous = seen
	return app.Commit()
}

// waitScrapes waits for n more successful scrapes.
func (p *prometheus) waitScrapes(t *testing.T, n int) {
	t.Helper()
	want := p.count() + n
	testkit.Eventually(t, fmt.Sprintf("%d more scrapes", n), func() bool { return p.count() >= want })
}

func (p *prometheus) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.times)
}

func (p *prometheus) errors() []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.errs)
}

// span is the time of the first and the last scrape.
func (p *prometheus) span() (first, last time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.times[0], p.times[len(p.times)-1]
}

var labelValues = regexp.MustCompile(`^\s*label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$`)

// variable is the value Grafana gives v in a query: a query variable's
// values over the time range, with "All" selected (Grafana's default for a
// variable that includes All), as the regex alternation Grafana's
// Prometheus data source sends.
func (p *prometheus) variable(ctx context.Context, v variable, from, to time.Time) (string, error) {
	if v.Type != "query" {
		return "", fmt.Errorf("type %q: the test knows only query variables", v.Type)
	}
	m := labelValues.FindStringSubmatch(v.Definition)
	if m == nil {
		return "", fmt.Errorf("query %q: the test knows only label_values(metric, label)", v.Definition)
	}
	q, err := p.db.Querier(from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return "", err
	}
	defer q.Close()
	vals, _, err := q.LabelValues(ctx, m[2], nil, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, m[1]))
	if err != nil {
		return "", err
	}
	if len(vals) == 0 {
		return "", fmt.Errorf("%s has no values", v.Definition)
	}
	if !v.IncludeAll && !v.Multi {
		return regexp.QuoteMeta(vals[0]), nil
	}
	quoted := make([]string, len(vals))
	for i, s := range vals {
		quoted[i] = regexp.QuoteMeta(s)
	}
	return "(" + strings.Join(quoted, "|") + ")", nil
}

// eval runs expr as an instant query at ts, returning how many series it
// gives and how many of them have a number (not NaN).
func (p *prometheus) eval(ctx context.Context, engine *promql.Engine, expr string, ts time.Time) (series, nonNaN int, err error) {
	q, err := engine.NewInstantQuery(ctx, storage.Queryable(p.db), nil, expr, ts)
	if err != nil {
		return 0, 0, err
	}
	defer q.Close()
	res := q.Exec(ctx)
	if res.Err != nil {
		return 0, 0, res.Err
	}
	switch v := res.Value.(type) {
	case promql.Vector:
		for _, s := range v {
			if !math.IsNaN(s.F) || s.H != nil {
				nonNaN++
			}
		}
		return len(v), nonNaN, nil
	case promql.Scalar:
		if !math.IsNaN(v.V) {
			nonNaN = 1
		}
		return 1, nonNaN, nil
	case promql.Matrix:
		return len(v), len(v), nil
	default:
		return 0, 0, fmt.Errorf("result of type %s", res.Value.Type())
	}
}

