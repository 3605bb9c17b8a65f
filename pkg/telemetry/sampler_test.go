package telemetry_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/feedloop/feedloop/pkg/redisx"
	"github.com/feedloop/feedloop/pkg/telemetry"
	"github.com/feedloop/feedloop/pkg/testkit"
)

// poll is one tick of a timer loop shaped like the router's SLA
// scheduler: look for due members; when one is due, fire it inside a span
// of its own (what the loop did is worth following), removing it.
func poll(ctx context.Context, rdb *redis.Client, now int64) (fired int, err error) {
	due, err := rdb.ZRangeByScore(ctx, "timers", &redis.ZRangeBy{Min: "-inf", Max: itoa(now)}).Result()
	if err != nil {
		return 0, err
	}
	for _, m := range due {
		fctx, span := otel.Tracer("test/sla").Start(ctx, "sla.fire", trace.WithAttributes(attribute.String("timer", m)))
		err := rdb.ZRem(fctx, "timers", m).Err()
		span.End()
		if err != nil {
			return fired, err
		}
		fired++
	}
	return fired, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestPollingStartsNoTraceUntilItFires runs a polling loop against a real
// Redis under the tracer provider Setup installs: ticks with nothing due
// export no span (their Redis commands would each be a one-span trace);
// the tick that fires a timer exports the fire span with its Redis call
// as a child.
func TestPollingStartsNoTraceUntilItFires(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	t.Setenv("OTEL_TRACES_SAMPLER", "")
	exp := tracetest.NewInMemoryExporter()
	ctx := context.Background()
	shutdown, err := telemetry.Setup(ctx, "test", telemetry.WithSpanProcessor(sdktrace.NewSimpleSpanProcessor(exp)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shutdown(context.Background()) })

	// Connecting dials and pings: background too, no trace.
	rdb, err := redisx.Connect(ctx, testkit.Redis(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	for now := int64(1); now <= 5; now++ {
		if n, err := poll(ctx, rdb, now); err != nil || n != 0 {
			t.Fatalf("idle tick: fired %d, %v", n, err)
		}
	}
	if spans := exp.GetSpans(); len(spans) != 0 {
		t.Fatalf("idle polling exported %d spans, want none: first %q", len(spans), spans[0].Name)
	}

	// The fixture's own writes carry no span either: proof the Redis
	// instrumentation is live comes from the child span below.
	if err := rdb.ZAdd(ctx, "timers", redis.Z{Score: 7, Member: "item-1"}).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := poll(ctx, rdb, 10); err != nil || n != 1 {
		t.Fatalf("due tick: fired %d, %v", n, err)
	}
	spans := exp.GetSpans()
	names := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		names[s.Name] = s
	}
	fire, ok := names["sla.fire"]
	if !ok || len(spans) != 2 {
		t.Fatalf("exported %v, want sla.fire and its zrem", spanNames(spans))
	}
	zrem, ok := names["zrem"]
	if !ok || zrem.Parent.SpanID() != fire.SpanContext.SpanID() {
		t.Fatalf("zrem is not a child of sla.fire: %v", spanNames(spans))
	}
}

func spanNames(ss tracetest.SpanStubs) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name)
	}
	return out
}

// TestQuietBackgroundRules: which root spans are background, and that a
// parent always decides for its children.
func TestQuietBackgroundRules(t *testing.T) {
	s := telemetry.QuietBackground(sdktrace.AlwaysSample())
	parent := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled,
	}))
	redisAttr := []attribute.KeyValue{attribute.String("db.system", "redis")}
	cases := []struct {
		what  string
		ctx   context.Context
		name  string
		kind  trace.SpanKind
		attrs []attribute.KeyValue
		want  sdktrace.SamplingDecision
	}{
		{"root Redis command", context.Background(), "zrangebyscore", trace.SpanKindClient, redisAttr, sdktrace.Drop},
		{"root redis.dial", context.Background(), "redis.dial", trace.SpanKindClient, redisAttr, sdktrace.Drop},
		{"Redis command inside a handler", parent, "zrangebyscore", trace.SpanKindClient, redisAttr, sdktrace.RecordAndSample},
		{"gRPC health probe", context.Background(), "grpc.health.v1.Health/Check", trace.SpanKindServer, nil, sdktrace.Drop},
		{"HTTP readiness probe", context.Background(), "GET", trace.SpanKindServer, []attribute.KeyValue{attribute.String("url.path", "/readyz")}, sdktrace.Drop},
		{"HTTP submission", context.Background(), "intake POST /v1/feedback", trace.SpanKindServer, []attribute.KeyValue{attribute.String("url.path", "/v1/feedback")}, sdktrace.RecordAndSample},
		{"event published by a timer", context.Background(), "feedback.escalated.billing publish", trace.SpanKindProducer, nil, sdktrace.RecordAndSample},
		{"message handled", context.Background(), "feedback.classified process", trace.SpanKindConsumer, nil, sdktrace.RecordAndSample},
	}
	for _, c := range cases {
		got := s.ShouldSample(sdktrace.SamplingParameters{ParentContext: c.ctx, TraceID: trace.TraceID{2}, Name: c.name, Kind: c.kind, Attributes: c.attrs})
		if got.Decision != c.want {
			t.Errorf("%s: decision %v, want %v", c.what, got.Decision, c.want)
		}
	}
}
