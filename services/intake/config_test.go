package intake_test

import (
	"strings"
	"testing"
	"time"

	"github.com/feedloop/feedloop/services/intake"
	"github.com/feedloop/feedloop/services/intake/access"
)

var intakeVars = []string{"INTAKE_GRPC_ADDR", "INTAKE_HTTP_ADDR", "INTAKE_IDEMPOTENCY_TTL", "INTAKE_MAX_BODY_BYTES", "INTAKE_NATS_CONCURRENCY", "INTAKE_SHUTDOWN_TIMEOUT",
	"INTAKE_API_KEYS_FILE", "INTAKE_RELOAD_INTERVAL", "INTAKE_RATE_LIMIT", "INTAKE_RATE_BURST", "INTAKE_GRPC_MAX_RECV_BYTES"}

func TestLoadConfigDefaults(t *testing.T) {
	for _, k := range intakeVars {
		t.Setenv(k, "") // empty counts as unset for caarlos0/env
	}
	cfg, err := intake.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.GRPCAddr != ":7001" || cfg.HTTPAddr != ":7002" || cfg.IdempotencyTTL != 720*time.Hour ||
		cfg.MaxBodyBytes != 65536 || cfg.Concurrency != 4 || cfg.ShutdownTimeout != 10*time.Second {
		t.Fatalf("cfg = %+v", cfg)
	}
	// Rate limits are on by default for the binaries; no keys file means
	// unauthenticated submissions (logged by New).
	if cfg.RateLimit != (access.Rate{N: 100, Per: time.Second}) || cfg.RateBurst != 0 || cfg.GRPCMaxRecvBytes != 4<<20 ||
		cfg.APIKeysFile != "" || cfg.ReloadInterval != 5*time.Second {
		t.Fatalf("cfg = %+v", cfg)
	}
	if cfg.NATSURL == "" || cfg.RedisURL == "" {
		t.Fatalf("common config not loaded: %+v", cfg.Common)
	}
}

func TestLoadConfigParses(t *testing.T) {
	t.Setenv("INTAKE_GRPC_ADDR", "127.0.0.1:9001")
	t.Setenv("INTAKE_HTTP_ADDR", ":0")
	t.Setenv("INTAKE_IDEMPOTENCY_TTL", "48h")
	t.Setenv("INTAKE_MAX_BODY_BYTES", "131072")
	t.Setenv("INTAKE_NATS_CONCURRENCY", "8")
	t.Setenv("INTAKE_SHUTDOWN_TIMEOUT", "3s")
	t.Setenv("INTAKE_API_KEYS_FILE", "/etc/keys.yaml")
	t.Setenv("INTAKE_RATE_LIMIT", "6000/m")
	t.Setenv("INTAKE_RATE_BURST", "50")
	t.Setenv("INTAKE_GRPC_MAX_RECV_BYTES", "1048576")
	cfg, err := intake.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.GRPCAddr != "127.0.0.1:9001" || cfg.HTTPAddr != ":0" || cfg.IdempotencyTTL != 48*time.Hour ||
		cfg.MaxBodyBytes != 131072 || cfg.Concurrency != 8 || cfg.ShutdownTimeout != 3*time.Second {
		t.Fatalf("cfg = %+v", cfg)
	}
	if cfg.APIKeysFile != "/etc/keys.yaml" || cfg.RateLimit != (access.Rate{N: 6000, Per: time.Minute}) || cfg.RateBurst != 50 || cfg.GRPCMaxRecvBytes != 1<<20 {
		t.Fatalf("cfg = %+v", cfg)
	}
	t.Setenv("INTAKE_RATE_LIMIT", "0")
	if cfg, err := intake.LoadConfig(); err != nil || !cfg.RateLimit.IsZero() {
		t.Fatalf("INTAKE_RATE_LIMIT=0: %+v, %v; want no limit", cfg.RateLimit, err)
	}
}

func TestValidateNamesVariables(t *testing.T) {
	t.Setenv("INTAKE_GRPC_ADDR", "7001")
	t.Setenv("INTAKE_HTTP_ADDR", "localhost:http-ish")
	t.Setenv("INTAKE_IDEMPOTENCY_TTL", "5m")
	t.Setenv("INTAKE_MAX_BODY_BYTES", "10")
	t.Setenv("INTAKE_NATS_CONCURRENCY", "0")
	t.Setenv("INTAKE_SHUTDOWN_TIMEOUT", "10s")
	t.Setenv("INTAKE_RATE_BURST", "-1")
	t.Setenv("INTAKE_GRPC_MAX_RECV_BYTES", "100")
	t.Setenv("INTAKE_RELOAD_INTERVAL", "1ms")
	_, err := intake.LoadConfig()
	if err == nil {
		t.Fatal("LoadConfig accepted bad values")
	}
	for _, want := range []string{
		`INTAKE_GRPC_ADDR: must be host:port`,
		`INTAKE_HTTP_ADDR: port must be a number`,
		`INTAKE_IDEMPOTENCY_TTL: must be at least NATS_DUPLICATE_WINDOW (10m0s), got 5m0s`,
		`INTAKE_MAX_BODY_BYTES: must be between 1024 and 16777216, got 10`,
		`INTAKE_NATS_CONCURRENCY: must be between 1 and 256, got 0`,
		`INTAKE_RATE_BURST: must be between 0 and 1000000, got -1`,
		`INTAKE_GRPC_MAX_RECV_BYTES: must be between 1024 and 67108864, got 100`,
		`INTAKE_RELOAD_INTERVAL: must be at least 100ms, got 1ms`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestLoadConfigBadRate(t *testing.T) {
	t.Setenv("INTAKE_RATE_LIMIT", "lots")
	_, err := intake.LoadConfig()
	if err == nil || !strings.Contains(err.Error(), "INTAKE_RATE_LIMIT") || !strings.Contains(err.Error(), "100/s") {
		t.Fatalf("err = %v, want it to name INTAKE_RATE_LIMIT and the form", err)
	}
}

func TestLoadConfigParseError(t *testing.T) {
	t.Setenv("INTAKE_IDEMPOTENCY_TTL", "a month")
	_, err := intake.LoadConfig()
	if err == nil || !strings.Contains(err.Error(), "INTAKE_IDEMPOTENCY_TTL") {
		t.Fatalf("err = %v, want it to name INTAKE_IDEMPOTENCY_TTL", err)
	}
}
