package telemetry

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
)

// scrape fetches /metrics from srv, as OpenMetrics when openMetrics is set.
func scrape(t *testing.T, srv *MetricsServer, openMetrics bool) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+srv.Addr()+MetricsPath, nil)
	if openMetrics {
		req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s: %s", res.Status, body)
	}
	return string(body)
}

func TestMetricsAreScrapedWithPrometheusNamesAndTraceExemplars(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	shutdown, err := Setup(t.Context(), "telemetry-test")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ServeMetrics("127.0.0.1:0", Logger("telemetry-test", 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })

	meter := otel.Meter("test")
	things, _ := meter.Int64Counter("feedloop.test.things", metric.WithUnit("{thing}"))
	took, _ := meter.Float64Histogram("feedloop.test.duration", metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(HandlingBuckets()...))
	ctx, span := otel.Tracer("test").Start(context.Background(), "op")
	things.Add(ctx, 2)
	took.Record(ctx, 0.02)
	span.End()

	text := scrape(t, srv, false)
	for _, want := range []string{
		"feedloop_test_things_total 2",
		`feedloop_test_duration_seconds_bucket{le="0.025"} 1`,
		`target_info{service_name="telemetry-test"`,
		"go_goroutines ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, text)
		}
	}
	hz, err := http.Get("http://" + srv.Addr() + HealthPath)
	if err != nil {
		t.Fatal(err)
	}
	hz.Body.Close()
	if hz.StatusCode != http.StatusNoContent {
		t.Errorf("%s: %s", HealthPath, hz.Status)
	}
	om := scrape(t, srv, true)
	if exemplar := `trace_id="` + span.SpanContext().TraceID().String() + `"`; !strings.Contains(om, exemplar) {
		t.Errorf("OpenMetrics scrape lacks the exemplar %s:\n%s", exemplar, om)
	}

	// Shutdown takes the provider's series off the registry, so a second
	// Setup in the same process does not report stale or duplicate ones.
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if text := scrape(t, srv, false); strings.Contains(text, "feedloop_test_things_total") {
		t.Errorf("series still served after shutdown")
	}
	shutdown, err = Setup(t.Context(), "telemetry-test")
	if err != nil {
		t.Fatalf("second Setup: %v", err)
	}
	t.Cleanup(func() { _ = shutdown(context.Background()) })
}
