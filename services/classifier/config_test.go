package classifier_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/feedloop/feedloop/pkg/testkit"
	"github.com/feedloop/feedloop/services/classifier"
)

func TestDefaultConfig(t *testing.T) {
	testkit.ConfigDefaults(t, classifier.DefaultConfig(), classifier.LoadConfig)
	cfg := classifier.DefaultConfig()
	if cfg.RulesFile != "/etc/feedloop/rules.yaml" || cfg.Concurrency != 32 || cfg.RulesPollInterval != 30*time.Second ||
		!slices.Equal(cfg.Languages, []string{"en", "de", "fr", "es", "it", "nl", "pt"}) || cfg.LanguageMinConfidence != 0.5 ||
		cfg.TopicModel != "" || cfg.SentimentModel != "" || cfg.ModelPollInterval != 30*time.Second || cfg.ExtraTopicMinConfidence != 0.3 || cfg.OOSAdaptWindow != 2000 {
		t.Errorf("DefaultConfig() = %+v", cfg)
	}
}

func TestLoadConfigFromEnvironment(t *testing.T) {
	cfg := testkit.LoadConfig(t, classifier.LoadConfig, map[string]string{
		"CLASSIFIER_RULES_FILE":                 "/tmp/r.yaml",
		"CLASSIFIER_CONCURRENCY":                "3",
		"CLASSIFIER_LANGUAGES":                  "en, fr",
		"CLASSIFIER_RULES_POLL_INTERVAL":        "0s",
		"CLASSIFIER_TOPIC_MODEL":                "/models/topic.model",
		"CLASSIFIER_SENTIMENT_MODEL":            "/models/sentiment.model",
		"CLASSIFIER_MODEL_POLL_INTERVAL":        "1m",
		"CLASSIFIER_EXTRA_TOPIC_MIN_CONFIDENCE": "1",
		"CLASSIFIER_OOS_ADAPT_WINDOW":           "0",
	})
	if cfg.RulesFile != "/tmp/r.yaml" || cfg.Concurrency != 3 || cfg.RulesPollInterval != 0 || len(cfg.Languages) != 2 ||
		cfg.TopicModel != "/models/topic.model" || cfg.SentimentModel != "/models/sentiment.model" ||
		cfg.ModelPollInterval != time.Minute || cfg.ExtraTopicMinConfidence != 1 || cfg.OOSAdaptWindow != 0 {
		t.Errorf("LoadConfig() = %+v", cfg)
	}
	// An empty language list turns detection off and is valid.
	testkit.LoadConfig(t, classifier.LoadConfig, map[string]string{"CLASSIFIER_LANGUAGES": ""})
}

func TestValidateNamesTheVariable(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*classifier.Config)
		want   string
	}{
		{"rules file", func(c *classifier.Config) { c.RulesFile = " " }, "CLASSIFIER_RULES_FILE: is required"},
		{"concurrency", func(c *classifier.Config) { c.Concurrency = 0 }, "CLASSIFIER_CONCURRENCY: must be 1..256, got 0"},
		{"poll interval", func(c *classifier.Config) { c.RulesPollInterval = time.Millisecond }, "CLASSIFIER_RULES_POLL_INTERVAL: must be 0 (off) or at least 100ms"},
		{"languages", func(c *classifier.Config) { c.Languages = []string{"en", "klingon"} }, `CLASSIFIER_LANGUAGES: "klingon" is not an ISO 639-1 code`},
		{"one language", func(c *classifier.Config) { c.Languages = []string{"en"} }, "CLASSIFIER_LANGUAGES: need at least 2 distinct languages"},
		{"min confidence", func(c *classifier.Config) { c.LanguageMinConfidence = 1.5 }, "CLASSIFIER_LANGUAGE_MIN_CONFIDENCE: must be 0..1, got 1.5"},
		{"common", func(c *classifier.Config) { c.NATSURL = "http://x" }, "NATS_URL: must start with nats://"},
		{"model poll interval", func(c *classifier.Config) { c.ModelPollInterval = -time.Second }, "CLASSIFIER_MODEL_POLL_INTERVAL: must be 0 (off) or at least 100ms"},
		{"topic model path", func(c *classifier.Config) { c.TopicModel = " " }, `CLASSIFIER_TOPIC_MODEL: " " has leading or trailing spaces`},
		{"sentiment model path", func(c *classifier.Config) { c.SentimentModel = "/m/s.model " }, `CLASSIFIER_SENTIMENT_MODEL: "/m/s.model " has leading or trailing spaces`},
		{"one file for both", func(c *classifier.Config) { c.TopicModel, c.SentimentModel = "/m/a.model", "/m/a.model" }, "CLASSIFIER_SENTIMENT_MODEL: is the same file as CLASSIFIER_TOPIC_MODEL (/m/a.model)"},
		{"adapt window too small", func(c *classifier.Config) { c.OOSAdaptWindow = 99 }, "CLASSIFIER_OOS_ADAPT_WINDOW: must be 0 (fixed threshold) or 100..1000000, got 99"},
		{"adapt window negative", func(c *classifier.Config) { c.OOSAdaptWindow = -1 }, "CLASSIFIER_OOS_ADAPT_WINDOW: must be 0 (fixed threshold) or 100..1000000, got -1"},
		{"extra topics", func(c *classifier.Config) { c.ExtraTopicMinConfidence = 0 }, "CLASSIFIER_EXTRA_TOPIC_MIN_CONFIDENCE: must be above 0 and at most 1, got 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := classifier.DefaultConfig()
			tt.modify(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
