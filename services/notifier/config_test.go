package notifier_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/pkg/testkit"
	"github.com/feedloop/feedloop/services/notifier"
)

func TestDefaultConfig(t *testing.T) {
	testkit.ConfigDefaults(t, notifier.DefaultConfig(), notifier.LoadConfig)
	cfg := notifier.DefaultConfig()
	if cfg.TemplatesDir != "/etc/feedloop/templates" || cfg.DedupTTL != 2160*time.Hour || cfg.WebhookAttempts != 3 || cfg.WebhookTimeout != 10*time.Second || cfg.Concurrency != 64 {
		t.Errorf("defaults = %+v", cfg)
	}
	if cfg.CustomerRouted || cfg.CustomerDailyCap != 5 || cfg.DigestDelay != 5*time.Minute || cfg.DigestPoll != 30*time.Second || cfg.ConsoleOutput != nil {
		t.Errorf("defaults = %+v", cfg)
	}
}

func TestLoadConfigFromEnv(t *testing.T) {
	cfg := testkit.LoadConfig(t, notifier.LoadConfig, map[string]string{
		"NOTIFIER_TEMPLATES_DIR":        "/srv/templates",
		"NOTIFIER_CUSTOMER_WEBHOOK_URL": "https://messaging.example.com/hooks/feedloop",
		"NOTIFIER_WEBHOOK_SECRET":       "0123456789abcdef",
		"NOTIFIER_SMTP_ADDR":            "smtp.example.com:587",
		"NOTIFIER_SMTP_FROM":            "Acme <support@acme.example>",
		"NOTIFIER_CONSOLE":              "true",
		"NOTIFIER_CUSTOMER_ROUTED":      "true",
	})
	if cfg.TemplatesDir != "/srv/templates" || !cfg.Console || cfg.SMTPAddr != "smtp.example.com:587" {
		t.Errorf("cfg = %+v", cfg)
	}
	if cfg.DedupTTL != 2160*time.Hour || cfg.WebhookAttempts != 3 || cfg.WebhookTimeout != 10*time.Second || cfg.Concurrency != 64 {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	if !cfg.CustomerRouted || cfg.CustomerDailyCap != 5 || cfg.DigestDelay != 5*time.Minute || cfg.DigestPoll != 30*time.Second {
		t.Errorf("routed/cap/digest settings = %v %d %s %s", cfg.CustomerRouted, cfg.CustomerDailyCap, cfg.DigestDelay, cfg.DigestPoll)
	}
	if cfg.ConsoleOutput != nil {
		t.Error("Go-only field set from the environment")
	}
}

func TestLoadConfigNamesBadVariables(t *testing.T) {
	testkit.ConfigErrors(t, notifier.LoadConfig, map[string]string{
		"NOTIFIER_CUSTOMER_WEBHOOK_URL": "ftp://nope",
		"NOTIFIER_SMTP_ADDR":            "smtp.example.com",
		"NOTIFIER_DEDUP_TTL":            "5m",
		"NOTIFIER_CUSTOMER_DAILY_CAP":   "-1",
		"NOTIFIER_DIGEST_DELAY":         "48h",
	},
		"NOTIFIER_CUSTOMER_WEBHOOK_URL: must be an absolute http(s) URL",
		"NOTIFIER_WEBHOOK_SECRET: required when NOTIFIER_CUSTOMER_WEBHOOK_URL is set",
		`NOTIFIER_SMTP_ADDR: must be host:port, got "smtp.example.com"`,
		"NOTIFIER_SMTP_FROM: required when NOTIFIER_SMTP_ADDR is set",
		"NOTIFIER_DEDUP_TTL: must be at least 1h",
		"NOTIFIER_CUSTOMER_DAILY_CAP: must be 0 (no cap)..1000, got -1",
		"NOTIFIER_DIGEST_DELAY: must be 0..24h, got 48h0m0s",
	)
}

func TestValidate(t *testing.T) {
	const secret, previous = "0123456789abcdef", "fedcba9876543210"
	cases := []struct {
		name string
		set  func(*notifier.Config)
		want string // "" = valid
	}{
		{"defaults", func(*notifier.Config) {}, ""},
		{"short secret", func(c *notifier.Config) { c.WebhookSecret = "short" }, "NOTIFIER_WEBHOOK_SECRET: must be at least 16 bytes"},
		{"rotation", func(c *notifier.Config) { c.WebhookSecret, c.WebhookSecretPrevious = secret, previous }, ""},
		{"short previous secret", func(c *notifier.Config) { c.WebhookSecret, c.WebhookSecretPrevious = secret, "old" }, "NOTIFIER_WEBHOOK_SECRET_PREVIOUS: must be at least 16 bytes, got 3"},
		{"previous without current", func(c *notifier.Config) { c.WebhookSecretPrevious = previous }, "NOTIFIER_WEBHOOK_SECRET_PREVIOUS: set without NOTIFIER_WEBHOOK_SECRET"},
		{"previous same as current", func(c *notifier.Config) { c.WebhookSecret, c.WebhookSecretPrevious = secret, secret }, "NOTIFIER_WEBHOOK_SECRET_PREVIOUS: the same as NOTIFIER_WEBHOOK_SECRET"},
		{"bad from", func(c *notifier.Config) { c.SMTPAddr, c.SMTPFrom = "127.0.0.1:25", "nobody" }, "NOTIFIER_SMTP_FROM: must be an address"},
		{"credentials without server", func(c *notifier.Config) { c.SMTPUsername = "u" }, "NOTIFIER_SMTP_USERNAME/NOTIFIER_SMTP_PASSWORD: set without NOTIFIER_SMTP_ADDR"},
		{"password without user", func(c *notifier.Config) { c.SMTPAddr, c.SMTPFrom, c.SMTPPassword = "127.0.0.1:25", "a@b.example", "p" }, "NOTIFIER_SMTP_PASSWORD: set without NOTIFIER_SMTP_USERNAME"},
		{"status url", func(c *notifier.Config) { c.StatusURL = "status.example.com" }, "NOTIFIER_STATUS_URL: must be an absolute http(s) URL"},
		{"attempts", func(c *notifier.Config) { c.WebhookAttempts = 50 }, "NOTIFIER_WEBHOOK_ATTEMPTS: must be 1..10, got 50"},
		{"concurrency", func(c *notifier.Config) { c.Concurrency = -1 }, "NOTIFIER_CONCURRENCY: must be 1..256, got -1"},
		{"no cap", func(c *notifier.Config) { c.CustomerDailyCap = 0 }, ""},
		{"cap", func(c *notifier.Config) { c.CustomerDailyCap = 1001 }, "NOTIFIER_CUSTOMER_DAILY_CAP: must be 0 (no cap)..1000, got 1001"},
		{"digest delay", func(c *notifier.Config) { c.DigestDelay = -time.Second }, "NOTIFIER_DIGEST_DELAY: must be 0..24h, got -1s"},
		{"digest poll", func(c *notifier.Config) { c.DigestPoll = time.Millisecond }, "NOTIFIER_DIGEST_POLL: must be 10ms..1h, got 1ms"},
		{"common", func(c *notifier.Config) { c.NATSURL = "http://x" }, "NATS_URL: must start with nats://"},
		// Zero is no longer a default in disguise: New fills nothing.
		{"no templates dir", func(c *notifier.Config) { c.TemplatesDir = "" }, "NOTIFIER_TEMPLATES_DIR: must not be empty"},
		{"zero webhook timeout", func(c *notifier.Config) { c.WebhookTimeout = 0 }, "NOTIFIER_WEBHOOK_TIMEOUT: must be positive, got 0s"},
		{"zero dedup ttl", func(c *notifier.Config) { c.DedupTTL = 0 }, "NOTIFIER_DEDUP_TTL: must be at least 1h, got 0s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := notifier.DefaultConfig()
			tc.set(&cfg)
			err := cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate error = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestNewRejectsBadFiles(t *testing.T) {
	infra := &lifecycle.Infra{Bus: testkit.Bus(t), Redis: testkit.RedisClient(t)}
	templatesDir := filepath.Join(examplesDir, "templates")
	dir := t.TempDir()
	webhookTeams := filepath.Join(dir, "webhook-teams.yaml")
	writeFile(t, webhookTeams, "teams:\n  billing:\n    - {type: webhook, url: 'https://hooks.example.com/b'}\n")
	emailTeams := filepath.Join(dir, "email-teams.yaml")
	writeFile(t, emailTeams, "teams:\n  billing:\n    - {type: email, to: billing@example.com}\n")
	badTeams := filepath.Join(dir, "bad-teams.yaml")
	writeFile(t, badTeams, "teams:\n  billing:\n    - {type: pager}\n")
	brokenTemplates := t.TempDir()
	writeFile(t, filepath.Join(brokenTemplates, "received.subject.tmpl"), "{{.Nope}}")

	cases := []struct {
		name             string
		templates, teams string
		want             []string
	}{
		{"templates dir missing", filepath.Join(dir, "nope"), "", []string{"NOTIFIER_TEMPLATES_DIR", "nope"}},
		{"templates broken", brokenTemplates, "", []string{"NOTIFIER_TEMPLATES_DIR", filepath.Join(brokenTemplates, "received.subject.tmpl"), filepath.Join(brokenTemplates, "routed.html.tmpl") + ": missing"}},
		{"webhooks without secret", templatesDir, webhookTeams, []string{"NOTIFIER_WEBHOOK_SECRET: required because " + webhookTeams}},
		{"email without smtp", templatesDir, emailTeams, []string{"NOTIFIER_SMTP_ADDR: required because " + emailTeams}},
		{"invalid teams file", templatesDir, badTeams, []string{"NOTIFIER_TEAMS_FILE", badTeams, "teams.billing[0]: type must be webhook or email"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := notifier.DefaultConfig()
			cfg.TemplatesDir, cfg.TeamsFile = tc.templates, tc.teams
			_, err := notifier.New(cfg, infra)
			if err == nil {
				t.Fatal("New succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}
