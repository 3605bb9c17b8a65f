package console_test

import (
	"testing"
	"time"

	"github.com/feedloop/feedloop/pkg/testkit"
	"github.com/feedloop/feedloop/services/console"
)

// testConfig is the default configuration on a free loopback port, against
// the team API at teamAPI with the templates in templates.
func testConfig(teamAPI, templates string) console.Config {
	cfg := console.DefaultConfig()
	cfg.HTTPAddr, cfg.TeamAPIAddr, cfg.TemplatesDir = "127.0.0.1:0", teamAPI, templates
	return cfg
}

func TestDefaultConfig(t *testing.T) {
	// The session key has no default: every replica needs the same secret.
	testkit.ConfigDefaults(t, console.DefaultConfig(), console.LoadConfig, "CONSOLE_SESSION_KEY_FILE")
	cfg := console.DefaultConfig()
	if cfg.HTTPAddr != ":7006" || cfg.TeamAPIAddr != "router:7003" || cfg.TemplatesDir != "/etc/feedloop/templates" ||
		cfg.SessionTTL != 8*time.Hour || cfg.LogLevel != "info" || cfg.MetricsAddr != ":9464" || cfg.OIDCTeamsClaim != "groups" ||
		cfg.Dev != nil || cfg.TracerProvider != nil {
		t.Errorf("defaults = %+v", cfg)
	}
}
