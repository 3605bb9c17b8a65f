package telemetry

import (
	"context"
	"errors"
	"fmt"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Tracers are the tracer providers of several services that run in one
// process (`feedloop dev`, the end-to-end tests): each has its own
// resource, so its spans carry its own service.name as they do when the
// service runs alone, and Tempo's service graph shows one node per
// service, not one for the process.
type Tracers struct {
	byService map[string]*sdktrace.TracerProvider
	exp       sdktrace.SpanExporter // the shared OTLP exporter; nil when none
}

// NewTracers builds a tracer provider per service, each as Setup builds
// it for that service alone: the service's resource (OTEL_RESOURCE_ATTRIBUTES
// apply; OTEL_SERVICE_NAME does not, it would name them all), the
// QuietBackground sampler around OTEL_TRACES_SAMPLER, its own batch
// processor, and the span processors of opts (each added to every
// provider). They export through one OTLP exporter, one connection to the
// collector, when an endpoint is configured. Nothing global is installed:
// the process's own spans still go to Setup's provider. Always call
// Shutdown.
func NewTracers(ctx context.Context, services []string, opts ...Option) (*Tracers, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	exp, err := traceExporter(ctx)
	if err != nil {
		return nil, err
	}
	t := &Tracers{byService: make(map[string]*sdktrace.TracerProvider, len(services)), exp: exp}
	var shared sdktrace.SpanExporter
	if exp != nil {
		shared = sharedExporter{exp}
	}
	for _, service := range services {
		if _, dup := t.byService[service]; dup {
			_ = t.Shutdown(ctx)
			return nil, fmt.Errorf("telemetry: service %q given twice", service)
		}
		res, err := serviceResource(service)
		if err != nil {
			_ = t.Shutdown(ctx)
			return nil, err
		}
		t.byService[service] = newTracerProvider(res, shared, o.spanProcessors)
	}
	return t, nil
}

// Provider is service's tracer provider; nil for a service not given to
// NewTracers.
func (t *Tracers) Provider(service string) trace.TracerProvider {
	if tp, ok := t.byService[service]; ok {
		return tp
	}
	return nil
}

// ForceFlush exports every span ended so far, of every service.
func (t *Tracers) ForceFlush(ctx context.Context) error {
	var errs []error
	for service, tp := range t.byService {
		if err := tp.ForceFlush(ctx); err != nil {
			errs = append(errs, fmt.Errorf("telemetry: flush %s: %w", service, err))
		}
	}
	return errors.Join(errs...)
}

// Shutdown flushes and stops every provider, then closes the exporter
// they share. Spans started afterwards are dropped.
func (t *Tracers) Shutdown(ctx context.Context) error {
	var errs []error
	for service, tp := range t.byService {
		if err := tp.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("telemetry: shut down %s: %w", service, err))
		}
	}
	if t.exp != nil {
		if err := t.exp.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("telemetry: shut down the exporter: %w", err))
		}
	}
	return errors.Join(errs...)
}

// sharedExporter is the one exporter behind several providers: a
// provider's shutdown flushes its spans through it but leaves it open for
// the others; Tracers.Shutdown closes it last. (The OTLP exporter is safe
// for concurrent exports.)
type sharedExporter struct{ sdktrace.SpanExporter }

func (sharedExporter) Shutdown(context.Context) error { return nil }
