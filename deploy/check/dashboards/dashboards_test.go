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
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/prometheus/prometheus/promql/parser"
)

const dir = "../../grafana"

// fill replaces Grafana's variables as Grafana would before querying: the
// built-in intervals, and a multi-value variable set to "All" (.*).
func fill(expr string, vars map[string]string) string {
	r := []string{"$__rate_interval", "1m", "$__range", "5m", "$__interval", "15s"}
	for k, v := range vars {
		r = append(r, "$"+k, v)
	}
	return strings.NewReplacer(r...).Replace(expr)
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
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

func TestDashboardsMatchGrafanasSchemaAndParse(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in %s: %v", dir, err)
	}
	p := parser.NewParser(parser.Options{})
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := schemaErrors(raw); err != nil {
			t.Errorf("%s: not a Grafana dashboard: %v", f, err)
			continue
		}
		var plain struct {
			Panels     []panel `json:"panels"`
			Templating struct {
				List []struct {
					Name, Type string
				} `json:"list"`
			} `json:"templating"`
		}
		if err := json.Unmarshal(raw, &plain); err != nil {
			t.Fatal(err)
		}
		vars := map[string]string{}
		for _, v := range plain.Templating.List {
			if v.Type == "query" || v.Type == "custom" {
				vars[v.Name] = ".*"
			}
		}
		n := 0
		var walk func([]panel)
		walk = func(ps []panel) {
			for _, pn := range ps {
				walk(pn.Panels)
				for _, tg := range pn.Targets {
					n++
					e := fill(tg.Expr, vars)
					if strings.Contains(e, "$") {
						t.Errorf("%s panel %q: a variable no dashboard defines is left: %s", f, pn.Title, e)
						continue
					}
					if _, err := p.ParseExpr(e); err != nil {
						t.Errorf("%s panel %q: %v\n  %s", f, pn.Title, err, e)
					}
				}
			}
		}
		walk(plain.Panels)
		if n == 0 {
			t.Errorf("%s: no panel queries", f)
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
