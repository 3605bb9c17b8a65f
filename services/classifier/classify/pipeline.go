// Package classify is what classifying one feedback item means, without the
// bus: the configured rules, then the trained models in force (Layered, with
// the swappable ModelSlot each model lives in), completed by a Pipeline with
// what needs no model (score bands, sentiment from the answers, language,
// redaction). The service, the CLI's "rules test" and the benchmarks run the
// same Pipeline, so it is importable outside the service.
package classify

import (
	"context"
	"errors"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/classifier/internal/bands"
	"github.com/feedloop/feedloop/services/classifier/internal/language"
	"github.com/feedloop/feedloop/services/classifier/internal/redact"
)

// Classifier classifies one feedback item. Implementations must be safe for
// concurrent use and return a new Classification on every call. An error
// is treated as transient: the message is retried, then dead-lettered.
type Classifier interface {
	Classify(ctx context.Context, fb *feedloopv1.Feedback) (*feedloopv1.Classification, error)
}

// LanguageDetector guesses the language of a text; implementations must be
// safe for concurrent use.
type LanguageDetector interface {
	// Detect returns the ISO 639-1 code of the language of text with a
	// confidence in 0..1, or "" when it cannot tell.
	Detect(text string) (code string, confidence float64)
}

// NewLanguageDetector returns the default detector (character trigrams,
// internal/language.NGram) restricted to the given ISO 639-1 codes, at
// least two.
func NewLanguageDetector(codes []string) (LanguageDetector, error) {
	return language.New(codes)
}

// Pipeline is the Classifier the service runs: Model's topics, urgency,
// rule ids, sentiment, explanation and model version (Layered: rules, then
// trained models), completed with what needs no model:
//   - score bands of the NPS, CSAT and CES answers;
//   - sentiment from the answers when there are any (NPS, else CSAT, else
//     CES; confidence 1, the customer said so), else the model's, else
//     neutral with confidence 0;
//   - the language: detected from the text when Language is sure enough,
//     else the customer's locale;
//   - redacted_text and redactions: the text with emails, phone numbers,
//     card numbers and IBANs replaced by placeholders.
type Pipeline struct {
	// Model classifies topics, urgency and sentiment; required.
	Model Classifier
	// Language detects the language; nil uses the customer's locale only.
	Language LanguageDetector
	// MinLanguageConfidence is the detection confidence below which the
	// customer's locale decides.
	MinLanguageConfidence float64
}

// Classify implements Classifier.
func (p *Pipeline) Classify(ctx context.Context, fb *feedloopv1.Feedback) (*feedloopv1.Classification, error) {
	if fb == nil {
		return nil, errors.New("classifier: no feedback to classify")
	}
	cls, err := p.Model.Classify(ctx, fb)
	if err != nil {
		return nil, err
	}
	b := bands.Of(fb)
	cls.NpsBand, cls.CsatBand, cls.CesBand = b.NPS, b.CSAT, b.CES
	if s, ok := b.Sentiment(); ok {
		cls.Sentiment, cls.SentimentConfidence = s, bands.ScoreConfidence
	} else if cls.GetSentiment() == feedloopv1.Sentiment_SENTIMENT_UNSPECIFIED {
		cls.Sentiment, cls.SentimentConfidence = feedloopv1.Sentiment_SENTIMENT_NEUTRAL, 0
	}
	if cls.GetUrgency() == feedloopv1.Urgency_URGENCY_UNSPECIFIED {
		cls.Urgency = feedloopv1.Urgency_URGENCY_NORMAL
	}
	text := fb.GetText()
	if text == "" {
		text = fb.GetSubject()
	}
	cls.Language = language.Resolve(p.Language, text, fb.GetCustomer().GetLocale(), p.MinLanguageConfidence)
	cls.RedactedText, cls.Redactions = redact.Text(fb.GetText())
	return cls, nil
}
