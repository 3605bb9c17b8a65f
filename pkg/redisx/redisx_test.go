package redisx_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/feedloop/feedloop/pkg/redisx"
	"github.com/feedloop/feedloop/pkg/testkit"
)

// Redis calls are traced, but the values they carry (feedback text,
// customer data) never reach a span.
func TestTracesWithoutValues(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	c, err := redisx.Connect(t.Context(), testkit.Redis(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Set(t.Context(), "item", "ada@example.com was charged twice", 0).Err(); err != nil {
		t.Fatal(err)
	}
	var set bool
	for _, s := range rec.Ended() {
		if s.Name() == "set" {
			set = true
		}
		for _, a := range s.Attributes() {
			if strings.Contains(a.Value.Emit(), "ada@example.com") {
				t.Fatalf("span %s carries the value in %s", s.Name(), a.Key)
			}
		}
	}
	if !set {
		t.Fatalf("no span for SET among %d spans", len(rec.Ended()))
	}
}

// A pipeline (and a MULTI/EXEC) is one span named after its distinct
// commands, as redisotel names it, carrying no value either.
func TestPipelineSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	c, err := redisx.Connect(t.Context(), testkit.Redis(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.TxPipelined(t.Context(), func(p redis.Pipeliner) error {
		p.Set(t.Context(), "a", "ada@example.com", 0)
		p.Set(t.Context(), "b", "ada@example.com", 0)
		p.Get(t.Context(), "a")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range rec.Ended() {
		names = append(names, s.Name())
		for _, a := range s.Attributes() {
			if strings.Contains(a.Value.Emit(), "ada@example.com") {
				t.Fatalf("span %s carries the value in %s", s.Name(), a.Key)
			}
		}
		if s.Name() == "redis.pipeline multi set get exec" {
			if got := attrOf(s, "db.redis.num_cmd"); got != "5" {
				t.Errorf("db.redis.num_cmd = %q, want 5", got)
			}
			if got := attrOf(s, "db.system"); got != "redis" {
				t.Errorf("db.system = %q, want redis", got)
			}
		}
	}
	if !slices.Contains(names, "redis.pipeline multi set get exec") || slices.Contains(names, "redis.pipeline multi set set get exec") {
		t.Fatalf("spans %q, want one named redis.pipeline multi set get exec", names)
	}
}

func attrOf(s sdktrace.ReadOnlySpan, key string) string {
	for _, a := range s.Attributes() {
		if string(a.Key) == key {
			return a.Value.Emit()
		}
	}
	return ""
}

// A client given a tracer provider traces there, commands and pipelines,
// not to the global one: each service of `feedloop dev` has its own.
func TestTracesToItsOwnProvider(t *testing.T) {
	global, own := tracetest.NewSpanRecorder(), tracetest.NewSpanRecorder()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(global)))
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	c, err := redisx.Connect(t.Context(), testkit.Redis(t),
		redisx.WithTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(own))))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Set(t.Context(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Pipelined(t.Context(), func(p redis.Pipeliner) error {
		p.Get(t.Context(), "k")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range own.Ended() {
		names = append(names, s.Name())
	}
	if !slices.Contains(names, "set") || !slices.Contains(names, "redis.pipeline get") {
		t.Errorf("own provider's spans %v, want set and redis.pipeline get", names)
	}
	if n := len(global.Ended()); n != 0 {
		t.Errorf("%d spans went to the global provider", n)
	}
}
