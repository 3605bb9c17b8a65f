// Package dashboards checks the Grafana dashboards shipped in
// deploy/grafana: each decodes strictly into Grafana's dashboard schema
// (github.com/grafana/grafana-foundation-sdk/go, Grafana Labs' generated
// types, Apache-2.0) and each panel query, with Grafana's variables filled
// in, is PromQL that Prometheus's own parser accepts.
package dashboards

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/prometheus/prometheus/promql/parser"
)

const dir = "../../grafana"

// fill replaces Grafana's variables as Grafana would before querying: the
// built-in intervals, and the dashboard's own variables by the values
// given. Longer names go first, so $__range never eats $__range_ms.
func fill(expr, rateInterval, rng string, vars map[string]string) string {
	r := map[string]string{"$__rate_interval": rateInterval, "$__range": rng, "$__interval": "15s"}
	for k, v := range vars {
		r["${"+k+"}"], r["$"+k] = v, v
	}
	names := make([]string, 0, len(r))
	for k := range r {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return len(names[i]) > len(names[j]) })
	var pairs []string
	for _, k := range names {
		pairs = append(pairs, k, r[k])
	}
	return strings.NewReplacer(pairs...).Replace(expr)
}

// A board is one dashboard file: its variables and every panel query.
type board struct {
	file    string
	vars    []variable
	queries []query
}

type variable struct {
	Name, Type string
	// Definition is a query variable's query, e.g. label_values(m, team).
	Definition string `json:"definition"`
	// AllValue is what "All" stands for; Grafana joins every value into a
	// regex when it is empty.
	AllValue string `json:"allValue"`
}

type query struct {
	panel, expr string
	// legend is the legend format, e.g. "{{team}}".
	legend string
	// instant: Grafana asks for one value at the end of the range (stat,
	// bar gauge, table); else a range query (time series).
	instant bool
}

// boards reads every dashboard of dir.
func boards(t *testing.T) []board {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in %s: %v", dir, err)
	}
	var out []board
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var plain struct {
			Panels     []panel `json:"panels"`
			Templating struct {
				List []variable `json:"list"`
			} `json:"templating"`
		}
		if err := json.Unmarshal(raw, &plain); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		b := board{file: filepath.Base(f), vars: plain.Templating.List}
		var walk func([]panel)
		walk = func(ps []panel) {
			for _, pn := range ps {
				walk(pn.Panels)
				for _, tg := range pn.Targets {
					b.queries = append(b.queries, query{panel: pn.Title, expr: tg.Expr, legend: tg.LegendFormat, instant: tg.Instant})
				}
			}
		}
		walk(plain.Panels)
		out = append(out, b)
	}
	return out
}

// schemaErrors decodes a dashboard strictly into Grafana's schema: unknown
// fields, wrong types and unknown panel options fail. Fields the schema
// marks required but Grafana fills with defaults when a dashboard omits
// them (panel options, link flags) are not errors: Grafana loads such
// dashboards, and hand-written ones omit them.
func schemaErrors(raw []byte) error {
	var d dashboard.Dashboard
	err := d.UnmarshalJSONStrict(raw)
	var be cog.BuildErrors
	if !errors.As(err, &be) {
		return err
	}
	var kept cog.BuildErrors
	for _, e := range be {
		if e.Message != "required field is missing from input" {
			kept = append(kept, e)
		}
	}
	if len(kept) > 0 {
		return kept
	}
	return nil
}

type panel struct {
	Title   string `json:"title"`
	Type    string `json:"type"`
	Targets []struct {
		Expr         string `json:"expr"`
		Instant      bool   `json:"instant"`
		LegendFormat string `json:"legendFormat"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

func TestDashboardsMatchGrafanasSchemaAndParse(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	p := parser.NewParser(parser.Options{})
	for _, b := range boards(t) {
		raw, err := os.ReadFile(filepath.Join(dir, b.file))
		if err != nil {
			t.Fatal(err)
		}
		if err := schemaErrors(raw); err != nil {
			t.Errorf("%s: not a Grafana dashboard: %v", b.file, err)
			continue
		}
		vars := map[string]string{}
		for _, v := range b.vars {
			if v.Type == "query" || v.Type == "custom" {
				vars[v.Name] = ".*"
			}
		}
		for _, q := range b.queries {
			e := fill(q.expr, "1m", "5m", vars)
			if strings.Contains(e, "$") {
				t.Errorf("%s panel %q: a variable no dashboard defines is left: %s", b.file, q.panel, e)
				continue
			}
			if _, err := p.ParseExpr(e); err != nil {
				t.Errorf("%s panel %q: %v\n  %s", b.file, q.panel, err, e)
			}
		}
		if len(b.queries) == 0 {
			t.Errorf("%s: no panel queries", b.file)
		}
	}
}

// TestSchemaCatchesMistakes: the schema check is not vacuous — a misspelt
// field, a wrong type and a misspelt panel option each fail it.
func TestSchemaCatchesMistakes(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	raw, err := os.ReadFile(filepath.Join(dir, "pipeline.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := schemaErrors(raw); err != nil {
		t.Fatalf("the shipped dashboard fails: %v", err)
	}
	for _, c := range []struct{ what, old, new string }{
		{"misspelt panel field", `"gridPos"`, `"gridPoss"`},
		{"wrong type", `"schemaVersion": `, `"schemaVersion": "x", "_": `},
		{"misspelt panel option", `"options": {`, `"options": {"legendd": {}, `},
	} {
		if !strings.Contains(string(raw), c.old) {
			t.Fatalf("%s: pipeline.json has no %s", c.what, c.old)
		}
		if err := schemaErrors([]byte(strings.Replace(string(raw), c.old, c.new, 1))); err == nil {
			t.Errorf("%s: the schema check passed", c.what)
		}
	}
}
