package dashboards

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/prometheus/prometheus/model/timestamp"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/tsdb"
)

// scrapeInterval is how often the test's Prometheus scrapes /metrics.
const scrapeInterval = time.Second

// accept is what Prometheus asks a target for by default (scrape_protocols:
// OpenMetrics first, then the text format), so the test reads what a real
// Prometheus reads: _total counters, exemplars, _created series.
const accept = "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4," +
	"text/plain;version=1.0.0;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"

// prom is the test's Prometheus: its TSDB in a temp dir, fed by a scrape
// loop that does what Prometheus's does for one target (its parser,
// job/instance target labels, exposed ones renamed exported_*, an up
// series, a stale marker for each series that disappears), and its PromQL
// engine.
type prom struct {
	db     *tsdb.DB
	engine *promql.Engine
	url    string
	target labels.Labels

	mu    sync.Mutex
	times []time.Time // of every successful scrape
	errs  []error
	prev  map[uint64]labels.Labels // series of the previous scrape

	stopc, done chan struct{}
}

func startPrometheus(t *testing.T, addr string) *prom {
	t.Helper()
	nop := slog.New(slog.DiscardHandler)
	db, err := tsdb.Open(t.TempDir(), nop, nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &prom{
		db: db,
		engine: promql.NewEngine(promql.EngineOpts{
			Logger: nop, MaxSamples: 50_000_000, Timeout: time.Minute,
			LookbackDelta: 5 * time.Minute, Parser: parser.NewParser(parser.Options{}),
		}),
		url:    "http://" + addr + "/metrics",
		target: labels.FromStrings("job", "feedloop", "instance", addr),
		stopc:  make(chan struct{}),
		done:   make(chan struct{}),
	}
	go p.loop()
	t.Cleanup(func() {
		p.stop()
		_ = db.Close()
	})
	return p
}

func (p *prom) loop() {
	defer close(p.done)
	tick := time.NewTicker(scrapeInterval)
	defer tick.Stop()
	for {
		p.scrape()
		select {
		case <-p.stopc:
			return
		case <-tick.C:
		}
	}
}

// stop ends the scrape loop after the scrape under way.
func (p *prom) stop() {
	select {
	case <-p.stopc:
	default:
		close(p.stopc)
	}
	<-p.done
}

func (p *prom) scrape() {
	ts := time.Now()
	err := p.scrapeAt(ts)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.errs = append(p.errs, fmt.Errorf("scrape at %s: %w", ts.Format(time.TimeOnly), err))
		return
	}
	p.times = append(p.times, ts)
}

func (p *prom) scrapeAt(ts time.Time) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", accept)
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
		return fmt.Errorf("%s: %s", res.Status, body)
	}
	parse, err := textparse.New(body, res.Header.Get("Content-Type"), nil, textparse.ParserOptions{})
	if parse == nil {
		return fmt.Errorf("content type %q: %w", res.Header.Get("Content-Type"), err)
	}
	t := timestamp.FromTime(ts)
	app := p.db.Appender(ctx)
	seen := map[uint64]labels.Labels{}
	add := func(l labels.Labels, v float64) error {
		seen[l.Hash()] = l
		_, err := app.Append(0, l, t, v)
		return err
	}
	var lset labels.Labels
	for {
		entry, err := parse.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			_ = app.Rollback()
			return fmt.Errorf("parse: %w", err)
		}
		if entry != textparse.EntrySeries {
			continue // metadata; no native histograms in the text formats
		}
		_, _, v := parse.Series()
		parse.Labels(&lset)
		if err := add(p.withTarget(lset), v); err != nil {
			_ = app.Rollback()
			return fmt.Errorf("append %s: %w", lset, err)
		}
	}
	if err := add(labels.NewBuilder(p.target).Set(labels.MetricName, "up").Labels(), 1); err != nil {
		_ = app.Rollback()
		return err
	}
	// As Prometheus does: a series gone from the target ends now, not
	// five minutes (the lookback) later.
	p.mu.Lock()
	prev := p.prev
	p.mu.Unlock()
	for h, l := range prev {
		if _, ok := seen[h]; !ok {
			if _, err := app.Append(0, l, t, math.Float64frombits(value.StaleNaN)); err != nil {
				_ = app.Rollback()
				return err
			}
		}
	}
	if err := app.Commit(); err != nil {
		return err
	}
	p.mu.Lock()
	p.prev = seen
	p.mu.Unlock()
	return nil
}

// withTarget adds the target's labels, renaming clashing exposed ones to
// exported_<name> (honor_labels: false, Prometheus's default).
func (p *prom) withTarget(l labels.Labels) labels.Labels {
	b := labels.NewBuilder(l)
	p.target.Range(func(tl labels.Label) {
		if v := l.Get(tl.Name); v != "" {
			b.Set("exported_"+tl.Name, v)
		}
		b.Set(tl.Name, tl.Value)
	})
	return b.Labels()
}

// span returns the first and last successful scrape times and their count.
func (p *prom) span() (first, last time.Time, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.times) == 0 {
		return time.Time{}, time.Time{}, 0
	}
	return p.times[0], p.times[len(p.times)-1], len(p.times)
}

// errors returns the failed scrapes.
func (p *prom) errors() []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.errs)
}

// waitScrapes waits until n more scrapes have succeeded.
func (p *prom) waitScrapes(t *testing.T, n int) {
	t.Helper()
	_, _, have := p.span()
	deadline := time.Now().Add(time.Duration(n)*scrapeInterval + 20*time.Second)
	for {
		if _, _, now := p.span(); now >= have+n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d scrapes did not happen; failed scrapes: %v", n, p.errors())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// result is what one query returned: its series' labels, and how many of
// them have at least one number (not NaN: Grafana shows no value for it).
type result struct {
	series  []labels.Labels
	numbers int
}

// instant evaluates expr at ts, as Grafana's instant queries do.
func (p *prom) instant(ctx context.Context, expr string, ts time.Time) (result, error) {
	q, err := p.engine.NewInstantQuery(ctx, p.db, nil, expr, ts)
	if err != nil {
		return result{}, err
	}
	defer q.Close()
	return count(q.Exec(ctx))
}

// rangeQuery evaluates expr from start to end every step, as a time series
// panel does.
func (p *prom) rangeQuery(ctx context.Context, expr string, start, end time.Time, step time.Duration) (result, error) {
	q, err := p.engine.NewRangeQuery(ctx, p.db, nil, expr, start, end, step)
	if err != nil {
		return result{}, err
	}
	defer q.Close()
	return count(q.Exec(ctx))
}

func count(r *promql.Result) (result, error) {
	if r.Err != nil {
		return result{}, r.Err
	}
	var out result
	switch v := r.Value.(type) {
	case promql.Vector:
		for _, s := range v {
			out.series = append(out.series, s.Metric)
			if s.H != nil || !math.IsNaN(s.F) {
				out.numbers++
			}
		}
	case promql.Matrix:
		for _, s := range v {
			out.series = append(out.series, s.Metric)
			if len(s.Histograms) > 0 || slices.ContainsFunc(s.Floats, func(f promql.FPoint) bool { return !math.IsNaN(f.F) }) {
				out.numbers++
			}
		}
	case promql.Scalar:
		out.series = append(out.series, labels.EmptyLabels())
		if !math.IsNaN(v.V) {
			out.numbers++
		}
	default:
		return result{}, fmt.Errorf("unexpected result type %s", r.Value.Type())
	}
	return out, nil
}

// legendLabelRe finds the labels a legend format names, {{team}}.
var legendLabelRe = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)

// noData says why a panel query shows nothing, or "" when it shows data:
// no series, only NaN, or series without a label its legend names (a
// wrong by clause: Grafana shows one unnamed line). expr has its variables
// filled in; an instant query is evaluated at last, a range query from
// first to last every scrape interval.
func (p *prom) noData(ctx context.Context, q query, expr string, first, last time.Time) (string, error) {
	var r result
	var err error
	if q.instant {
		r, err = p.instant(ctx, expr, last)
	} else {
		r, err = p.rangeQuery(ctx, expr, first, last, scrapeInterval)
	}
	switch {
	case err != nil:
		return "", err
	case len(r.series) == 0:
		return "no series", nil
	case r.numbers == 0:
		return fmt.Sprintf("%d series, only NaN", len(r.series)), nil
	}
	for _, m := range legendLabelRe.FindAllStringSubmatch(q.legend, -1) {
		for _, s := range r.series {
			if s.Get(m[1]) == "" {
				return fmt.Sprintf("legend %s: series %s has no %s label", m[0], s, m[1]), nil
			}
		}
	}
	return "", nil
}

// labelValuesRe matches Grafana's label_values([selector,] label).
var labelValuesRe = regexp.MustCompile(`^\s*label_values\(\s*(?:(.+?)\s*,\s*)?([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$`)

// variable returns what Grafana substitutes for a query variable with
// "All" selected (the shipped default): its allValue, or a regex of every
// value its label_values query finds between start and end. No value is
// an error: the variable's drop-down would be empty.
func (p *prom) variable(ctx context.Context, v variable, start, end time.Time) (string, error) {
	if v.Type != "query" {
		return "", fmt.Errorf("type %q: only query variables are filled in", v.Type)
	}
	m := labelValuesRe.FindStringSubmatch(v.Definition)
	if m == nil {
		return "", fmt.Errorf("definition %q is not label_values(...)", v.Definition)
	}
	var matchers []*labels.Matcher
	if m[1] != "" {
		var err error
		if matchers, err = parser.NewParser(parser.Options{}).ParseMetricSelector(m[1]); err != nil {
			return "", fmt.Errorf("definition %q: %w", v.Definition, err)
		}
	}
	q, err := p.db.Querier(timestamp.FromTime(start), timestamp.FromTime(end))
	if err != nil {
		return "", err
	}
	defer q.Close()
	vals, _, err := q.LabelValues(ctx, m[2], nil, matchers...)
	if err != nil {
		return "", err
	}
	if len(vals) == 0 {
		return "", fmt.Errorf("%s finds no values", v.Definition)
	}
	if v.AllValue != "" {
		return v.AllValue, nil
	}
	for i, s := range vals {
		vals[i] = regexp.QuoteMeta(s)
	}
	return "(" + strings.Join(vals, "|") + ")", nil
}
