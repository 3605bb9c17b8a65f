package classify_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/classifier/classify"
	"github.com/feedloop/feedloop/services/classifier/internal/modeltest"
	"github.com/feedloop/feedloop/services/classifier/model"
	"github.com/feedloop/feedloop/services/classifier/rules"
)

func mustRules(t testing.TB, src string) *rules.Classifier {
	t.Helper()
	rc, err := rules.Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

func topics(cls *feedloopv1.Classification) []string {
	var out []string
	for _, ts := range cls.GetTopics() {
		out = append(out, ts.GetTopic())
	}
	return out
}

func TestLayeredTopicPrecedence(t *testing.T) {
	topic := modeltest.TrainTopic(t, nil)
	l := &classify.Layered{Rules: mustRules(t, modeltest.Rules), Topic: classify.NewModelSlot(topic), ExtraTopicMin: 0.3}
	wantVersion := "rules:m-1 topic:" + topic.Version()
	run := func(text string) *feedloopv1.Classification {
		t.Helper()
		cls, err := l.Classify(context.Background(), &feedloopv1.Feedback{Text: text})
		if err != nil {
			t.Fatal(err)
		}
		if cls.GetModelVersion() != wantVersion {
			t.Errorf("%q: model_version = %q, want %q", text, cls.GetModelVersion(), wantVersion)
		}
		return cls
	}

	// A rule matched: its topic alone, even where the model has an opinion
	// (a parcel is delivery to the model).
	cls := run("My lawyer asks where the parcel is")
	if !slices.Equal(topics(cls), []string{"legal"}) || !slices.Equal(cls.GetRuleIds(), []string{"legal"}) ||
		cls.GetTopicSource() != feedloopv1.TopicSource_TOPIC_SOURCE_RULES || cls.GetTopics()[0].GetConfidence() != 1 || len(cls.GetExplanation()) != 0 {
		t.Errorf("rule match: topics %v, rule_ids %q, source %v, explanation %v", cls.GetTopics(), cls.GetRuleIds(), cls.GetTopicSource(), cls.GetExplanation())
	}

	// No rule: the model's topic with its probability and its evidence.
	cls = run("My package still hasn't been delivered")
	if !slices.Equal(topics(cls), []string{"delivery"}) || cls.GetTopicSource() != feedloopv1.TopicSource_TOPIC_SOURCE_MODEL || len(cls.GetRuleIds()) != 0 {
		t.Errorf("model: topics %v, source %v, rule_ids %q", cls.GetTopics(), cls.GetTopicSource(), cls.GetRuleIds())
	}
	if p := topic.Predict("My package still hasn't been delivered"); cls.GetTopics()[0].GetConfidence() != round4(p.Prob) || p.Prob < modeltest.Threshold {
		t.Errorf("model confidence %v, want the model's probability %v", cls.GetTopics()[0].GetConfidence(), p.Prob)
	}
	if ev := modeltest.Evidence(cls); len(ev) == 0 || !slices.Contains(ev, "package") || len(ev) > classify.ExplainFeatures {
		t.Errorf("explanation = %q, want at most %d features including \"package\"", ev, classify.ExplainFeatures)
	}
	for i, e := range cls.GetExplanation() {
		if e.GetWeight() <= 0 || i > 0 && e.GetWeight() > cls.GetExplanation()[i-1].GetWeight() {
			t.Errorf("explanation weights not positive and strongest first: %v", cls.GetExplanation())
		}
	}

	// Below the model's threshold: unknown, for triage.
	text := "Wie spät ist es?"
	if p := topic.Predict(text); p.Label != model.Unknown {
		t.Fatalf("fixture drifted: the model is sure of %q (%v)", text, p.Top[0])
	}
	cls = run(text)
	if !slices.Equal(topics(cls), []string{"unknown"}) || cls.GetTopics()[0].GetConfidence() != 0 ||
		cls.GetTopicSource() != feedloopv1.TopicSource_TOPIC_SOURCE_UNKNOWN || len(cls.GetExplanation()) != 0 {
		t.Errorf("out of scope: topics %v, source %v, explanation %v", cls.GetTopics(), cls.GetTopicSource(), cls.GetExplanation())
	}

	// A text about two things gets both topics when the second is probable
	// enough, and only the first when extra topics are off.
	text = "I was charged twice and the app crashes"
	if got := topics(run(text)); len(got) != 2 || !slices.Contains(got, "billing") || !slices.Contains(got, "app") {
		t.Errorf("two-topic text: topics %q, want billing and app", got)
	}
	l.ExtraTopicMin = 1
	if got := topics(run(text)); len(got) != 1 {
		t.Errorf("ExtraTopicMin 1: topics %q, want one", got)
	}
}

func TestLayeredWithoutModelsIsTheRules(t *testing.T) {
	rc := mustRules(t, modeltest.Rules)
	l := &classify.Layered{Rules: rc, Topic: &classify.ModelSlot{}, ExtraTopicMin: 0.3}
	for _, text := range []string{"My package still hasn't been delivered", "gdpr request", "terrible"} {
		got, err := l.Classify(context.Background(), &feedloopv1.Feedback{Text: text})
		if err != nil {
			t.Fatal(err)
		}
		if want := rc.ClassifyText(text); !proto.Equal(got, want) {
			t.Errorf("%q: %v, want the rules' %v", text, got, want)
		}
	}
}

func TestLayeredSentimentModel(t *testing.T) {
	sent := modeltest.TrainSentiment(t)
	rc := mustRules(t, modeltest.Rules)
	l := &classify.Layered{Rules: rc, Sentiment: classify.NewModelSlot(sent), ExtraTopicMin: 0.3}
	for text, want := range map[string]feedloopv1.Sentiment{
		"I hate this, awful and useless":  feedloopv1.Sentiment_SENTIMENT_NEGATIVE,
		"wonderful, thank you so much":    feedloopv1.Sentiment_SENTIMENT_POSITIVE,
		"what is the tracking link":       feedloopv1.Sentiment_SENTIMENT_NEUTRAL,
		"terrible? no: great job, thanks": feedloopv1.Sentiment_SENTIMENT_POSITIVE, // the rules' keyword says negative
	} {
		cls, err := l.Classify(context.Background(), &feedloopv1.Feedback{Text: text})
		if err != nil {
			t.Fatal(err)
		}
		p := sent.Predict(text).Top[0]
		if cls.GetSentiment() != want || cls.GetSentimentConfidence() != round4(p.Prob) {
			t.Errorf("%q: sentiment %v (%v), want %v with the model's probability %v", text, cls.GetSentiment(), cls.GetSentimentConfidence(), want, p.Prob)
		}
		if want := "rules:m-1 sentiment:" + sent.Version(); cls.GetModelVersion() != want {
			t.Errorf("model_version = %q, want %q", cls.GetModelVersion(), want)
		}
		if cls.GetTopicSource() != feedloopv1.TopicSource_TOPIC_SOURCE_UNKNOWN {
			t.Errorf("topic_source = %v: without a topic model the rules decide", cls.GetTopicSource())
		}
	}
}

func TestCheckSentimentModel(t *testing.T) {
	if err := classify.CheckSentimentModel(modeltest.TrainSentiment(t)); err != nil {
		t.Errorf("sentiment model rejected: %v", err)
	}
	err := classify.CheckSentimentModel(modeltest.TrainTopic(t, nil))
	if !errors.Is(err, classify.ErrSentimentLabels) || !strings.Contains(err.Error(), `"account", "app", "billing"`) {
		t.Errorf("topic model as sentiment model: %v", err)
	}
	for label, want := range map[string]feedloopv1.Sentiment{
		"negative": feedloopv1.Sentiment_SENTIMENT_NEGATIVE, " Neutral": feedloopv1.Sentiment_SENTIMENT_NEUTRAL,
		"POSITIVE": feedloopv1.Sentiment_SENTIMENT_POSITIVE, "mixed": feedloopv1.Sentiment_SENTIMENT_UNSPECIFIED,
	} {
		if got, ok := classify.SentimentOf(label); got != want || ok != (want != feedloopv1.Sentiment_SENTIMENT_UNSPECIFIED) {
			t.Errorf("SentimentOf(%q) = %v, %v", label, got, ok)
		}
	}
}

func round4(p float64) float64 { return math.Round(p*1e4) / 1e4 }

// BenchmarkLayered is the service's per-item cost of the rules and both
// models (no language detection, no redaction): a text no rule matches.
func BenchmarkLayered(b *testing.B) {
	l := &classify.Layered{
		Rules:         mustRules(b, modeltest.Rules),
		Topic:         classify.NewModelSlot(modeltest.TrainTopic(b, nil)),
		Sentiment:     classify.NewModelSlot(modeltest.TrainSentiment(b)),
		ExtraTopicMin: 0.3,
	}
	fb := &feedloopv1.Feedback{Subject: "Order 1234", Text: "My package still hasn't been delivered and nobody answers my emails"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Classify(ctx, fb); err != nil {
			b.Fatal(err)
		}
	}
}

// The topic model decides with the threshold adapted to the texts it
// classified last: its fixed threshold until the window has enough of
// them, none when they all look in scope (a text below the fixed
// threshold gets its topic), a strict one when they are mostly off topic;
// a model swapped in starts a new window, and AdaptWindow 0 never adapts.
func TestLayeredAdaptsTheThresholdToTheTraffic(t *testing.T) {
	const inScope, offTopic = "My package still hasn't been delivered", "Wie spät ist es?"
	withCurve := func() *model.Model {
		m := modeltest.TrainTopic(t, nil)
		modeltest.SetCurve(t, m, inScope, offTopic)
		return m
	}
	slot := &classify.ModelSlot{AdaptWindow: model.MinAdaptScores, AdaptEvery: 10}
	slot.Swap(withCurve())
	l := &classify.Layered{Rules: mustRules(t, modeltest.Rules), Topic: slot, ExtraTopicMin: 1}
	source := func(text string) feedloopv1.TopicSource {
		t.Helper()
		cls, err := l.Classify(context.Background(), &feedloopv1.Feedback{Text: text})
		if err != nil {
			t.Fatal(err)
		}
		return cls.GetTopicSource()
	}
	const unknown, modelled = feedloopv1.TopicSource_TOPIC_SOURCE_UNKNOWN, feedloopv1.TopicSource_TOPIC_SOURCE_MODEL

	if got := source(offTopic); got != unknown {
		t.Errorf("empty window: off-topic text %v, want the fixed threshold's %v", got, unknown)
	}
	if _, _, ok := slot.Adaptation(); ok {
		t.Error("an estimate before the window holds enough texts")
	}
	for range model.MinAdaptScores {
		source(inScope)
	}
	if share, thr, ok := slot.Adaptation(); !ok || share != 0 || !math.IsInf(thr, -1) {
		t.Errorf("in-scope traffic: share %v threshold %v ok %v, want 0, -Inf, true", share, thr, ok)
	}
	if got := source(offTopic); got != modelled {
		t.Errorf("after in-scope traffic: the text below the fixed threshold is %v, want %v", got, modelled)
	}

	for range model.MinAdaptScores {
		source(offTopic)
	}
	if share, _, ok := slot.Adaptation(); !ok || share < 0.9 {
		t.Errorf("off-topic traffic: share %v ok %v, want ≥ 0.9", share, ok)
	}
	if got, in := source(offTopic), source(inScope); got != unknown || in != modelled {
		t.Errorf("after off-topic traffic: off topic %v, in scope %v; want %v, %v", got, in, unknown, modelled)
	}

	slot.Swap(withCurve())
	if _, _, ok := slot.Adaptation(); ok {
		t.Error("a swapped-in model kept the old model's window")
	}

	fixed := &classify.ModelSlot{}
	fixed.Swap(withCurve())
	l.Topic = fixed
	for range 2 * model.MinAdaptScores {
		source(inScope)
	}
	if _, _, ok := fixed.Adaptation(); ok || source(offTopic) != unknown {
		t.Error("AdaptWindow 0 adapted the threshold")
	}
}
