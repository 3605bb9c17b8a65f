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

func TestLoadConfigFromEnv(t *testing.T) {
	t.Setenv("NOTIFIER_TEMPLATES_DIR", "/srv/templates")
	t.Setenv("NOTIFIER_CUSTOMER_WEBHOOK_URL", "https://messaging.example.com/hooks/feedloop")
	t.Setenv("NOTIFIER_WEBHOOK_SECRET", "0123456789abcdef")
	t.Setenv("NOTIFIER_SMTP_ADDR", "smtp.example.com:587")
	t.Setenv("NOTIFIER_SMTP_FROM", "Acme <support@acme.example>")
	t.Setenv("NOTIFIER_CONSOLE", "true")
	t.Setenv("NOTIFIER_CUSTOMER_ROUTED", "true")
	cfg, err := notifier.LoadConfig()
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	if cfg.TemplatesDir != "/srv/templates" || !cfg.Console || cfg.SMTPAddr != "smtp.example.com:587" {
		t.Errorf("cfg = %+v", cfg)
	}
	if cfg.DedupTTL != 2160*time.Hour || cfg.WebhookAttempts != 3 || cfg.WebhookTimeout != 10*time.Second || cfg.Concurrency != notifier.DefaultConcurrency {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	if !cfg.CustomerRouted || cfg.CustomerDailyCap != 5 || cfg.DigestDelay != 5*time.Minute || cfg.DigestPoll != 30*time.Second {
		t.Errorf("routed/cap/digest settings = %v %d %s %s", cfg.CustomerRouted, cfg.CustomerDailyCap, cfg.DigestDelay, cfg.DigestPoll)
	}
	if cfg.ConsoleOutput != nil || cfg.Clock != nil {
		t.Error("Go-only fields set from the environment")
	}
}

func TestLoadConfigNamesBadVariables(t *testing.T) {
	t.Setenv("NOTIFIER_CUSTOMER_WEBHOOK_URL", "ftp://nope")
	t.Setenv("NOTIFIER_SMTP_ADDR", "smtp.example.com")
	t.Setenv("NOTIFIER_DEDUP_TTL", "5m")
	t.Setenv("NOTIFIER_CUSTOMER_DAILY_CAP", "-1")
	t.Setenv("NOTIFIER_DIGEST_DELAY", "48h")
	_, err := notifier.LoadConfig()
	if err == nil {
		t.Fatal("LoadConfig accepted bad variables")
	}
	for _, want := range []string{
		"NOTIFIER_CUSTOMER_WEBHOOK_URL: must be an absolute http(s) URL",
		"NOTIFIER_WEBHOOK_SECRET: required when NOTIFIER_CUSTOMER_WEBHOOK_URL is set",
		`NOTIFIER_SMTP_ADDR: must be host:port, got "smtp.example.com"`,
		"NOTIFIER_SMTP_FROM: required when NOTIFIER_SMTP_ADDR is set",
		"NOTIFIER_DEDUP_TTL: must be at least 1h",
		"NOTIFIER_CUSTOMER_DAILY_CAP: must be 0 (no cap)..1000, got -1",
		"NOTIFIER_DIGEST_DELAY: must be 0..24h, got 48h0m0s",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func validCommon() lifecycle.Common {
	return lifecycle.Common{NATSURL: "nats://127.0.0.1:4222", RedisURL: "redis://127.0.0.1:6379/0", StreamReplicas: 1, DuplicateWindow: time.Minute, LogLevel: "info"}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  notifier.Config
		want string // "" = valid
	}{
		{"zero values mean defaults", notifier.Config{Common: validCommon()}, ""},
		{"short secret", notifier.Config{Common: validCommon(), WebhookSecret: "short"}, "NOTIFIER_WEBHOOK_SECRET: must be at least 16 bytes"},
		{"rotation", notifier.Config{Common: validCommon(), WebhookSecret: "0123456789abcdef", WebhookSecretPrevious: "fedcba9876543210"}, ""},
		{"short previous secret", notifier.Config{Common: validCommon(), WebhookSecret: "0123456789abcdef", WebhookSecretPrevious: "old"}, "NOTIFIER_WEBHOOK_SECRET_PREVIOUS: must be at least 16 bytes, got 3"},
		{"previous without current", notifier.Config{Common: validCommon(), WebhookSecretPrevious: "fedcba9876543210"}, "NOTIFIER_WEBHOOK_SECRET_PREVIOUS: set without NOTIFIER_WEBHOOK_SECRET"},
		{"previous same as current", notifier.Config{Common: validCommon(), WebhookSecret: "0123456789abcdef", WebhookSecretPrevious: "0123456789abcdef"}, "NOTIFIER_WEBHOOK_SECRET_PREVIOUS: the same as NOTIFIER_WEBHOOK_SECRET"},
		{"bad from", notifier.Config{Common: validCommon(), SMTPAddr: "127.0.0.1:25", SMTPFrom: "nobody"}, "NOTIFIER_SMTP_FROM: must be an address"},
		{"credentials without server", notifier.Config{Common: validCommon(), SMTPUsername: "u"}, "NOTIFIER_SMTP_USERNAME/NOTIFIER_SMTP_PASSWORD: set without NOTIFIER_SMTP_ADDR"},
		{"password without user", notifier.Config{Common: validCommon(), SMTPAddr: "127.0.0.1:25", SMTPFrom: "a@b.example", SMTPPassword: "p"}, "NOTIFIER_SMTP_PASSWORD: set without NOTIFIER_SMTP_USERNAME"},
		{"status url", notifier.Config{Common: validCommon(), StatusURL: "status.example.com"}, "NOTIFIER_STATUS_URL: must be an absolute http(s) URL"},
		{"attempts", notifier.Config{Common: validCommon(), WebhookAttempts: 50}, "NOTIFIER_WEBHOOK_ATTEMPTS: must be 1..10, got 50"},
		{"concurrency", notifier.Config{Common: validCommon(), Concurrency: -1}, "NOTIFIER_CONCURRENCY: must be 1..256, got -1"},
		{"no cap", notifier.Config{Common: validCommon(), CustomerDailyCap: 0}, ""},
		{"cap", notifier.Config{Common: validCommon(), CustomerDailyCap: 1001}, "NOTIFIER_CUSTOMER_DAILY_CAP: must be 0 (no cap)..1000, got 1001"},
		{"digest delay", notifier.Config{Common: validCommon(), DigestDelay: -time.Second}, "NOTIFIER_DIGEST_DELAY: must be 0..24h, got -1s"},
		{"digest poll", notifier.Config{Common: validCommon(), DigestPoll: time.Millisecond}, "NOTIFIER_DIGEST_POLL: must be 10ms..1h, got 1ms"},
		{"common", notifier.Config{Common: lifecycle.Common{NATSURL: "http://x", RedisURL: "redis://x", StreamReplicas: 1, DuplicateWindow: time.Minute, LogLevel: "info"}}, "NATS_URL: must start with nats://"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
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
		name string
		cfg  notifier.Config
		want []string
	}{
		{"templates dir missing", notifier.Config{TemplatesDir: filepath.Join(dir, "nope")}, []string{"NOTIFIER_TEMPLATES_DIR", "nope"}},
		{"templates broken", notifier.Config{TemplatesDir: brokenTemplates}, []string{"NOTIFIER_TEMPLATES_DIR", filepath.Join(brokenTemplates, "received.subject.tmpl"), filepath.Join(brokenTemplates, "routed.html.tmpl") + ": missing"}},
		{"webhooks without secret", notifier.Config{TemplatesDir: templatesDir, TeamsFile: webhookTeams}, []string{"NOTIFIER_WEBHOOK_SECRET: required because " + webhookTeams}},
		{"email without smtp", notifier.Config{TemplatesDir: templatesDir, TeamsFile: emailTeams}, []string{"NOTIFIER_SMTP_ADDR: required because " + emailTeams}},
		{"invalid teams file", notifier.Config{TemplatesDir: templatesDir, TeamsFile: badTeams}, []string{"NOTIFIER_TEAMS_FILE", badTeams, "teams.billing[0]: type must be webhook or email"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Common = validCommon()
			_, err := notifier.New(tc.cfg, infra)
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
