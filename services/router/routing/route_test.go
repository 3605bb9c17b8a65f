package routing

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// fixture is the one tree the table below is read against.
func fixture(t *testing.T) *Tree {
	t.Helper()
	tree, err := Load("testdata/routes.yml")
	if err != nil {
		t.Fatalf("load fixture: %v", err)
	}
	return tree
}

// ls builds a label set from name, value pairs; a repeated name adds a value
// (topic, topic → several topics). With no topic given the item is
// unclassified, as Labels makes it.
func ls(pairs ...string) LabelSet {
	set := LabelSet{}
	for i := 0; i+1 < len(pairs); i += 2 {
		set[pairs[i]] = append(set[pairs[i]], pairs[i+1])
	}
	if _, ok := set[LabelTopic]; !ok {
		set[LabelTopic] = []string{TopicUnknown}
	}
	return set
}

type want struct {
	team, route, priority string
	ack, resolve          time.Duration
	escalate              string // team+after,... or none
}

func (w want) String() string {
	return fmt.Sprintf("%s %s %s ack=%s resolve=%s escalate=%s", w.team, w.route, w.priority, w.ack, w.resolve, w.escalate)
}

func got(ms []Match) []want {
	out := make([]want, len(ms))
	for i, m := range ms {
		out[i] = want{m.Team, m.Route, PriorityName(m.Priority), m.SLA.Acknowledge, m.SLA.Resolve, chainString(m.Escalation)}
	}
	return out
}

const (
	h = time.Hour
	d = 24 * time.Hour
)

// Escalation chains of the fixture, as chainString renders them.
const (
	leads      = "triage-leads+1h0m0s"                            // the root's, inherited
	billingEsc = "support-escalations+0s,customer-success+4h0m0s" // set on billing
	enterprise = "account-managers+0s"                            // billing/enterprise's own
	noChain    = "none"
)

func TestTreeMatch(t *testing.T) {
	tree := fixture(t)
	tests := []struct {
		name   string
		labels LabelSet
		want   []want
	}{
		{
			name:   "nothing matches: the default team, with the root's options",
			labels: ls(),
			want:   []want{{"triage", "root", "normal", 8 * h, 5 * d, leads}},
		},
		{
			name:   "unclassified phone call: child of the root inherits its team",
			labels: ls("channel", "phone"),
			want:   []want{{"triage", "root/unclassified", "high", 8 * h, 5 * d, leads}},
		},
		{
			name:   "topic route: ack inherited from the root, resolve set on the node",
			labels: ls("topic", "billing"),
			want:   []want{{"billing", "root/billing", "normal", 8 * h, 3 * d, billingEsc}},
		},
		{
			name:   "child inherits team and SLA, sets priority",
			labels: ls("topic", "billing", "attr.order_type", "chargeback"),
			want:   []want{{"billing", "root/billing/refunds", "high", 8 * h, 3 * d, billingEsc}},
		},
		{
			name:   "child overrides one SLA field and keeps the other",
			labels: ls("topic", "billing", "attr.plan", "enterprise", "sentiment", "negative"),
			want:   []want{{"billing", "root/billing/enterprise", "high", 1 * h, 3 * d, enterprise}},
		},
		{
			name:   "negative matcher fails: the parent matches itself",
			labels: ls("topic", "billing", "attr.plan", "enterprise", "sentiment", "positive"),
			want:   []want{{"billing", "root/billing", "normal", 8 * h, 3 * d, billingEsc}},
		},
		{
			name:   "negative matcher holds when the label is absent",
			labels: ls("topic", "billing", "attr.plan", "enterprise"),
			want:   []want{{"billing", "root/billing/enterprise", "high", 1 * h, 3 * d, enterprise}},
		},
		{
			name:   "first matching child wins",
			labels: ls("topic", "billing", "attr.order_type", "refund", "attr.plan", "enterprise"),
			want:   []want{{"billing", "root/billing/refunds", "high", 8 * h, 3 * d, billingEsc}},
		},
		{
			name:   "regexp is anchored: refunds does not match refund_request",
			labels: ls("topic", "billing", "attr.order_type", "refund_request"),
			want:   []want{{"billing", "root/billing", "normal", 8 * h, 3 * d, billingEsc}},
		},
		{
			name:   "multi-topic: = matches when any topic is equal",
			labels: ls("topic", "account", "topic", "billing"),
			want:   []want{{"billing", "root/billing", "normal", 8 * h, 3 * d, billingEsc}},
		},
		{
			name:   "multi-topic: the first sibling that matches wins, without continue",
			labels: ls("topic", "billing", "topic", "delivery"),
			want:   []want{{"logistics", "root/logistics", "normal", 8 * h, 5 * d, leads}},
		},
		{
			name:   "multi-topic: != holds only when no topic is equal",
			labels: ls("topic", "delivery", "ces_band", "high_effort"),
			want:   []want{{"logistics", "root/logistics/delivery-only", "high", 8 * h, 5 * d, leads}},
		},
		{
			name:   "multi-topic: != fails when one topic is equal",
			labels: ls("topic", "delivery", "topic", "billing", "ces_band", "high_effort"),
			want:   []want{{"logistics", "root/logistics", "normal", 8 * h, 5 * d, leads}},
		},
		{
			name:   "multi-topic: =~ on the child matches another topic than the parent",
			labels: ls("topic", "account", "topic", "fraud"),
			want:   []want{{"accounts", "root/accounts/security", "urgent", 30 * time.Minute, 1 * d, leads}},
		},
		{
			name:   "fan-out: continue route plus the topic team",
			labels: ls("topic", "delivery", "nps_band", "detractor", "channel", "survey"),
			want: []want{
				{"customer-success", "root/customer-success", "high", 24 * h, 5 * d, leads},
				{"logistics", "root/logistics", "normal", 8 * h, 5 * d, leads},
			},
		},
		{
			name:   "fan-out to three teams, in tree order",
			labels: ls("urgency", "critical", "topic", "billing", "attr.order_type", "refund", "nps_band", "detractor", "channel", "survey"),
			want: []want{
				{"support-escalations", "root/escalations", "urgent", 15 * time.Minute, 5 * d, leads},
				{"customer-success", "root/customer-success", "high", 24 * h, 5 * d, leads},
				{"billing", "root/billing/refunds", "high", 8 * h, 3 * d, billingEsc},
			},
		},
		{
			name:   "continue routes count as matches: the default team is not added",
			labels: ls("urgency", "critical"),
			want:   []want{{"support-escalations", "root/escalations", "urgent", 15 * time.Minute, 5 * d, leads}},
		},
		{
			name:   "one team reached twice gets the item once, from its first route",
			labels: ls("nps_band", "detractor", "channel", "survey", "csat_band", "unsatisfied"),
			want:   []want{{"customer-success", "root/customer-success", "high", 24 * h, 5 * d, leads}},
		},
		{
			name:   "second continue route of a team alone",
			labels: ls("csat_band", "unsatisfied", "topic", "product"),
			want: []want{
				{"customer-success", "root/unsatisfied", "normal", 8 * h, 5 * d, leads},
				{"product", "root/product", "low", 8 * h, 5 * d, leads},
			},
		},
		{
			name:   "all matchers of a route must hold: detractor by email is not a survey",
			labels: ls("nps_band", "detractor", "channel", "email"),
			want:   []want{{"triage", "root", "normal", 8 * h, 5 * d, leads}},
		},
		{
			name:   "child with its own team inherits the parent's priority",
			labels: ls("topic", "app", "channel", "app_review", "sentiment", "negative"),
			want:   []want{{"mobile", "root/product/mobile", "low", 8 * h, 5 * d, leads}},
		},
		{
			name:   "route without name or team is named by its index",
			labels: ls("topic", "product", "product", "api"),
			want:   []want{{"product", "root/product/1", "normal", 8 * h, 5 * d, leads}},
		},
		{
			name:   "sentiment!=positive keeps praise away from product; explicit 0s clears the inherited ack",
			labels: ls("topic", "app", "sentiment", "positive", "nps_band", "promoter"),
			want:   []want{{"marketing", "root/praise", "low", 0, 5 * d, noChain}},
		},
		{
			name:   "!~ fails for a passive",
			labels: ls("sentiment", "positive", "nps_band", "passive"),
			want:   []want{{"triage", "root", "normal", 8 * h, 5 * d, leads}},
		},
		{
			name:   "language regexp with a region",
			labels: ls("language", "de-CH", "source", "zendesk"),
			want:   []want{{"dach-support", "root/dach", "normal", 8 * h, 5 * d, leads}},
		},
		{
			name:   "language regexp is anchored",
			labels: ls("language", "deu"),
			want:   []want{{"triage", "root", "normal", 8 * h, 5 * d, leads}},
		},
		{
			name:   "source!= excludes app-store reviews from the language route",
			labels: ls("language", "de", "source", "appstore"),
			want:   []want{{"triage", "root", "normal", 8 * h, 5 * d, leads}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := got(tree.MatchLabels(tc.labels))
			if !slices.Equal(g, tc.want) {
				t.Errorf("labels %v\n got: %v\nwant: %v", tc.labels, g, tc.want)
			}
		})
	}
}

func TestMatchExplainsWithPathMatchers(t *testing.T) {
	tree := fixture(t)
	ms := tree.MatchLabels(ls("topic", "billing", "attr.order_type", "refund"))
	if len(ms) != 1 {
		t.Fatalf("got %d matches, want 1", len(ms))
	}
	if got, want := ms[0].Matchers.String(), `{topic="billing", attr.order_type=~"refund|chargeback"}`; got != want {
		t.Errorf("matchers = %s, want %s", got, want)
	}
	root := tree.MatchLabels(ls())
	if len(root) != 1 || len(root[0].Matchers) != 0 {
		t.Errorf("default route explanation = %v, want no matchers", root)
	}
}

func TestTreeMatchFromFeedback(t *testing.T) {
	tree := fixture(t)
	fb := &feedloopv1.Feedback{
		Channel:    feedloopv1.Channel_CHANNEL_SURVEY,
		Source:     "surveytool",
		Attributes: map[string]string{"order_type": "refund"},
	}
	c := &feedloopv1.Classification{
		Topics:    []*feedloopv1.TopicScore{{Topic: "billing", Confidence: 0.9}},
		Sentiment: feedloopv1.Sentiment_SENTIMENT_NEGATIVE,
		NpsBand:   feedloopv1.NpsBand_NPS_BAND_DETRACTOR,
	}
	g := got(tree.Match(fb, c))
	w := []want{
		{"customer-success", "root/customer-success", "high", 24 * h, 5 * d, leads},
		{"billing", "root/billing/refunds", "high", 8 * h, 3 * d, billingEsc},
	}
	if !slices.Equal(g, w) {
		t.Errorf("got %v, want %v", g, w)
	}
}

func TestLabels(t *testing.T) {
	fb := &feedloopv1.Feedback{
		Channel:    feedloopv1.Channel_CHANNEL_APP_REVIEW,
		Source:     "appstore",
		Product:    "ios-app",
		Area:       "checkout",
		Attributes: map[string]string{"plan": "pro", "empty": ""},
	}
	c := &feedloopv1.Classification{
		Topics: []*feedloopv1.TopicScore{
			{Topic: "app", Confidence: 0.8}, {Topic: "billing", Confidence: 0.4}, {Topic: "app"}, {Topic: ""},
		},
		Sentiment: feedloopv1.Sentiment_SENTIMENT_NEGATIVE,
		Urgency:   feedloopv1.Urgency_URGENCY_CRITICAL,
		Language:  "en",
		NpsBand:   feedloopv1.NpsBand_NPS_BAND_DETRACTOR,
		CsatBand:  feedloopv1.CsatBand_CSAT_BAND_UNSATISFIED,
		CesBand:   feedloopv1.CesBand_CES_BAND_HIGH_EFFORT,
		RuleIds:   []string{"app-mobile", "billing-charges"},
	}
	want := `{area="checkout", attr.plan="pro", ces_band="high_effort", channel="app_review", csat_band="unsatisfied", language="en", nps_band="detractor", product="ios-app", rule=["app-mobile","billing-charges"], sentiment="negative", source="appstore", topic=["app","billing"], urgency="critical"}`
	if got := Labels(fb, c).String(); got != want {
		t.Errorf("Labels =\n %s\nwant\n %s", got, want)
	}
	// Unclassified and unspecified: topic unknown, nothing else.
	if got, want := Labels(nil, nil).String(), `{topic="unknown"}`; got != want {
		t.Errorf("Labels(nil, nil) = %s, want %s", got, want)
	}
}

func TestMatcher(t *testing.T) {
	tests := []struct {
		matcher string
		values  []string
		want    bool
	}{
		{`topic="billing"`, []string{"billing"}, true},
		{`topic="billing"`, []string{"delivery", "billing"}, true},
		{`topic="billing"`, []string{"delivery"}, false},
		{`topic!="billing"`, []string{"delivery"}, true},
		{`topic!="billing"`, []string{"delivery", "billing"}, false},
		{`topic=~"bill.*"`, []string{"delivery", "billing"}, true},
		{`topic=~"bill"`, []string{"billing"}, false},
		{`topic!~"bill.*|deliv.*"`, []string{"account"}, true},
		{`topic!~"bill.*|deliv.*"`, []string{"account", "delivery"}, false},
		{`attr.plan=""`, nil, true},
		{`attr.plan!=""`, nil, false},
		{`attr.plan!="enterprise"`, nil, true},
		{`attr.plan=~".*"`, nil, true},
		{`attr.plan=~".+"`, nil, false},
		{`channel=~"email|chat"`, []string{"chat"}, true},
		{`channel=~"email|chat"`, []string{"emails"}, false},
		{`sentiment = negative`, []string{"negative"}, true},
		{`area="a \"quoted\" area"`, []string{`a "quoted" area`}, true},
		{`attr.order-id=~"A-[0-9]+"`, []string{"A-12"}, true},
		{`rule="billing-refunds"`, []string{"billing-charges", "billing-refunds"}, true},
		{`rule!~"billing-.*"`, []string{"app-mobile", "billing-refunds"}, false},
	}
	for _, tc := range tests {
		m, err := ParseMatcher(tc.matcher)
		if err != nil {
			t.Errorf("ParseMatcher(%s): %v", tc.matcher, err)
			continue
		}
		if got := m.Matches(tc.values); got != tc.want {
			t.Errorf("%s on %q = %v, want %v", tc.matcher, tc.values, got, tc.want)
		}
	}
}

func TestMatcherString(t *testing.T) {
	for in, want := range map[string]string{
		`topic=billing`:            `topic="billing"`,
		` channel =~ "email|chat"`: `channel=~"email|chat"`,
		`nps_band!~"promoter"`:     `nps_band!~"promoter"`,
		`sentiment!="positive"`:    `sentiment!="positive"`,
	} {
		if got := MustParseMatcher(in).String(); got != want {
			t.Errorf("String(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestParseMatcherErrors(t *testing.T) {
	for in, want := range map[string]string{
		`="billing"`:             `want name="value"`,
		`topic`:                  `want one of =, !=, =~, !~ after "topic"`,
		`topic=="billing"`:       `quote a value`,
		`topic="billing`:         `not a valid double-quoted string`,
		`topic=bill ing`:         `quote a value`,
		`topics="billing"`:       `unknown label "topics"`,
		`attr.="x"`:              `attribute key is empty`,
		`sentiment="angry"`:      `sentiment has no value "angry"`,
		`channel!="CHANNEL_WEB"`: `channel has no value "CHANNEL_WEB"`,
		`topic=~"(billing"`:      `invalid regexp "(billing"`,
	} {
		_, err := ParseMatcher(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseMatcher(%s) = %v, want error containing %q", in, err, want)
		}
	}
	// Enum values are only checked for equality: a regexp may be broader.
	if _, err := ParseMatcher(`sentiment=~"neg.*"`); err != nil {
		t.Errorf("regexp on an enum label: %v", err)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30m": 30 * time.Minute, "8h": 8 * h, "1h30m": 90 * time.Minute, "3d": 3 * d,
		"1w": 7 * d, "1d12h": 36 * h, "1w2d": 9 * d, "0s": 0, "-1h": -h, "-2d": -2 * d,
	} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "soon", "1.5d", "d", "3 days", "1h-5m", "1d-1h"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) succeeded, want error", in)
		}
	}
}

func TestTeams(t *testing.T) {
	want := []string{"accounts", "billing", "customer-success", "dach-support", "logistics", "marketing", "mobile", "product", "support-escalations", "triage"}
	tree := fixture(t)
	if got := tree.Teams(); !slices.Equal(got, want) {
		t.Errorf("Teams = %v, want %v", got, want)
	}
	if tree.DefaultTeam() != "triage" {
		t.Errorf("DefaultTeam = %s", tree.DefaultTeam())
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // substrings of the error, each on the path of the bad node
	}{
		{"empty file", ``, []string{"route: missing"}},
		{"no route", "routes: []\n", []string{`(top level): unknown field "routes" (want route)`, "route: missing"}},
		{"not yaml", "route: [\n", []string{"yaml:"}},
		{"top level not a mapping", "- a\n", []string{"(top level): must be a mapping"}},
		{"root without team", "route:\n  priority: high\n", []string{"route: the root route must have a team"}},
		{"root with matchers", "route:\n  team: triage\n  matchers: ['topic=\"x\"']\n", []string{"route: the root route must not have matchers"}},
		{"root with continue", "route:\n  team: triage\n  continue: true\n", []string{"route: the root route cannot have continue"}},
		{"bad team name", `
route:
  team: triage
  routes:
    - team: Billing!
`, []string{`route.routes[0]: team "Billing!" must match [a-z0-9_-]{1,64} (line 5)`}},
		{"bad regexp deep in the tree", `
route:
  team: triage
  routes:
    - team: a
    - team: b
      routes:
        - matchers: ['topic="x"', 'channel="email"', 'area=~"(unclosed"']
`, []string{`route.routes[1].routes[0].matchers[2]: invalid regexp "(unclosed"`}},
		{"unknown label", `
route:
  team: triage
  routes:
    - team: a
      matchers: ['topics="billing"']
`, []string{`route.routes[0].matchers[0]: unknown label "topics"`}},
		{"unknown enum value", `
route:
  team: triage
  routes:
    - team: a
      matchers: ['urgency="asap"']
`, []string{`route.routes[0].matchers[0]: urgency has no value "asap"`}},
		{"malformed matcher", `
route:
  team: triage
  routes:
    - team: a
      matchers: ['topic billing']
`, []string{`route.routes[0].matchers[0]: matcher "topic billing"`}},
		{"matchers not a list", `
route:
  team: triage
  routes:
    - team: a
      matchers: 'topic="billing"'
`, []string{`route.routes[0].matchers: must be a list`}},
		{"unknown field", `
route:
  team: triage
  routes:
    - team: a
      matcher: ['topic="billing"']
`, []string{`route.routes[0]: unknown field "matcher"`}},
		{"unknown sla field", `
route:
  team: triage
  sla: {ack: 1h}
`, []string{`route.sla: unknown field "ack"`}},
		{"duplicate field", `
route:
  team: triage
  team: billing
`, []string{`route: field "team" given twice`}},
		{"bad priority", `
route:
  team: triage
  routes:
    - team: a
      priority: asap
`, []string{`route.routes[0]: priority "asap" must be one of low, normal, high, urgent`}},
		{"negative SLA", `
route:
  team: triage
  routes:
    - team: a
      sla: {acknowledge: -1h}
`, []string{`route.routes[0].sla.acknowledge: must not be negative, got -1h`}},
		{"bad duration", `
route:
  team: triage
  sla: {resolve: soon}
`, []string{`route.sla.resolve: invalid duration "soon"`}},
		{"resolve shorter than an inherited acknowledge", `
route:
  team: triage
  sla: {acknowledge: 8h}
  routes:
    - team: a
      sla: {resolve: 1h}
`, []string{`route.routes[0]: sla: resolve (1h0m0s) must not be shorter than acknowledge (8h0m0s)`}},
		{"escalate not a list", `
route:
  team: triage
  escalate: {team: leads}
`, []string{`route.escalate: must be a list of steps`}},
		{"escalation step not a mapping", `
route:
  team: triage
  routes:
    - team: a
      escalate: [leads]
`, []string{`route.routes[0].escalate[0]: must be a mapping`}},
		{"escalation step without team", `
route:
  team: triage
  escalate:
    - {team: leads}
    - {after: 1h}
`, []string{`route.escalate[1]: team is required`}},
		{"bad escalation team", `
route:
  team: triage
  routes:
    - team: a
      escalate: [{team: Leads!, after: 1h}]
`, []string{`route.routes[0].escalate[0]: team "Leads!" must match [a-z0-9_-]{1,64}`}},
		{"negative escalation interval", `
route:
  team: triage
  escalate: [{team: leads, after: -5m}]
`, []string{`route.escalate[0].after: must not be negative, got -5m`}},
		{"bad escalation interval", `
route:
  team: triage
  escalate: [{team: leads, after: later}]
`, []string{`route.escalate[0].after: invalid duration "later"`}},
		{"unknown escalation field", `
route:
  team: triage
  escalate: [{team: leads, wait: 1h}]
`, []string{`route.escalate[0]: unknown field "wait" (want team or after)`}},
		{"continue not a bool", `
route:
  team: triage
  routes:
    - team: a
      continue: maybe
`, []string{`route.routes[0]: continue must be true or false, got "maybe"`}},
		{"routes not a list", `
route:
  team: triage
  routes:
    team: a
`, []string{`route.routes: must be a list of routes`}},
		{"route not a mapping", `
route:
  team: triage
  routes:
    - billing
`, []string{`route.routes[0]: must be a mapping`}},
		{"duplicate sibling names", `
route:
  team: triage
  routes:
    - name: x
      team: a
    - name: x
      team: b
`, []string{`route.routes[1]: name "x" is already used by a sibling route`}},
		{"bad name", `
route:
  team: triage
  routes:
    - name: Big Refunds
`, []string{`route.routes[0]: name "Big Refunds" must match`}},
		{"every problem is reported", `
route:
  routes:
    - team: A
    - priority: none
`, []string{"route: the root route must have a team", `route.routes[0]: team "A"`, `route.routes[1]: priority "none"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tree, err := Parse([]byte(tc.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded with root %+v, want an error", tree.Root)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseNullsAreUnset(t *testing.T) {
	tree, err := Parse([]byte("route:\n  team: triage\n  priority:\n  routes:\n    - team: a\n      matchers:\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := tree.Root.Priority; got != feedloopv1.Priority_PRIORITY_NORMAL {
		t.Errorf("root priority = %v, want the default normal", got)
	}
	// A child with no matchers catches everything below its parent.
	if got := got(tree.MatchLabels(ls("topic", "x"))); len(got) != 1 || got[0].route != "root/a" {
		t.Errorf("got %v, want root/a", got)
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yml")
	if err == nil || !strings.Contains(err.Error(), "does-not-exist.yml") {
		t.Errorf("Load missing file = %v", err)
	}
	dir := t.TempDir()
	path := dir + "/bad.yml"
	writeFile(t, path, "route: {}\n")
	_, err = Load(path)
	if err == nil || !strings.Contains(err.Error(), path+": invalid routing tree") {
		t.Errorf("Load bad file = %v", err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestParseFollowsAliases(t *testing.T) {
	tree, err := Parse([]byte(`
route:
  team: triage
  routes:
    - team: a
      matchers: &billing ['topic="billing"']
      sla: &fast {acknowledge: 1h, resolve: 2h}
      continue: true
    - team: b
      matchers: *billing
      sla: *fast
`))
	if err != nil {
		t.Fatal(err)
	}
	g := got(tree.MatchLabels(ls("topic", "billing")))
	w := []want{{"a", "root/a", "normal", h, 2 * h, noChain}, {"b", "root/b", "normal", h, 2 * h, noChain}}
	if !slices.Equal(g, w) {
		t.Errorf("got %v, want %v", g, w)
	}
}

func TestEscalationChain(t *testing.T) {
	tree := fixture(t)
	ms := tree.MatchLabels(ls("topic", "billing"))
	want := []EscalationStep{{"support-escalations", 0}, {"customer-success", 4 * h}}
	if len(ms) != 1 || !slices.Equal(ms[0].Escalation, want) {
		t.Fatalf("billing chain = %v, want %v", ms, want)
	}
	// A route's own chain replaces the inherited one; it does not append.
	ms = tree.MatchLabels(ls("topic", "billing", "attr.plan", "enterprise"))
	if want := []EscalationStep{{"account-managers", 0}}; !slices.Equal(ms[0].Escalation, want) {
		t.Errorf("enterprise chain = %v, want %v", ms[0].Escalation, want)
	}
	// The team routed to is unchanged: escalation targets are not routes.
	if slices.Contains(tree.Teams(), "triage-leads") || slices.Contains(tree.Teams(), "account-managers") {
		t.Errorf("Teams = %v lists escalation targets", tree.Teams())
	}
}

func TestMatchString(t *testing.T) {
	ms := fixture(t).MatchLabels(ls("topic", "billing", "attr.order_type", "refund"))
	want := `billing via root/billing/refunds priority=high acknowledge=8h0m0s resolve=72h0m0s escalate=support-escalations+0s,customer-success+4h0m0s matched {topic="billing", attr.order_type=~"refund|chargeback"}`
	if got := ms[0].String(); got != want {
		t.Errorf("String =\n %s\nwant\n %s", got, want)
	}
	ms = fixture(t).MatchLabels(ls("sentiment", "positive"))
	if got := ms[0].String(); !strings.Contains(got, "acknowledge=none") || !strings.Contains(got, "escalate=none") {
		t.Errorf("zero SLA and empty chain render as %s, want acknowledge=none and escalate=none", got)
	}
}
