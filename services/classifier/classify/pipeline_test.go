package classify_test

import (
	"context"
	"errors"
	"maps"
	"testing"

	"google.golang.org/protobuf/proto"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/classifier/classify"
	"github.com/feedloop/feedloop/services/classifier/rules"
)

// keywordModel says whatever sentiment it is built with.
type keywordModel feedloopv1.Sentiment

func (m keywordModel) Classify(context.Context, *feedloopv1.Feedback) (*feedloopv1.Classification, error) {
	return &feedloopv1.Classification{
		Topics:              []*feedloopv1.TopicScore{{Topic: "billing", Confidence: 1}},
		Sentiment:           feedloopv1.Sentiment(m),
		SentimentConfidence: 0.65,
	}, nil
}

// fixedLanguage detects the same language with the same confidence.
type fixedLanguage struct {
	code string
	conf float64
}

func (f fixedLanguage) Detect(string) (string, float64) { return f.code, f.conf }

func TestPipelineSentimentPrecedence(t *testing.T) {
	neg, neu, pos := feedloopv1.Sentiment_SENTIMENT_NEGATIVE, feedloopv1.Sentiment_SENTIMENT_NEUTRAL, feedloopv1.Sentiment_SENTIMENT_POSITIVE
	tests := []struct {
		name     string
		model    feedloopv1.Sentiment
		fb       *feedloopv1.Feedback
		want     feedloopv1.Sentiment
		wantConf float64
	}{
		{"nps promoter beats negative words", neg, &feedloopv1.Feedback{Nps: proto.Int32(10)}, pos, 1},
		{"nps passive is neutral", pos, &feedloopv1.Feedback{Nps: proto.Int32(8)}, neu, 1},
		{"csat when no nps", pos, &feedloopv1.Feedback{Csat: proto.Int32(1)}, neg, 1},
		{"ces when no nps or csat", neg, &feedloopv1.Feedback{Ces: proto.Int32(7)}, pos, 1},
		{"words when no score", neg, &feedloopv1.Feedback{}, neg, 0.65},
		{"neutral when nothing says", feedloopv1.Sentiment_SENTIMENT_UNSPECIFIED, &feedloopv1.Feedback{}, neu, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &classify.Pipeline{Model: keywordModel(tt.model)}
			got, err := p.Classify(context.Background(), tt.fb)
			if err != nil {
				t.Fatal(err)
			}
			if got.GetSentiment() != tt.want || got.GetSentimentConfidence() != tt.wantConf {
				t.Errorf("sentiment = %v (%v), want %v (%v)", got.GetSentiment(), got.GetSentimentConfidence(), tt.want, tt.wantConf)
			}
		})
	}
}

func TestPipelineBandsLanguageAndRedaction(t *testing.T) {
	p := &classify.Pipeline{
		Model:                 keywordModel(feedloopv1.Sentiment_SENTIMENT_UNSPECIFIED),
		Language:              fixedLanguage{"fr", 0.4},
		MinLanguageConfidence: 0.5,
	}
	fb := &feedloopv1.Feedback{
		Text:     "Call me on +49 30 1234567 or mail jane@example.com",
		Nps:      proto.Int32(6),
		Csat:     proto.Int32(3),
		Ces:      proto.Int32(5),
		Customer: &feedloopv1.Customer{Locale: "de-CH"},
	}
	got, err := p.Classify(context.Background(), fb)
	if err != nil {
		t.Fatal(err)
	}
	if got.GetNpsBand() != feedloopv1.NpsBand_NPS_BAND_DETRACTOR ||
		got.GetCsatBand() != feedloopv1.CsatBand_CSAT_BAND_NEUTRAL ||
		got.GetCesBand() != feedloopv1.CesBand_CES_BAND_MEDIUM_EFFORT {
		t.Errorf("bands = %v %v %v", got.GetNpsBand(), got.GetCsatBand(), got.GetCesBand())
	}
	if got.GetLanguage() != "de" {
		t.Errorf("language = %q, want the locale's de (detection was unsure)", got.GetLanguage())
	}
	if got.GetRedactedText() != "Call me on [phone] or mail [email]" {
		t.Errorf("redacted_text = %q", got.GetRedactedText())
	}
	if want := map[string]int32{"phone": 1, "email": 1}; !maps.Equal(got.GetRedactions(), want) {
		t.Errorf("redactions = %v, want %v", got.GetRedactions(), want)
	}
	if got.GetUrgency() != feedloopv1.Urgency_URGENCY_NORMAL {
		t.Errorf("urgency = %v, want normal when the model says nothing", got.GetUrgency())
	}
	if fb.GetText() != "Call me on +49 30 1234567 or mail jane@example.com" {
		t.Error("the feedback itself was redacted; only redacted_text may be")
	}

	p.Language = fixedLanguage{"fr", 0.9}
	got, _ = p.Classify(context.Background(), fb)
	if got.GetLanguage() != "fr" {
		t.Errorf("language = %q, want the confidently detected fr", got.GetLanguage())
	}
}

func TestPipelineWithRealRulesAndDetector(t *testing.T) {
	rc, err := rules.Load("../../../deploy/examples/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := classify.NewLanguageDetector([]string{"en", "de", "fr"})
	if err != nil {
		t.Fatal(err)
	}
	p := &classify.Pipeline{Model: rc, Language: d, MinLanguageConfidence: 0.5}
	got, err := p.Classify(context.Background(), &feedloopv1.Feedback{Text: "Die Lieferung ist nie angekommen, das Paket fehlt"})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetLanguage() != "de" || got.GetTopics()[0].GetTopic() != "delivery" || got.GetModelVersion() != rc.ModelVersion() {
		t.Errorf("got language %q, topics %v, model %q", got.GetLanguage(), got.GetTopics(), got.GetModelVersion())
	}
}

func TestPipelinePassesModelErrorsOn(t *testing.T) {
	boom := errors.New("boom")
	p := &classify.Pipeline{Model: failing{boom}}
	if _, err := p.Classify(context.Background(), &feedloopv1.Feedback{}); !errors.Is(err, boom) {
		t.Errorf("err = %v, want %v", err, boom)
	}
}

type failing struct{ err error }

func (f failing) Classify(context.Context, *feedloopv1.Feedback) (*feedloopv1.Classification, error) {
	return nil, f.err
}
