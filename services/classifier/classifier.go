// Package classifier is the feedloop classifier service: it consumes
// feedback.received, classifies each item (topics, sentiment, urgency,
// language, score bands, PII redaction) and publishes feedback.classified.
//
// The topic, urgency and keyword-sentiment part is a Classifier: the
// rules-based one (package rules) now, a trained model later. A Pipeline
// completes it with what needs no model.
package classifier

import (
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

	"github.com/caarlos0/env/v11"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/lifecycle"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/classifier/internal/app"
	"github.com/feedloop/feedloop/services/classifier/internal/language"
	"github.com/feedloop/feedloop/services/classifier/internal/reload"
	"github.com/feedloop/feedloop/services/classifier/rules"
)

// Classifier classifies one feedback item. Implementations must be safe for
// concurrent use and return a new Classification on every call. An error
// is treated as transient: the message is retried, then dead-lettered.
type Classifier interface {
	Classify(ctx context.Context, fb *feedloopv1.Feedback) (*feedloopv1.Classification, error)
}

// Durable is the name of the service's JetStream consumer; its dead letters
// go to bus.DLQSubject(Durable).
const Durable = "classifier"

// Config is the classifier's configuration, from the environment or built in
// Go (start from DefaultConfig).
type Config struct {
	lifecycle.Common
	// RulesFile is the YAML rules file (format: deploy/examples/rules.yaml).
	RulesFile string `env:"CLASSIFIER_RULES_FILE" envDefault:"/etc/feedloop/rules.yaml"`
	// RulesPollInterval re-reads RulesFile that often, besides reacting to
	// file events; 0 disables polling.
	RulesPollInterval time.Duration `env:"CLASSIFIER_RULES_POLL_INTERVAL" envDefault:"30s"`
	// Concurrency is how many messages are classified at once.
	Concurrency int `env:"CLASSIFIER_CONCURRENCY" envDefault:"8"`
	// Languages are the ISO 639-1 codes language detection chooses from
	// (at least two); empty turns detection off (customer locale only).
	Languages []string `env:"CLASSIFIER_LANGUAGES" envDefault:"en,de,fr,es,it,nl,pt" envSeparator:","`
	// LanguageMinConfidence is the detection confidence (0..1) below which
	// the customer's locale decides the language.
	LanguageMinConfidence float64 `env:"CLASSIFIER_LANGUAGE_MIN_CONFIDENCE" envDefault:"0.5"`
}

// DefaultConfig returns the configuration with every default applied, as
// if the environment were empty.
func DefaultConfig() Config {
	cfg, err := env.ParseAsWithOptions[Config](env.Options{Environment: map[string]string{}})
	if err != nil {
		// The defaults are constants of this file; a test parses them.
		panic(fmt.Sprintf("classifier: bad default config: %v", err))
	}
	return cfg
}

// LoadConfig reads the configuration from the environment and validates it.
func LoadConfig() (Config, error) { return lifecycle.Load[Config]() }

// Validate checks c and names the variable at fault.
func (c Config) Validate() error {
	errs := []error{c.Common.Validate()}
	if strings.TrimSpace(c.RulesFile) == "" {
		errs = append(errs, errors.New("CLASSIFIER_RULES_FILE: is required"))
	}
	if c.RulesPollInterval < 0 || (c.RulesPollInterval > 0 && c.RulesPollInterval < 100*time.Millisecond) {
		errs = append(errs, fmt.Errorf("CLASSIFIER_RULES_POLL_INTERVAL: must be 0 (off) or at least 100ms, got %s", c.RulesPollInterval))
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
	cfg      Config
	bus      *bus.Bus
	log      *slog.Logger
	rules    atomic.Pointer[rules.Classifier]
	initial  []byte // the rules file content loaded by New
	pipeline *Pipeline
}

// New loads the rules file and the language models. It fails on invalid
// configuration or rules, naming the file and the bad entries.
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
	s.pipeline = &Pipeline{Model: liveRules{&s.rules}, MinLanguageConfidence: cfg.LanguageMinConfidence}
	if langs := cfg.languages(); len(langs) > 0 {
		d, err := NewLanguageDetector(langs)
		if err != nil {
			return nil, fmt.Errorf("classifier: CLASSIFIER_LANGUAGES: %w", err)
		}
		s.pipeline.Language = d
	}
	return s, nil
}

// RulesVersion is the version of the rules in force.
func (s *Service) RulesVersion() string { return s.rules.Load().Version() }

// Run consumes feedback.received until ctx is cancelled, reloading the
// rules file when it changes, then drains the consumer and returns nil.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		reload.Watch(ctx, reload.Options{
			Path:         s.cfg.RulesFile,
			Initial:      s.initial,
			PollInterval: s.cfg.RulesPollInterval,
			Log:          s.log,
			OnChange:     s.reloadRules,
		})
	})
	s.log.InfoContext(ctx, "classifier: running", "rules_file", s.cfg.RulesFile, "rules_version", s.RulesVersion(), "concurrency", s.cfg.Concurrency)
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
	cls := out.GetClassified().GetClassification()
	topics := make([]string, 0, len(cls.GetTopics()))
	for _, t := range cls.GetTopics() {
		topics = append(topics, t.GetTopic())
	}
	s.log.InfoContext(ctx, "classifier: classified", "feedback_id", out.GetFeedbackId(), "event_id", out.GetId(),
		"topics", topics, "rule_ids", cls.GetRuleIds(), "sentiment", cls.GetSentiment().String(),
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
