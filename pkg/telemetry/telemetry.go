// Package telemetry sets up OpenTelemetry tracing and metrics from the
// standard OTEL_* environment variables, the Prometheus scrape endpoint, and
// a JSON slog logger that stamps trace ids.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
)

// Setup installs the global tracer and meter providers and the W3C
// propagator. Spans are exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT
// (or the traces-specific variable) is set; the sampler follows
// OTEL_TRACES_SAMPLER, wrapped in QuietBackground so that polling and
// probes start no traces. Metrics are always readable on MetricsHandler and are
// also pushed over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT (or the
// metrics-specific variable) is set. The returned shutdown flushes pending
// spans and metrics; always defer it.
func Setup(ctx context.Context, service string, opts ...Option) (shutdown func(context.Context) error, err error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	if os.Getenv("OTEL_SERVICE_NAME") != "" {
		service = os.Getenv("OTEL_SERVICE_NAME")
	}
	res, err := serviceResource(service)
	if err != nil {
		return nil, err
	}
	exp, err := traceExporter(ctx)
	if err != nil {
		return nil, err
	}
	tp := newTracerProvider(res, exp, o.spanProcessors)
	mp, stopMetrics, err := newMeterProvider(ctx, res)
	if err != nil {
		_ = tp.Shutdown(ctx)
		return nil, err
	}
	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(mp)
	return func(ctx context.Context) error {
		// Metrics first: their last export may carry exemplars of spans
		// that are still to be flushed, and neither depends on the other.
		return errors.Join(stopMetrics(ctx), tp.Shutdown(ctx))
	}, nil
}

// serviceResource is the resource of service's telemetry: the SDK's
// defaults and OTEL_RESOURCE_ATTRIBUTES, with service.name set to service.
func serviceResource(service string) (*resource.Resource, error) {
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(service)))
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	return res, nil
}

// traceExporter is the OTLP exporter when an endpoint is configured, else
// nil: spans are then recorded (logs carry their ids) but not exported.
func traceExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return nil, nil
	}
	exp, err := otlptracegrpc.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("telemetry: otlp exporter: %w", err)
	}
	return exp, nil
}

// newTracerProvider is a provider for res sampling with QuietBackground
// around OTEL_TRACES_SAMPLER, batching to exp (when not nil) and feeding
// the extra processors.
func newTracerProvider(res *resource.Resource, exp sdktrace.SpanExporter, processors []sdktrace.SpanProcessor) *sdktrace.TracerProvider {
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res), sdktrace.WithSampler(QuietBackground(samplerFromEnv()))}
	for _, sp := range processors {
		opts = append(opts, sdktrace.WithSpanProcessor(sp))
	}
	if exp != nil {
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	return sdktrace.NewTracerProvider(opts...)
}

// Option adds to what Setup installs.
type Option func(*options)

type options struct{ spanProcessors []sdktrace.SpanProcessor }

// WithSpanProcessor adds sp to the tracer provider, next to the OTLP
// exporter: tests record the spans of a whole in-process stack with it.
func WithSpanProcessor(sp sdktrace.SpanProcessor) Option {
	return func(o *options) { o.spanProcessors = append(o.spanProcessors, sp) }
}

// Logger returns a JSON logger for service whose records carry trace_id and
// span_id when logged with a context inside a span.
func Logger(service string, level slog.Level) *slog.Logger {
	h := slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})
	return slog.New(traceHandler{h}).With("service", service)
}

type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(as)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}
