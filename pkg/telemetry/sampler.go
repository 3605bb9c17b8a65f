package telemetry

import (
	"log/slog"
	"os"
	"strconv"
	"strings"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// QuietBackground wraps base so that background work starts no trace of
// its own: a root span (no parent in its context) is dropped when it is
//   - a datastore client call (db.system set: Redis polling, redis.dial of
//     a pool refill): with no request or message behind it, it is a poll,
//     a timer scan or a rebuild check that found nothing to do;
//   - a health check or scrape (gRPC grpc.health.v1.Health, HTTP /healthz,
//     /readyz, /metrics): probes, every few seconds per pod.
//
// Work worth following starts its own span first (a message handled, an
// event published, a timer fired): its datastore calls are children of it
// and base decides as usual. Spans with a parent are always base's call.
func QuietBackground(base sdktrace.Sampler) sdktrace.Sampler {
	return quiet{base}
}

type quiet struct{ base sdktrace.Sampler }

func (q quiet) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	if !trace.SpanContextFromContext(p.ParentContext).IsValid() && background(p) {
		return sdktrace.SamplingResult{Decision: sdktrace.Drop}
	}
	return q.base.ShouldSample(p)
}

func (q quiet) Description() string { return "QuietBackground{" + q.base.Description() + "}" }

// background reports whether a root span is background work.
func background(p sdktrace.SamplingParameters) bool {
	if strings.HasPrefix(p.Name, "grpc.health.v1.Health/") {
		return true
	}
	for _, a := range p.Attributes {
		switch a.Key {
		case "db.system", "db.system.name":
			if p.Kind == trace.SpanKindClient {
				return true
			}
		case "url.path", "http.target", "http.route":
			switch a.Value.AsString() {
			case "/healthz", "/readyz", "/metrics":
				return true
			}
		case "rpc.service":
			if a.Value.AsString() == "grpc.health.v1.Health" {
				return true
			}
		}
	}
	return false
}

// samplerFromEnv is the sampler OTEL_TRACES_SAMPLER and
// OTEL_TRACES_SAMPLER_ARG name, as the SDK reads them (it does only when
// no sampler is given, and Setup gives QuietBackground).
func samplerFromEnv() sdktrace.Sampler {
	name := strings.ToLower(strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER")))
	arg := strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER_ARG"))
	ratio := func() float64 {
		if arg == "" {
			return 1
		}
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			slog.Warn("telemetry: OTEL_TRACES_SAMPLER_ARG must be a ratio in [0, 1]; using 1", "value", arg)
			return 1
		}
		return r
	}
	switch name {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample())
	case "always_on":
		return sdktrace.AlwaysSample()
	case "always_off":
		return sdktrace.NeverSample()
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio())
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample())
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio()))
	default:
		slog.Warn("telemetry: unknown OTEL_TRACES_SAMPLER; using parentbased_always_on", "value", name)
		return sdktrace.ParentBased(sdktrace.AlwaysSample())
	}
}
