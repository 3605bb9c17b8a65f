package classify

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/classifier/model"
)

// Prefixes of the trained models' versions in model_version, which joins
// the versions of everything in force with spaces, e.g.
// "rules:2025-06-01 topic:3f2a9c1b0d4e sentiment:91c0e7aa5b12".
const (
	TopicModelPrefix     = "topic:"
	SentimentModelPrefix = "sentiment:"
)

// Sizes of a model's answer.
const (
	// MaxModelTopics is the most topics a topic model reports.
	MaxModelTopics = 3
	// ExplainFeatures is how many n-grams explain a model's topic.
	ExplainFeatures = 8
)

// ModelSlot holds the trained model in force, swapped atomically on
// reload, with the threshold adapter of that model (model.Adapter) when
// AdaptWindow is set. A nil slot, or one holding nil, holds no model.
type ModelSlot struct {
	p atomic.Pointer[inForce]
	// AdaptWindow, when above 0, has a model that carries a score curve
	// decide with the out-of-scope threshold adapted to the last
	// AdaptWindow texts it classified, re-estimated every AdaptEvery
	// (default 100). Set both before the first Swap: a model swapped in
	// starts with a new, empty window (its scores are not the old model's).
	AdaptWindow, AdaptEvery int
}

// inForce is a model and its adapter (nil when not adapting).
type inForce struct {
	m *model.Model
	a *model.Adapter
}

// NewModelSlot returns a slot holding m, deciding with m's own threshold.
func NewModelSlot(m *model.Model) *ModelSlot {
	s := &ModelSlot{}
	s.Swap(m)
	return s
}

// Load returns the model in force, or nil.
func (s *ModelSlot) Load() *model.Model {
	m, _ := s.load()
	return m
}

func (s *ModelSlot) load() (*model.Model, *model.Adapter) {
	if s == nil {
		return nil, nil
	}
	f := s.p.Load()
	if f == nil {
		return nil, nil
	}
	return f.m, f.a
}

// Swap puts m in force and returns the model it replaces.
func (s *ModelSlot) Swap(m *model.Model) *model.Model {
	f := &inForce{m: m}
	if m != nil && s.AdaptWindow > 0 && m.Curve != nil {
		every := s.AdaptEvery
		if every <= 0 {
			every = 100
		}
		f.a = model.NewAdapter(m, s.AdaptWindow, every)
	}
	old := s.p.Swap(f)
	if old == nil {
		return nil
	}
	return old.m
}

// Adaptation is the out-of-scope share the model in force estimates for
// the traffic it has seen and the threshold it decides with; ok is false
// when it does not adapt or has not seen enough texts yet.
func (s *ModelSlot) Adaptation() (share, threshold float64, ok bool) {
	_, a := s.load()
	if a == nil {
		return 0, 0, false
	}
	share, ok = a.Share()
	return share, a.Threshold(), ok
}

// Layered is the Classifier the service gives its Pipeline: the
// configured rules first, then the trained models.
//
//   - Topics: where a topic rule matched (the rules' classification
//     carries rule ids), the rules' topics stand (topic_source RULES).
//     Else the topic model's label with its calibrated probability, and
//     up to MaxModelTopics-1 more labels at least as probable as
//     ExtraTopicMin (a text about two things), with the n-grams that
//     decided the first one as the explanation (topic_source MODEL). When the model's
//     out-of-scope score is below its threshold (the one stored in it, or
//     the one adapted to the recent traffic: ModelSlot.AdaptWindow), the
//     topic is "unknown" with confidence 0 (topic_source UNKNOWN), which
//     routes the item to triage. Without a topic model the rules' answer
//     stands.
//   - Sentiment: the sentiment model's top label and probability when
//     there is one, else the rules' keyword sentiment. (Pipeline lets
//     NPS/CSAT/CES answers override either.)
//   - Urgency: the rules'.
//   - model_version: the rules' version and each model's, joined by spaces.
//
// Each call reads each slot once, so an item being classified while a
// model is swapped finishes with the model it started with.
type Layered struct {
	// Rules classifies first; required.
	Rules Classifier
	// Topic and Sentiment hold the trained models; nil or empty for none.
	Topic, Sentiment *ModelSlot
	// ExtraTopicMin is the probability a topic after the model's first
	// needs to be reported too (0..1; 1 reports one topic only).
	ExtraTopicMin float64
}

// Classify implements Classifier.
func (l *Layered) Classify(ctx context.Context, fb *feedloopv1.Feedback) (*feedloopv1.Classification, error) {
	if fb == nil {
		return nil, errors.New("classifier: no feedback to classify")
	}
	topic, adapter := l.Topic.load()
	sentiment := l.Sentiment.Load()
	cls, err := l.Rules.Classify(ctx, fb)
	if err != nil {
		return nil, err
	}
	var text string
	if topic != nil || sentiment != nil {
		text = modelText(fb)
	}
	if topic != nil && len(cls.GetRuleIds()) == 0 {
		l.applyTopic(cls, topic, adapter, text)
	}
	if sentiment != nil {
		p := sentiment.PredictWith(text, model.PredictOptions{TopLabels: 1})
		// Every label maps: CheckSentimentModel ran before the model was
		// put in force.
		s, _ := SentimentOf(p.Top[0].Label)
		cls.Sentiment, cls.SentimentConfidence = s, round4(p.Top[0].Prob)
	}
	cls.ModelVersion = modelVersion(cls.GetModelVersion(), topic, sentiment)
	return cls, nil
}

func (l *Layered) applyTopic(cls *feedloopv1.Classification, m *model.Model, a *model.Adapter, text string) {
	p := m.PredictWith(text, model.PredictOptions{TopLabels: MaxModelTopics, Explain: ExplainFeatures})
	if a != nil {
		a.Observe(p.OOSScore)
		p = model.Decide(p, a.Threshold())
	}
	cls.Explanation = nil
	if p.Label == model.Unknown {
		cls.Topics = []*feedloopv1.TopicScore{{Topic: model.Unknown, Confidence: 0}}
		cls.TopicSource = feedloopv1.TopicSource_TOPIC_SOURCE_UNKNOWN
		return
	}
	cls.Topics = cls.Topics[:0]
	for i, lp := range p.Top {
		if i > 0 && (l.ExtraTopicMin >= 1 || lp.Prob < l.ExtraTopicMin) {
			break
		}
		cls.Topics = append(cls.Topics, &feedloopv1.TopicScore{Topic: lp.Label, Confidence: round4(lp.Prob)})
	}
	for _, c := range p.Explain {
		cls.Explanation = append(cls.Explanation, &feedloopv1.Evidence{Feature: c.Feature, Weight: c.Weight})
	}
	cls.TopicSource = feedloopv1.TopicSource_TOPIC_SOURCE_MODEL
}

// modelText is what the models read: the subject, then the text (as the
// rules do).
func modelText(fb *feedloopv1.Feedback) string {
	if s := fb.GetSubject(); s != "" {
		return s + "\n" + fb.GetText()
	}
	return fb.GetText()
}

// SentimentOf maps a sentiment model's label (negative, neutral or
// positive, any case) to the Sentiment it stands for.
func SentimentOf(label string) (feedloopv1.Sentiment, bool) {
	switch strings.ToLower(strings.TrimSpace(label)) {
	case "negative":
		return feedloopv1.Sentiment_SENTIMENT_NEGATIVE, true
	case "neutral":
		return feedloopv1.Sentiment_SENTIMENT_NEUTRAL, true
	case "positive":
		return feedloopv1.Sentiment_SENTIMENT_POSITIVE, true
	}
	return feedloopv1.Sentiment_SENTIMENT_UNSPECIFIED, false
}

// ErrSentimentLabels is wrapped when a sentiment model has labels that
// are no sentiment.
var ErrSentimentLabels = errors.New("not a sentiment model")

// CheckSentimentModel reports a model whose labels are not all negative,
// neutral or positive.
func CheckSentimentModel(m *model.Model) error {
	var bad []string
	for _, l := range m.Labels {
		if _, ok := SentimentOf(l); !ok {
			bad = append(bad, fmt.Sprintf("%q", l))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: labels %s are not negative, neutral or positive", ErrSentimentLabels, strings.Join(bad, ", "))
	}
	return nil
}

// modelVersion appends the version of each model present to the rules'.
func modelVersion(rules string, topic, sentiment *model.Model) string {
	v := rules
	add := func(prefix string, m *model.Model) {
		if m == nil {
			return
		}
		if v != "" {
			v += " "
		}
		v += prefix + m.Version()
	}
	add(TopicModelPrefix, topic)
	add(SentimentModelPrefix, sentiment)
	return v
}

func round4(p float64) float64 { return math.Round(p*1e4) / 1e4 }
