// Package classifier is the feedloop classifier service: it consumes
// feedback.received, classifies each item (topics, sentiment, urgency,
// language, score bands, PII redaction) and publishes feedback.classified.
//
// What classifying one item means is package classify: Layered, the
// configured rules (package rules) first, then the trained topic and
// sentiment models (package model) where configured, and a Pipeline that
// completes it with what needs no model. The use case (a Received event in,
// a Classified event out) is internal/app. This package wires them: it
// loads the files, reloads them when they change, and consumes the bus.
package classifier

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/filewatch"
	"github.com/feedloop/feedloop/pkg/lifecycle"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/classifier/classify"
	"github.com/feedloop/feedloop/services/classifier/internal/app"
	"github.com/feedloop/feedloop/services/classifier/internal/language"
	"github.com/feedloop/feedloop/services/classifier/model"
	"github.com/feedloop/feedloop/services/classifier/rules"
)

// Durable is the name of the service's JetStream consumer; its dead letters
// go to bus.DLQSubject(Durable).
const Durable = bus.ConsumerClassifier

// Config is the classifier's configuration, from the environment or built in
// Go (start from DefaultConfig).
type Config struct {
	lifecycle.Common
	// RulesFile is the YAML rules file (format: deploy/examples/rules.yaml).
	RulesFile string `env:"CLASSIFIER_RULES_FILE" envDefault:"/etc/feedloop/rules.yaml"`
	// RulesPollInterval re-reads RulesFile that often (package filewatch
	// says why it polls); 0 turns reloading off.
	RulesPollInterval time.Duration `env:"CLASSIFIER_RULES_POLL_INTERVAL" envDefault:"30s"`
	// Concurrency is how many messages are classified at once. Besides the
	// CPU of classifying, each waits for its publish to be stored; under
	// load that wait grows, and 8 slots capped the stage (bench hops).
	Concurrency int `env:"CLASSIFIER_CONCURRENCY" envDefault:"32"`
	// Languages are the ISO 639-1 codes language detection chooses from
	// (at least two); empty turns detection off (customer locale only).
	Languages []string `env:"CLASSIFIER_LANGUAGES" envDefault:"en,de,fr,es,it,nl,pt" envSeparator:","`
	// LanguageMinConfidence is the detection confidence (0..1) below which
	// the customer's locale decides the language.
	LanguageMinConfidence float64 `env:"CLASSIFIER_LANGUAGE_MIN_CONFIDENCE" envDefault:"0.5"`
	// TopicModel is a model file (`feedloop classifier train`) that gives
	// the topics where no topic rule matched; empty for rules only.
	TopicModel string `env:"CLASSIFIER_TOPIC_MODEL"`
	// SentimentModel is a model file with the labels negative, neutral
	// and positive; empty for the rules' keyword sentiment.
	SentimentModel string `env:"CLASSIFIER_SENTIMENT_MODEL"`
	// ModelPollInterval re-reads the model files that often; 0 turns
	// reloading off.
	ModelPollInterval time.Duration `env:"CLASSIFIER_MODEL_POLL_INTERVAL" envDefault:"30s"`
	// ExtraTopicMinConfidence is the probability a topic model's second
	// or third topic needs to be reported too (0..1; 1 = one topic only).
	ExtraTopicMinConfidence float64 `env:"CLASSIFIER_EXTRA_TOPIC_MIN_CONFIDENCE" envDefault:"0.3"`
	// OOSAdaptWindow is how many of the latest texts the topic model
	// classified its out-of-scope threshold adapts to: the share of
	// feedback that fits no topic is estimated from their scores and the
	// threshold is the one its training curve says is best for that share
	// (model.Adapter; docs/classifier.md). 0 decides with the threshold
	// fixed at training. Models without a score curve never adapt.
	OOSAdaptWindow int `env:"CLASSIFIER_OOS_ADAPT_WINDOW" envDefault:"2000"`
}

// DefaultConfig is the configuration of an empty environment: the env
// tags' defaults, the one source of them.
func DefaultConfig() Config { return lifecycle.MustDefaults[Config]() }

// LoadConfig reads the environment over those defaults and validates it.
func LoadConfig() (Config, error) { return lifecycle.Load[Config]() }

// Validate checks c and names the variable at fault.
func (c Config) Validate() error {
	errs := []error{c.Common.Validate()}
	if strings.TrimSpace(c.RulesFile) == "" {
		errs = append(errs, errors.New("CLASSIFIER_RULES_FILE: is required"))
	}
	for _, p := range []struct {
		name string
		d    time.Duration
	}{{"CLASSIFIER_RULES_POLL_INTERVAL", c.RulesPollInterval}, {"CLASSIFIER_MODEL_POLL_INTERVAL", c.ModelPollInterval}} {
		if p.d < 0 || (p.d > 0 && p.d < 100*time.Millisecond) {
			errs = append(errs, fmt.Errorf("%s: must be 0 (off) or at least 100ms, got %s", p.name, p.d))
		}
	}
	for _, m := range c.models() {
		if strings.TrimSpace(m.path) != m.path {
			errs = append(errs, fmt.Errorf("%s: %q has leading or trailing spaces", m.variable, m.path))
		}
	}
	if c.TopicModel != "" && c.TopicModel == c.SentimentModel {
		errs = append(errs, fmt.Errorf("%s: is the same file as %s (%s)", envSentimentModel, envTopicModel, c.TopicModel))
	}
	if math.IsNaN(c.ExtraTopicMinConfidence) || c.ExtraTopicMinConfidence <= 0 || c.ExtraTopicMinConfidence > 1 {
		errs = append(errs, fmt.Errorf("CLASSIFIER_EXTRA_TOPIC_MIN_CONFIDENCE: must be above 0 and at most 1, got %v", c.ExtraTopicMinConfidence))
	}
	if w := c.OOSAdaptWindow; w != 0 && (w < model.MinAdaptScores || w > 1_000_000) {
		errs = append(errs, fmt.Errorf("CLASSIFIER_OOS_ADAPT_WINDOW: must be 0 (fixed threshold) or %d..1000000, got %d", model.MinAdaptScores, w))
	}
	if c.Concurrency < 1 || c.Concurrency > 256 {
		errs = append(errs, fmt.Errorf("CLASSIFIER_CONCURRENCY: must be 1..256, got %d", c.Concurrency))
	}
	if langs := c.languages(); len(langs) > 0 {
		if err := language.Check(langs); err != nil {
			errs = append(errs, fmt.Errorf("CLASSIFIER_LANGUAGES: %w", err))
		}
	}
	if math.IsNaN(c.LanguageMinConfidence) || c.LanguageMinConfidence < 0 || c.LanguageMinConfidence > 1 {
		errs = append(errs, fmt.Errorf("CLASSIFIER_LANGUAGE_MIN_CONFIDENCE: must be 0..1, got %v", c.LanguageMinConfidence))
	}
	return errors.Join(errs...)
}

// The variables naming the model files.
const (
	envTopicModel     = "CLASSIFIER_TOPIC_MODEL"
	envSentimentModel = "CLASSIFIER_SENTIMENT_MODEL"
)

// modelConfig is one configured model file.
type modelConfig struct {
	variable, path string
	// check rejects a model unfit for the slot.
	check func(*model.Model) error
}

// models lists the configured model files.
func (c Config) models() []modelConfig {
	var out []modelConfig
	if c.TopicModel != "" {
		out = append(out, modelConfig{variable: envTopicModel, path: c.TopicModel, check: func(*model.Model) error { return nil }})
	}
	if c.SentimentModel != "" {
		out = append(out, modelConfig{variable: envSentimentModel, path: c.SentimentModel, check: classify.CheckSentimentModel})
	}
	return out
}

// languages drops blanks, so CLASSIFIER_LANGUAGES="" means none.
func (c Config) languages() []string {
	var out []string
	for _, l := range c.Languages {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// Service is a running classifier.
type Service struct {
	cfg       Config
	bus       *bus.Bus
	log       *slog.Logger
	rules     atomic.Pointer[rules.Classifier]
	initial   []byte // the rules file content loaded by New
	models    []*liveModel
	topic     classify.ModelSlot
	sentiment classify.ModelSlot
	pipeline  *classify.Pipeline
}

// liveModel is a configured model file and the slot it fills.
type liveModel struct {
	modelConfig
	slot    *classify.ModelSlot
	initial []byte // the file content loaded by New
}

// New loads the rules file, the trained models and the language models.
// It fails on invalid configuration, rules or model files, naming the
// variable, the file and what is wrong.
func New(cfg Config, infra *lifecycle.Infra) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("classifier: %w", err)
	}
	if infra == nil || infra.Bus == nil {
		return nil, errors.New("classifier: no bus in infra")
	}
	log := infra.Log
	if log == nil {
		log = slog.Default()
	}
	data, err := os.ReadFile(cfg.RulesFile)
	if err != nil {
		return nil, fmt.Errorf("classifier: CLASSIFIER_RULES_FILE: %w", err)
	}
	rc, err := rules.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("classifier: CLASSIFIER_RULES_FILE %s: %w", cfg.RulesFile, err)
	}
	s := &Service{cfg: cfg, bus: infra.Bus, log: log, initial: data}
	s.rules.Store(rc)
	s.topic.AdaptWindow = cfg.OOSAdaptWindow
	slots := map[string]*classify.ModelSlot{envTopicModel: &s.topic, envSentimentModel: &s.sentiment}
	for _, mc := range cfg.models() {
		lm := &liveModel{modelConfig: mc, slot: slots[mc.variable]}
		if lm.initial, err = os.ReadFile(mc.path); err != nil {
			return nil, fmt.Errorf("classifier: %s: %w", mc.variable, err)
		}
		m, err := lm.parse(lm.initial)
		if err != nil {
			return nil, fmt.Errorf("classifier: %s %s: %w", mc.variable, mc.path, err)
		}
		lm.slot.Swap(m)
		s.models = append(s.models, lm)
	}
	s.pipeline = &classify.Pipeline{
		Model: &classify.Layered{
			Rules:         liveRules{&s.rules},
			Topic:         &s.topic,
			Sentiment:     &s.sentiment,
			ExtraTopicMin: cfg.ExtraTopicMinConfidence,
		},
		MinLanguageConfidence: cfg.LanguageMinConfidence,
	}
	if langs := cfg.languages(); len(langs) > 0 {
		d, err := classify.NewLanguageDetector(langs)
		if err != nil {
			return nil, fmt.Errorf("classifier: CLASSIFIER_LANGUAGES: %w", err)
		}
		s.pipeline.Language = d
	}
	return s, nil
}

// RulesVersion is the version of the rules in force.
func (s *Service) RulesVersion() string { return s.rules.Load().Version() }

// TopicModelVersion is the version of the topic model in force, "" for none.
func (s *Service) TopicModelVersion() string { return versionOf(s.topic.Load()) }

// SentimentModelVersion is the version of the sentiment model in force, ""
// for none.
func (s *Service) SentimentModelVersion() string { return versionOf(s.sentiment.Load()) }

func versionOf(m *model.Model) string {
	if m == nil {
		return ""
	}
	return m.Version()
}

// Run consumes feedback.received until ctx is cancelled, reloading the
// rules and model files when they change, then drains the consumer and
// returns nil.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		filewatch.Watch(ctx, filewatch.Options{
			Path:     s.cfg.RulesFile,
			What:     "rules",
			Initial:  s.initial,
			Interval: s.cfg.RulesPollInterval,
			Log:      s.log,
			OnChange: s.reloadRules,
		})
	})
	for _, lm := range s.models {
		wg.Go(func() {
			filewatch.Watch(ctx, filewatch.Options{
				Path:     lm.path,
				What:     "model",
				Initial:  lm.initial,
				Interval: s.cfg.ModelPollInterval,
				Log:      s.log,
				OnChange: func(ctx context.Context, data []byte) { s.reloadModel(ctx, lm, data) },
			})
		})
	}
	if s.cfg.OOSAdaptWindow > 0 && s.cfg.TopicModel != "" {
		wg.Go(func() { s.logAdaptation(ctx, time.Minute) })
	}
	s.log.InfoContext(ctx, "classifier: running", "rules_file", s.cfg.RulesFile, "rules_version", s.RulesVersion(),
		"topic_model", s.cfg.TopicModel, "topic_model_version", s.TopicModelVersion(),
		"sentiment_model", s.cfg.SentimentModel, "sentiment_model_version", s.SentimentModelVersion(),
		"concurrency", s.cfg.Concurrency)
	err := s.bus.Consume(ctx, bus.ConsumerConfig{
		Stream:         bus.StreamFeedback,
		Durable:        Durable,
		FilterSubjects: []string{bus.SubjectReceived},
		Concurrency:    s.cfg.Concurrency,
	}, s.handle)
	if err != nil {
		return fmt.Errorf("classifier: %w", err)
	}
	return nil
}

// OOSAdaptation is the topic model's estimate of the share of recent
// feedback that fits no topic and the threshold it decides with
// (Config.OOSAdaptWindow); ok is false until it has one.
func (s *Service) OOSAdaptation() (share, threshold float64, ok bool) { return s.topic.Adaptation() }

// logAdaptation logs the estimated out-of-scope share when it first exists
// and whenever it moves by 0.05 or more: a rise means feedback about
// something no team owns is arriving (a new product, an outage), which
// the routing tree's owners want to hear of.
func (s *Service) logAdaptation(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	last := math.NaN()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		share, threshold, ok := s.OOSAdaptation()
		if !ok || math.Abs(share-last) < 0.05 {
			continue
		}
		last = share
		s.log.InfoContext(ctx, "classifier: out-of-scope share of recent feedback", "share", math.Round(share*1000)/1000,
			"threshold", threshold, "window", s.cfg.OOSAdaptWindow, "topic_model_version", s.TopicModelVersion())
	}
}

// reloadRules swaps in a new rules file, or keeps the rules in force when
// the new file is invalid.
func (s *Service) reloadRules(ctx context.Context, data []byte) {
	rc, err := rules.Parse(data)
	if err != nil {
		s.log.ErrorContext(ctx, "classifier: rules reload failed; keeping the rules in force",
			"rules_file", s.cfg.RulesFile, "rules_version", s.RulesVersion(), "err", err)
		return
	}
	old := s.rules.Swap(rc)
	s.log.InfoContext(ctx, "classifier: rules reloaded", "rules_file", s.cfg.RulesFile,
		"rules_version", rc.Version(), "previous_version", old.Version())
}

// parse decodes a model file and checks it fits the slot.
func (lm *liveModel) parse(data []byte) (*model.Model, error) {
	m, err := model.Load(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	if err := lm.check(m); err != nil {
		return nil, err
	}
	return m, nil
}

// reloadModel swaps in a changed model file, or keeps the model in force
// when the new file is corrupt or unfit. Items being classified finish
// with the model they started with (classify.Layered reads the slot once
// per item).
func (s *Service) reloadModel(ctx context.Context, lm *liveModel, data []byte) {
	m, err := lm.parse(data)
	if err != nil {
		s.log.ErrorContext(ctx, "classifier: model reload failed; keeping the model in force",
			"variable", lm.variable, "path", lm.path, "model_version", versionOf(lm.slot.Load()), "err", err)
		return
	}
	old := lm.slot.Swap(m)
	s.log.InfoContext(ctx, "classifier: model reloaded", "variable", lm.variable, "path", lm.path,
		"model_version", m.Version(), "previous_version", versionOf(old), "labels", len(m.Labels))
}

// handle classifies one feedback.received message.
func (s *Service) handle(ctx context.Context, m *bus.Msg) error {
	in, err := m.Event()
	if err != nil {
		return err
	}
	out, err := app.Classify(ctx, s.pipeline, in, time.Now())
	if err != nil {
		return err
	}
	if _, err := s.bus.Publish(ctx, bus.SubjectClassified, out); err != nil {
		return fmt.Errorf("publish classified event %s: %w", out.GetId(), err)
	}
	// The attributes and the log line are built only when someone records
	// them: at the default log level and without sampling, they would cost
	// more than the rules do.
	span := trace.SpanFromContext(ctx)
	logged := s.log.Enabled(ctx, slog.LevelInfo)
	if !span.IsRecording() && !logged {
		return nil
	}
	cls := out.GetClassified().GetClassification()
	topics := make([]string, 0, len(cls.GetTopics()))
	for _, t := range cls.GetTopics() {
		topics = append(topics, t.GetTopic())
	}
	// The classification outcome on the consumer span answers "where did my
	// feedback go" from the trace alone.
	span.SetAttributes(
		attribute.String("feedloop.feedback_id", out.GetFeedbackId()),
		attribute.StringSlice("feedloop.topics", topics),
		attribute.String("feedloop.topic_source", cls.GetTopicSource().String()),
		attribute.StringSlice("feedloop.rule_ids", cls.GetRuleIds()),
		attribute.String("feedloop.sentiment", cls.GetSentiment().String()),
		attribute.String("feedloop.urgency", cls.GetUrgency().String()),
		attribute.String("feedloop.language", cls.GetLanguage()),
		attribute.String("feedloop.model_version", cls.GetModelVersion()))
	if !logged {
		return nil
	}
	s.log.InfoContext(ctx, "classifier: classified", "feedback_id", out.GetFeedbackId(), "event_id", out.GetId(),
		"topics", topics, "topic_source", cls.GetTopicSource().String(), "rule_ids", cls.GetRuleIds(), "sentiment", cls.GetSentiment().String(),
		"urgency", cls.GetUrgency().String(), "language", cls.GetLanguage(), "model_version", cls.GetModelVersion())
	return nil
}

// liveRules classifies with whatever rules are in force at the call.
type liveRules struct {
	p *atomic.Pointer[rules.Classifier]
}

func (l liveRules) Classify(ctx context.Context, fb *feedloopv1.Feedback) (*feedloopv1.Classification, error) {
	return l.p.Load().Classify(ctx, fb)
}
