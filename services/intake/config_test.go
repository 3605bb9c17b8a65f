package intake_test

import (
	"testing"
	"time"

	"github.com/feedloop/feedloop/pkg/testkit"
	"github.com/feedloop/feedloop/services/intake"
	"github.com/feedloop/feedloop/services/intake/access"
)

func TestDefaultConfig(t *testing.T) {
	testkit.ConfigDefaults(t, intake.DefaultConfig(), intake.LoadConfig)
	cfg := intake.DefaultConfig()
	if cfg.GRPCAddr != ":7001" || cfg.HTTPAddr != ":7002" || cfg.IdempotencyTTL != 720*time.Hour ||
		cfg.MaxBodyBytes != 65536 || cfg.Concurrency != 4 || cfg.ShutdownTimeout != 10*time.Second {
		t.Fatalf("cfg = %+v", cfg)
	}
	// Rate limits are on by default; no keys file means unauthenticated
	// submissions (logged by New).
	if cfg.RateLimit != (access.Rate{N: 100, Per: time.Second}) || cfg.RateBurst != 0 || cfg.GRPCMaxRecvBytes != 4<<20 ||
		cfg.APIKeysFile != "" || cfg.ReloadInterval != 5*time.Second {
		t.Fatalf("cfg = %+v", cfg)
	}
	if cfg.NATSURL == "" || cfg.RedisURL == "" {
		t.Fatalf("common config not loaded: %+v", cfg.Common)
	}
}

func TestLoadConfigParses(t *testing.T) {
	cfg := testkit.LoadConfig(t, intake.LoadConfig, map[string]string{
		"INTAKE_GRPC_ADDR":           "127.0.0.1:9001",
		"INTAKE_HTTP_ADDR":           ":0",
		"INTAKE_IDEMPOTENCY_TTL":     "48h",
		"INTAKE_MAX_BODY_BYTES":      "131072",
		"INTAKE_NATS_CONCURRENCY":    "8",
		"INTAKE_SHUTDOWN_TIMEOUT":    "3s",
		"INTAKE_API_KEYS_FILE":       "/etc/keys.yaml",
		"INTAKE_RATE_LIMIT":          "6000/m",
		"INTAKE_RATE_BURST":          "50",
		"INTAKE_GRPC_MAX_RECV_BYTES": "1048576",
	})
	if cfg.GRPCAddr != "127.0.0.1:9001" || cfg.HTTPAddr != ":0" || cfg.IdempotencyTTL != 48*time.Hour ||
		cfg.MaxBodyBytes != 131072 || cfg.Concurrency != 8 || cfg.ShutdownTimeout != 3*time.Second {
		t.Fatalf("cfg = %+v", cfg)
	}
	if cfg.APIKeysFile != "/etc/keys.yaml" || cfg.RateLimit != (access.Rate{N: 6000, Per: time.Minute}) || cfg.RateBurst != 50 || cfg.GRPCMaxRecvBytes != 1<<20 {
		t.Fatalf("cfg = %+v", cfg)
	}
	if cfg := testkit.LoadConfig(t, intake.LoadConfig, map[string]string{"INTAKE_RATE_LIMIT": "0"}); !cfg.RateLimit.IsZero() {
		t.Fatalf("INTAKE_RATE_LIMIT=0: %+v; want no limit", cfg.RateLimit)
	}
}

func TestValidateNamesVariables(t *testing.T) {
	testkit.ConfigErrors(t, intake.LoadConfig, map[string]string{
		"INTAKE_GRPC_ADDR":           "7001",
		"INTAKE_HTTP_ADDR":           "localhost:http-ish",
		"INTAKE_IDEMPOTENCY_TTL":     "5m",
		"INTAKE_MAX_BODY_BYTES":      "10",
		"INTAKE_NATS_CONCURRENCY":    "0",
		"INTAKE_SHUTDOWN_TIMEOUT":    "10s",
		"INTAKE_RATE_BURST":          "-1",
		"INTAKE_GRPC_MAX_RECV_BYTES": "100",
		"INTAKE_RELOAD_INTERVAL":     "1ms",
	},
		`INTAKE_GRPC_ADDR: must be host:port`,
		`INTAKE_HTTP_ADDR: port must be a number`,
		`INTAKE_IDEMPOTENCY_TTL: must be at least NATS_DUPLICATE_WINDOW (10m0s), got 5m0s`,
		`INTAKE_MAX_BODY_BYTES: must be between 1024 and 16777216, got 10`,
		`INTAKE_NATS_CONCURRENCY: must be between 1 and 256, got 0`,
		`INTAKE_RATE_BURST: must be between 0 and 1000000, got -1`,
		`INTAKE_GRPC_MAX_RECV_BYTES: must be between 1024 and 67108864, got 100`,
		`INTAKE_RELOAD_INTERVAL: must be at least 100ms, got 1ms`,
	)
}

func TestLoadConfigBadRate(t *testing.T) {
	// The error names the variable and shows the form.
	testkit.ConfigErrors(t, intake.LoadConfig, map[string]string{"INTAKE_RATE_LIMIT": "lots"}, "INTAKE_RATE_LIMIT", "100/s")
}

func TestLoadConfigParseError(t *testing.T) {
	testkit.ConfigErrors(t, intake.LoadConfig, map[string]string{"INTAKE_IDEMPOTENCY_TTL": "a month"}, "INTAKE_IDEMPOTENCY_TTL")
}
