package router_test

import (
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/pkg/testkit"
	"github.com/feedloop/feedloop/services/router"
)

func TestDefaultConfig(t *testing.T) {
	testkit.ConfigDefaults(t, router.DefaultConfig(), router.LoadConfig)
	cfg := router.DefaultConfig()
	if cfg.RoutesFile != "/etc/feedloop/routes.yaml" || cfg.GRPCAddr != ":7003" || cfg.HTTPAddr != ":7004" || cfg.Concurrency != 16 ||
		cfg.ReloadInterval != 5*time.Second || cfg.SLAWarnAt != 0.8 || cfg.SLATick != time.Second || cfg.TeamTokensFile != "" {
		t.Errorf("defaults = %+v", cfg)
	}
}

func TestLoadConfigFromEnv(t *testing.T) {
	cfg := testkit.LoadConfig(t, router.LoadConfig, map[string]string{
		"ROUTER_ROUTES_FILE":     "/srv/routes.yaml",
		"ROUTER_GRPC_ADDR":       "127.0.0.1:9000",
		"ROUTER_CONCURRENCY":     "16",
		"ROUTER_RELOAD_INTERVAL": "30s",
	})
	if cfg.RoutesFile != "/srv/routes.yaml" || cfg.GRPCAddr != "127.0.0.1:9000" || cfg.Concurrency != 16 || cfg.ReloadInterval != 30*time.Second {
		t.Errorf("config = %+v", cfg)
	}
}

func TestValidateNamesEachVariable(t *testing.T) {
	testkit.ConfigErrors(t, router.LoadConfig, map[string]string{
		"ROUTER_GRPC_ADDR":       "7003",
		"ROUTER_CONCURRENCY":     "0",
		"ROUTER_RELOAD_INTERVAL": "1ms",
		"ROUTER_HTTP_ADDR":       "x",
		"ROUTER_SLA_WARN_AT":     "1",
		"ROUTER_SLA_TICK":        "1ms",
		"NATS_URL":               "http://x",
	},
		`ROUTER_GRPC_ADDR: must be host:port (host may be empty, port 0 picks a free one), got "7003"`,
		"ROUTER_CONCURRENCY: must be between 1 and 1024, got 0",
		"ROUTER_RELOAD_INTERVAL: must be at least 100ms, got 1ms",
		"ROUTER_HTTP_ADDR: must be host:port",
		"ROUTER_SLA_WARN_AT: must be at least 0 and below 1, got 1",
		"ROUTER_SLA_TICK: must be between 10ms and 1m, got 1ms",
		"NATS_URL:",
	)
}

func TestValidateInGo(t *testing.T) {
	cfg := router.DefaultConfig()
	cfg.RoutesFile = ""
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "ROUTER_ROUTES_FILE: must not be empty") {
		t.Errorf("Validate with no routes file = %v", err)
	}
	cfg.RoutesFile, cfg.GRPCAddr = "x.yaml", "127.0.0.1:0"
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate with port 0 = %v, want nil", err)
	}
}

func TestNewFailsClearly(t *testing.T) {
	infra := &lifecycle.Infra{Bus: testkit.Bus(t), Redis: testkit.RedisClient(t), Log: slog.New(slog.DiscardHandler)}
	dir := t.TempDir()
	good := filepath.Join(dir, "routes.yaml")
	if err := os.WriteFile(good, []byte(routesYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("route:\n  priority: high\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	with := func(routes string, set func(*router.Config)) router.Config {
		cfg := testConfig(routes, "")
		if set != nil {
			set(&cfg)
		}
		return cfg
	}
	for name, tc := range map[string]struct {
		cfg  router.Config
		want []string
	}{
		"missing routes file": {with(filepath.Join(dir, "nope.yaml"), nil),
			[]string{"ROUTER_ROUTES_FILE", "nope.yaml", "no such file"}},
		"invalid routes file": {with(bad, nil),
			[]string{"ROUTER_ROUTES_FILE", bad, "route: the root route must have a team"}},
		"port taken": {with(good, func(c *router.Config) { c.GRPCAddr = busy.Addr().String() }),
			[]string{"ROUTER_GRPC_ADDR", "address already in use"}},
		"bad address": {with(good, func(c *router.Config) { c.GRPCAddr = "nowhere" }),
			[]string{"ROUTER_GRPC_ADDR: must be host:port"}},
		"http port taken": {with(good, func(c *router.Config) { c.HTTPAddr = busy.Addr().String() }),
			[]string{"ROUTER_HTTP_ADDR", "address already in use"}},
		"missing tokens file": {with(good, func(c *router.Config) { c.TeamTokensFile = filepath.Join(dir, "tokens.yaml") }),
			[]string{"ROUTER_TEAM_TOKENS_FILE", "no such file"}},
		"invalid tokens file": {with(good, func(c *router.Config) { c.TeamTokensFile = bad }),
			[]string{"ROUTER_TEAM_TOKENS_FILE", bad, "field route not found"}},
	} {
		_, err := router.New(tc.cfg, infra)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: New error = %v, want it to contain %q", name, err, w)
			}
		}
	}
}

func TestNewNeedsRedis(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "routes.yaml")
	if err := os.WriteFile(good, []byte(routesYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := router.New(testConfig(good, ""), &lifecycle.Infra{Bus: testkit.Bus(t)})
	if err == nil || !strings.Contains(err.Error(), "REDIS_URL is required") {
		t.Fatalf("err = %v", err)
	}
}
