package lifecycle_test

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/pkg/testkit"
)

// A service's Connect serves /metrics on METRICS_ADDR, with the health of
// both connections, and stops serving at cleanup.
func TestConnectServesMetricsWithConnectionHealth(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	c := lifecycle.Common{
		NATSURL: testkit.NATS(t), RedisURL: testkit.Redis(t), StreamReplicas: 1,
		DuplicateWindow: time.Minute, LogLevel: "error", MetricsAddr: "127.0.0.1:0",
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	infra, cleanup, err := lifecycle.Connect(t.Context(), "lifecycle-test", c)
	if err != nil {
		cleanup()
		t.Fatal(err)
	}
	url := "http://" + infra.MetricsAddr + "/metrics"
	res, err := http.Get(url)
	if err != nil {
		cleanup()
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{"feedloop_redis_up 1", "feedloop_nats_connected 1", `service_name="lifecycle-test"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	cleanup()
	if _, err := http.Get(url); err == nil {
		t.Error("/metrics still served after cleanup")
	}
}

func TestBadMetricsAddrNamesVariable(t *testing.T) {
	t.Setenv("METRICS_ADDR", "9464")
	c, err := lifecycle.LoadEnv[lifecycle.Common]()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "METRICS_ADDR") {
		t.Fatalf("err = %v, want it to name METRICS_ADDR", err)
	}
}

// An empty METRICS_ADDR turns the metrics server off (the env library would
// otherwise give it the default), in a service's config that embeds Common.
func TestEmptyMetricsAddrMeansNone(t *testing.T) {
	type serviceConfig struct {
		lifecycle.Common
		Own string `env:"OWN" envDefault:"x"`
	}
	t.Setenv("METRICS_ADDR", "")
	c, err := lifecycle.LoadEnv[serviceConfig]()
	if err != nil {
		t.Fatal(err)
	}
	if c.MetricsAddr != "" {
		t.Fatalf("METRICS_ADDR= gave %q, want none", c.MetricsAddr)
	}
	os.Unsetenv("METRICS_ADDR")
	if c, _ = lifecycle.LoadEnv[serviceConfig](); c.MetricsAddr != ":9464" {
		t.Fatalf("unset METRICS_ADDR gave %q, want the default :9464", c.MetricsAddr)
	}
}
