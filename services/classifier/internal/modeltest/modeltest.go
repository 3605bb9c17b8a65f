// Package modeltest trains the small models the classifier's tests use:
// package classify's (layering) and the service's (publishing, reload).
package modeltest

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/classifier/model"
)

// Rules match what the topic fixture does not talk about, so a test can
// tell rules from model.
const Rules = `
version: m-1
topics:
  - id: legal
    topic: legal
    keywords: [lawyer, gdpr]
sentiment:
  negative: [terrible]
`

// Threshold is the out-of-scope threshold stored in the test models:
// fixed rather than fitted, since 120 examples fit none worth testing.
const Threshold = 0.5

// TrainTopic trains a small topic model on the fixture of package model,
// relabelling each label with relabel (nil keeps them).
func TrainTopic(t testing.TB, relabel func(string) string) *model.Model {
	t.Helper()
	ds, err := model.ReadCSV(fixture(), "text", "label")
	if err != nil {
		t.Fatal(err)
	}
	if relabel != nil {
		for i, l := range ds.Labels {
			ds.Labels[i] = relabel(l)
		}
	}
	return trainFast(t, ds, Threshold)
}

// sentimentData is a tiny sentiment set: enough to tell "terrible" from
// "wonderful", nothing more.
var sentimentData = map[string][]string{
	"negative": {"this is awful", "I hate it, very disappointed", "worst service ever", "broken again, so annoying",
		"horrible experience", "really bad and slow", "I am angry about this", "useless, I regret buying it"},
	"neutral": {"I have a question about my order", "what are your opening hours", "please update my address",
		"the parcel arrives on Tuesday", "how do I change my plan", "my order number is 1234", "is there a tracking link", "I moved to a new city"},
	"positive": {"great job, thank you", "I love it, wonderful", "excellent service, very happy", "amazing support team",
		"fantastic, works perfectly", "really good and fast", "thanks, you are the best", "brilliant app, well done"},
}

// TrainSentiment trains a sentiment model on sentimentData.
func TrainSentiment(t testing.TB) *model.Model {
	t.Helper()
	ds := &model.Dataset{}
	for _, label := range []string{"negative", "neutral", "positive"} {
		for _, text := range sentimentData[label] {
			ds.Add(text, label)
		}
	}
	return trainFast(t, ds, 0)
}

// trainFast trains with one C and three folds: well under a second.
func trainFast(t testing.TB, ds *model.Dataset, threshold float64) *model.Model {
	t.Helper()
	o := model.DefaultTrainOptions()
	o.CGrid, o.C, o.Folds = nil, 1, 3
	o.FitThreshold, o.Threshold = false, threshold
	m, _, err := model.Train(context.Background(), ds, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// SetCurve gives m the score curve training would measure if in-scope
// texts scored like inScope and out-of-scope ones like offTopic: a
// threshold between them rejects every out-of-scope text and a tenth of
// the in-scope ones. offTopic must score below m's threshold and inScope
// at or above it. The fixture is too small for training to measure a curve
// worth adapting by; tests of the adaptation use this one.
func SetCurve(t testing.TB, m *model.Model, inScope, offTopic string) {
	t.Helper()
	sIn, sOff := m.Predict(inScope).OOSScore, m.Predict(offTopic).OOSScore
	if !(sOff < m.Threshold && m.Threshold <= sIn) {
		t.Fatalf("fixture drifted: scores in scope %v, off topic %v, threshold %v", sIn, sOff, m.Threshold)
	}
	m.Curve = &model.ScoreCurve{
		Thresholds:  []float64{sOff - 1, (sIn + sOff) / 2, sIn + 1},
		InCorrect:   []float64{0.9, 0.85, 0},
		InRejected:  []float64{0, 0.1, 1},
		OOSRejected: []float64{0, 1, 1},
		BaseCorrect: 0.9, InScope: 100, OutScope: 100,
	}
}

// Evidence is the features explaining cls's topic.
func Evidence(cls *feedloopv1.Classification) []string {
	var out []string
	for _, e := range cls.GetExplanation() {
		out = append(out, e.GetFeature())
	}
	return out
}

// fixture is the labelled set of package model's tests, found from this
// file so that tests in any directory read it.
func fixture() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "model", "testdata", "intents.csv")
}
