package redisx_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/feedloop/feedloop/pkg/redisx"
	"github.com/feedloop/feedloop/pkg/testkit"
)

// BenchmarkCommand is one GET inside a sampled span, as the services make
// them: on a plain client, and on redisx's (tracing on). The difference is
// what the instrumentation costs per command.
func BenchmarkCommand(b *testing.B) {
	prev := otel.GetTracerProvider()
	tp := sdktrace.NewTracerProvider() // samples everything, exports nothing
	otel.SetTracerProvider(tp)
	b.Cleanup(func() { otel.SetTracerProvider(prev); _ = tp.Shutdown(context.Background()) })
	url := testkit.Redis(b)
	traced, err := redisx.Connect(b.Context(), url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = traced.Close() })
	opt, err := redis.ParseURL(url)
	if err != nil {
		b.Fatal(err)
	}
	plain := redis.NewClient(opt)
	b.Cleanup(func() { _ = plain.Close() })
	for _, c := range []struct {
		name string
		rdb  *redis.Client
	}{{"plain", plain}, {"traced", traced}} {
		b.Run(c.name, func(b *testing.B) {
			ctx, span := tp.Tracer("bench").Start(context.Background(), "item")
			defer span.End()
			b.ReportAllocs()
			for b.Loop() {
				if err := c.rdb.Get(ctx, "missing").Err(); err != redis.Nil {
					b.Fatal(err)
				}
			}
		})
	}
}
