package rules_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/classifier/rules"
)

// exampleFile is the rules file shipped for `feedloop dev`; testing against
// it keeps the example honest.
const exampleFile = "../../../deploy/examples/rules.yaml"

const (
	neg = feedloopv1.Sentiment_SENTIMENT_NEGATIVE
	neu = feedloopv1.Sentiment_SENTIMENT_NEUTRAL
	pos = feedloopv1.Sentiment_SENTIMENT_POSITIVE

	low      = feedloopv1.Urgency_URGENCY_LOW
	normal   = feedloopv1.Urgency_URGENCY_NORMAL
	high     = feedloopv1.Urgency_URGENCY_HIGH
	critical = feedloopv1.Urgency_URGENCY_CRITICAL
)

type want struct {
	topics    []string
	ruleIDs   []string
	sentiment feedloopv1.Sentiment
	urgency   feedloopv1.Urgency
}

func check(t *testing.T, c *rules.Classifier, text string, w want) {
	t.Helper()
	got := c.ClassifyText(text)
	var topics []string
	for _, ts := range got.GetTopics() {
		topics = append(topics, ts.GetTopic())
		wantConf := 1.0
		if ts.GetTopic() == rules.TopicUnknown {
			wantConf = 0
		}
		if ts.GetConfidence() != wantConf {
			t.Errorf("%q: topic %s confidence = %v, want %v", text, ts.GetTopic(), ts.GetConfidence(), wantConf)
		}
	}
	if !slices.Equal(topics, w.topics) {
		t.Errorf("%q: topics = %q, want %q", text, topics, w.topics)
	}
	wantSource := feedloopv1.TopicSource_TOPIC_SOURCE_RULES
	if len(w.ruleIDs) == 0 {
		wantSource = feedloopv1.TopicSource_TOPIC_SOURCE_UNKNOWN
	}
	if got.GetTopicSource() != wantSource {
		t.Errorf("%q: topic_source = %v, want %v", text, got.GetTopicSource(), wantSource)
	}
	if !slices.Equal(got.GetRuleIds(), w.ruleIDs) {
		t.Errorf("%q: rule_ids = %q, want %q", text, got.GetRuleIds(), w.ruleIDs)
	}
	if got.GetSentiment() != w.sentiment {
		t.Errorf("%q: sentiment = %v, want %v", text, got.GetSentiment(), w.sentiment)
	}
	if got.GetUrgency() != w.urgency {
		t.Errorf("%q: urgency = %v, want %v", text, got.GetUrgency(), w.urgency)
	}
}

func TestExampleRules(t *testing.T) {
	c, err := rules.Load(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	if c.ModelVersion() != "rules:"+c.Version() || c.Version() == "" {
		t.Errorf("ModelVersion() = %q for version %q", c.ModelVersion(), c.Version())
	}
	tests := []struct {
		text string
		want want
	}{
		{"I was charged twice and the app crashes",
			want{[]string{"billing", "product"}, []string{"billing-charges", "product-bugs"}, neg, high}},
		{"They charged me 2x this month.",
			want{[]string{"billing"}, []string{"billing-charges"}, neu, high}},
		{"My parcel never arrived and I want a refund",
			want{[]string{"billing", "delivery"}, []string{"billing-refunds", "delivery-late-or-missing"}, neg, high}},
		{"I can't log in to my account since the last app update on iOS",
			want{[]string{"account", "app"}, []string{"account-access", "app-mobile"}, neu, high}},
		{"Love the new dark mode, great job!",
			want{[]string{"app"}, []string{"app-mobile"}, pos, normal}},
		{"I am not happy with the delivery",
			want{[]string{"delivery"}, []string{"delivery-late-or-missing"}, neg, normal}},
		{"The courier was not late. Happy!",
			want{[]string{"delivery"}, []string{"delivery-late-or-missing"}, pos, normal}},
		{"Not bad at all",
			want{[]string{"unknown"}, nil, pos, normal}},
		{"Ich wurde doppelt abgebucht und die App stürzt ab",
			want{[]string{"billing", "product"}, []string{"billing-charges", "product-bugs"}, neu, normal}},
		{"PRÉLÈVEMENT en double, je ne suis pas content",
			want{[]string{"billing"}, []string{"billing-charges"}, neu, normal}},
		{"This is fraud, I will contact my lawyer",
			want{[]string{"unknown"}, nil, neu, critical}},
		{"Small typo on the invoice page, not urgent",
			want{[]string{"billing"}, []string{"billing-charges"}, neu, low}},
		{"Feature request: please add dark mode",
			want{[]string{"product", "app"}, []string{"product-feature-requests", "app-mobile"}, neu, low}},
		{"Got error code E1234 on checkout",
			want{[]string{"product"}, []string{"product-bugs"}, neu, normal}},
		{"The package arrived damaged and support was rude",
			want{[]string{"delivery"}, []string{"delivery-late-or-missing", "delivery-damaged"}, neg, normal}},
		{"We are switching to a competitor, the service is down and nothing works",
			want{[]string{"unknown"}, nil, neu, critical}},
		{"Hello there",
			want{[]string{"unknown"}, nil, neu, normal}},
	}
	for _, tt := range tests {
		check(t, c, tt.text, tt.want)
	}
}

const fixture = `
version: "t-1"
topics:
  - id: money
    topic: billing
    keywords: [bill, charged twice]
  - id: crashes
    topic: product
    keywords: ["crash*"]
  - id: money-patterns
    topic: billing
    patterns: ['\binv-\d+\b', 'cafe au lait']
urgency:
  high: {keywords: [urgent]}
  low: {keywords: [idea]}
sentiment:
  negative: [bad, sad]
  positive: [good, happy]
  negators: [not, "*n't"]
`

func mustParse(t *testing.T, y string) *rules.Classifier {
	t.Helper()
	c, err := rules.Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMatchingSemantics(t *testing.T) {
	c := mustParse(t, fixture)
	tests := []struct {
		name, text string
		want       want
	}{
		{"whole words only", "a billion billed bills", want{[]string{"unknown"}, nil, neu, normal}},
		{"case and accents", "BILL", want{[]string{"billing"}, []string{"money"}, neu, normal}},
		{"trailing wildcard", "it crashed", want{[]string{"product"}, []string{"crashes"}, neu, normal}},
		{"phrase within one clause", "I was charged twice", want{[]string{"billing"}, []string{"money"}, neu, normal}},
		{"phrase never spans a clause break", "I was charged. Twice!", want{[]string{"unknown"}, nil, neu, normal}},
		{"topic once, every rule id", "bill INV-42", want{[]string{"billing"}, []string{"money", "money-patterns"}, neu, normal}},
		{"topics in rule order", "crash on inv-7 then the bill", want{[]string{"billing", "product"}, []string{"money", "crashes", "money-patterns"}, neu, normal}},
		{"patterns match folded text", "un Café au Lait", want{[]string{"billing"}, []string{"money-patterns"}, neu, normal}},
		{"negation flips sentiment", "not happy", want{[]string{"unknown"}, nil, neg, normal}},
		{"suffix wildcard negator", "it isn't bad", want{[]string{"unknown"}, nil, pos, normal}},
		{"negation reaches three words back", "not really very happy", want{[]string{"unknown"}, nil, neg, normal}},
		{"negation stops after three words", "not at all really happy", want{[]string{"unknown"}, nil, pos, normal}},
		{"negation stops at a clause break", "not late. happy", want{[]string{"unknown"}, nil, pos, normal}},
		{"negated urgency does not count", "not urgent, just an idea", want{[]string{"unknown"}, nil, neu, low}},
		{"highest urgency wins", "an idea, but urgent", want{[]string{"unknown"}, nil, neu, high}},
		{"tie is neutral", "good but bad", want{[]string{"unknown"}, nil, neu, normal}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { check(t, c, tt.text, tt.want) })
	}
}

func TestSentimentConfidence(t *testing.T) {
	c := mustParse(t, fixture)
	for text, wantConf := range map[string]float64{
		"nothing here":               0,    // no evidence
		"good but bad":               0.5,  // tie
		"good":                       0.65, // one hit
		"good and happy":             0.8,  // two agreeing hits
		"good, happy, good":          0.95, // capped: keywords are never certain
		"good, happy, good, not bad": 0.95,
		"good, happy and sad":        0.32, // two against one: weak
	} {
		if got := c.ClassifyText(text).GetSentimentConfidence(); got != wantConf {
			t.Errorf("%q: sentiment confidence = %v, want %v", text, got, wantConf)
		}
	}
}

func TestClassifyUsesSubjectAndRecordsVersion(t *testing.T) {
	c := mustParse(t, fixture)
	got, err := c.Classify(context.Background(), &feedloopv1.Feedback{Subject: "Your bill", Text: "is wrong"})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetTopics()[0].GetTopic() != "billing" {
		t.Errorf("subject not classified: %v", got.GetTopics())
	}
	if got.GetModelVersion() != "rules:t-1" {
		t.Errorf("model_version = %q, want rules:t-1", got.GetModelVersion())
	}
	// The subject ends a clause: "charged" + "twice" do not form the phrase.
	got, _ = c.Classify(context.Background(), &feedloopv1.Feedback{Subject: "charged", Text: "twice"})
	if got.GetTopics()[0].GetTopic() != rules.TopicUnknown {
		t.Errorf("phrase spanned subject and text: %v", got.GetTopics())
	}
	if _, err := c.Classify(context.Background(), nil); err == nil {
		t.Error("Classify(nil) succeeded")
	}
}

func TestValidationErrorsNameTheEntry(t *testing.T) {
	const okTopic = "topics: [{id: a, topic: t, keywords: [x]}]\n"
	tests := []struct {
		name, yaml string
		wants      []string
	}{
		{"empty file", "", []string{"the file is empty"}},
		{"two documents", "version: v\n" + okTopic + "---\nversion: w\n", []string{"exactly one YAML document"}},
		{"unknown field", "version: v\ncolour: red\n" + okTopic, []string{"line 2: field colour not found"}},
		{"unknown field in a rule", "version: v\ntopics: [{id: a, topic: t, keyword: [x]}]\n", []string{"field keyword not found"}},
		{"unknown urgency level", "version: v\n" + okTopic + "urgency: {urgent: {keywords: [x]}}\n", []string{"field urgent not found"}},
		{"missing version", okTopic, []string{"version: is required"}},
		{"bad version", "version: 'v 1'\n" + okTopic, []string{`version: must be`}},
		{"no topics", "version: v\n", []string{"topics: at least one topic rule is required"}},
		{"bad regexp", `version: v
topics:
  - {id: a, topic: t, keywords: [x]}
  - {id: b, topic: t, keywords: [x]}
  - {id: c, topic: t, patterns: ['(unclosed', 'fine']}
`, []string{"topics[2].patterns[0]: invalid regexp: error parsing regexp: missing closing ): `(unclosed`"}},
		{"pattern matching everything", "version: v\n" + okTopic + "urgency: {high: {patterns: ['x*']}}\n",
			[]string{`urgency.high.patterns[0]: "x*" matches empty text`}},
		{"missing id and topic", "version: v\ntopics: [{keywords: [x]}]\n", []string{"topics[0].id: is required", "topics[0].topic: is required"}},
		{"duplicate id", "version: v\ntopics: [{id: a, topic: t, keywords: [x]}, {id: a, topic: u, keywords: [y]}]\n",
			[]string{`topics[1].id: duplicate id "a", first used by topics[0]`}},
		{"bad id", "version: v\ntopics: [{id: A b, topic: t, keywords: [x]}]\n", []string{`topics[0].id: must be`}},
		{"reserved topic", "version: v\ntopics: [{id: a, topic: unknown, keywords: [x]}]\n", []string{`topics[0].topic: "unknown" is reserved`}},
		{"bad topic", "version: v\ntopics: [{id: a, topic: Billing Team, keywords: [x]}]\n", []string{`topics[0].topic: must be`}},
		{"rule matching nothing", "version: v\ntopics: [{id: a, topic: t}]\n", []string{"topics[0]: needs at least one keyword or pattern"}},
		{"empty keyword", "version: v\ntopics: [{id: a, topic: t, keywords: [x, '  ']}]\n", []string{"topics[0].keywords[1]: keyword is empty"}},
		{"keyword without words", "version: v\ntopics: [{id: a, topic: t, keywords: ['?!']}]\n", []string{`topics[0].keywords[0]: keyword "?!" has no letters or digits`}},
		{"wildcard inside", "version: v\ntopics: [{id: a, topic: t, keywords: ['cr*sh']}]\n", []string{`topics[0].keywords[0]: keyword "cr*sh": '*' is only allowed at the start or end`}},
		{"detached wildcard", "version: v\ntopics: [{id: a, topic: t, keywords: ['foo *']}]\n", []string{`'*' must be attached to a word`}},
		{"bad urgency keyword", "version: v\n" + okTopic + "urgency: {critical: {keywords: ['']}}\n", []string{"urgency.critical.keywords[0]: keyword is empty"}},
		{"bad sentiment keyword", "version: v\n" + okTopic + "sentiment: {positive: [good, '']}\n", []string{"sentiment.positive[1]: keyword is empty"}},
		{"multi-word negator", "version: v\n" + okTopic + "sentiment: {negators: ['by no means']}\n", []string{`sentiment.negators[0]: must be a single word`}},
		{"every problem at once", "topics: [{id: a, topic: t, patterns: ['[']}]\n", []string{"version: is required", "topics[0].patterns[0]: invalid regexp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := rules.Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", c)
			}
			if !errors.Is(err, rules.ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(path, []byte("version: v\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := rules.Load(path)
	if err == nil || !strings.Contains(err.Error(), path) || !errors.Is(err, rules.ErrInvalid) {
		t.Errorf("Load(invalid) = %v, want an ErrInvalid naming %s", err, path)
	}
	_, err = rules.Load(filepath.Join(t.TempDir(), "missing.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want os.ErrNotExist", err)
	}
}
