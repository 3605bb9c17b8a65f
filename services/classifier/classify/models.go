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
// reload. A nil slot, or one holding nil, holds no model.
type ModelSlot struct {
	p atomic.Pointer[model.Model]
}

// NewModelSlot returns a slot holding m.
func NewModelSlot(m *model.Model) *ModelSlot {
	s := &ModelSlot{}
	s.p.Store(m)
	return s
}

// Load returns the model in force, or nil.
func (s *ModelSlot) Load() *model.Model {
	if s == nil {
		return nil
	}
	return s.p.Load()
}

// Swap puts m in force and returns the model it replaces.
func (s *ModelSlot) Swap(m *model.Model) *model.Model { return s.p.Swap(m) }

// Layered is the Classifier the service gives its Pipeline: the
// configured rules first, then the trained models.
//
//   - Topics: where a topic rule matched (the rules' classification
//     carries rule ids), the rules' topics stand (topic_source RULES).
//     Else the topic model's label with its calibrated probability, and
//     up to MaxModelTopics-1 more labels at least as probable as
//     ExtraTopicMin (a text about two things), with the n-grams that
//     decided the first one as the explanation (topic_source MODEL). When the model's top
//     probability is below the threshold stored in it, the topic is
//     "unknown" with confidence 0 (topic_source UNKNOWN), which routes the
//     item to triage. Without a topic model the rules' answer stands.
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
	topic, sentiment := l.Topic.Load(), l.Sentiment.Load()
	cls, err := l.Rules.Classify(ctx, fb)
	if err != nil {
		return nil, err
	}
	var text string
	if topic != nil || sentiment != nil {
		text = modelText(fb)
	}
	if topic != nil && len(cls.GetRuleIds()) == 0 {
		l.applyTopic(cls, topic, text)
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

func (l *Layered) applyTopic(cls *feedloopv1.Classification, m *model.Model, text string) {
	p := m.PredictWith(text, model.PredictOptions{TopLabels: MaxModelTopics, Explain: ExplainFeatures})
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
