package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
)

// MetricsPath is where every service serves its metrics.
const MetricsPath = "/metrics"

// HandlingBuckets are the histogram bounds, in seconds, of work a machine
// does: one handler, one request, one hop of the pipeline.
func HandlingBuckets() []float64 {
	return []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}
}

// LifecycleBuckets are the histogram bounds, in seconds, of work people do:
// time to acknowledge or close an item, from a minute to a month.
func LifecycleBuckets() []float64 {
	return []float64{60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 24 * 3600, 2 * 86400, 4 * 86400, 7 * 86400, 14 * 86400, 30 * 86400}
}

// newMeterProvider returns a meter provider whose metrics the Prometheus
// exporter publishes on the default Prometheus registry (served by
// MetricsHandler, next to the Go runtime and process collectors), and which
// also pushes them over OTLP when an endpoint is configured. The returned
// stop shuts it down and takes its collector off the registry, so a later
// Setup in the same process starts clean.
//
// The names follow Prometheus conventions through the exporter: instrument
// feedloop.messages.processed becomes feedloop_messages_processed_total, a
// histogram in unit "s" gets _seconds. Exemplars (trace ids) are kept for
// measurements made inside a sampled span, the SDK's default filter, and
// shown to scrapers that ask for OpenMetrics.
func newMeterProvider(ctx context.Context, res *resource.Resource) (*sdkmetric.MeterProvider, func(context.Context) error, error) {
	reg := &trackingRegisterer{Registerer: prometheus.DefaultRegisterer}
	prom, err := otelprom.New(
		otelprom.WithRegisterer(reg),
		otelprom.WithoutScopeInfo(),
		otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	opts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(prom)}
	if otlpMetrics() {
		exp, err := otlpmetricgrpc.New(ctx)
		if err != nil {
			reg.unregisterAll()
			return nil, nil, fmt.Errorf("telemetry: otlp metric exporter: %w", err)
		}
		opts = append(opts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
	}
	mp := sdkmetric.NewMeterProvider(opts...)
	return mp, func(ctx context.Context) error {
		reg.unregisterAll()
		return mp.Shutdown(ctx)
	}, nil
}

// otlpMetrics reports whether metrics are pushed over OTLP: when an
// endpoint is set and OTEL_METRICS_EXPORTER does not say "none".
func otlpMetrics() bool {
	if os.Getenv("OTEL_METRICS_EXPORTER") == "none" {
		return false
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") != ""
}

// trackingRegisterer remembers what it registered so shutdown can take it off.
type trackingRegisterer struct {
	prometheus.Registerer
	mu   sync.Mutex
	regs []prometheus.Collector
}

func (r *trackingRegisterer) Register(c prometheus.Collector) error {
	if err := r.Registerer.Register(c); err != nil {
		return err
	}
	r.mu.Lock()
	r.regs = append(r.regs, c)
	r.mu.Unlock()
	return nil
}

func (r *trackingRegisterer) unregisterAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.regs {
		r.Registerer.Unregister(c)
	}
	r.regs = nil
}

// MetricsHandler serves the process's metrics in the Prometheus text format,
// or OpenMetrics (with exemplars) to a scraper that asks for it.
func MetricsHandler() http.Handler {
	return promhttp.HandlerFor(prometheus.DefaultGatherer, promhttp.HandlerOpts{
		EnableOpenMetrics: true,
		ErrorHandling:     promhttp.ContinueOnError,
	})
}

// MetricsServer serves GET /metrics on its own listener, apart from a
// service's public ports: intake's API and the router's status pages face
// company systems and customers, the scrape endpoint faces ops only.
type MetricsServer struct {
	srv *http.Server
	lis net.Listener
	err chan error
}

// HealthPath answers 204 while the metrics server runs.
const HealthPath = "/healthz"

// ServeMetrics listens on addr (port 0 picks a free one) and serves
// MetricsHandler at /metrics, and HealthPath, until Close.
func ServeMetrics(addr string, log *slog.Logger) (*MetricsServer, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("telemetry: metrics listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+MetricsPath, MetricsHandler())
	// Liveness for services with no API port of their own (classifier,
	// notifier): the process is up and serving.
	mux.HandleFunc("GET "+HealthPath, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	m := &MetricsServer{
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)},
		lis: lis,
		err: make(chan error, 1),
	}
	go func() { m.err <- m.srv.Serve(lis) }()
	return m, nil
}

// Addr is the address the server is bound to.
func (m *MetricsServer) Addr() string { return m.lis.Addr().String() }

// Close stops the server, letting a scrape in progress finish.
func (m *MetricsServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := m.srv.Shutdown(ctx)
	if serr := <-m.err; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
