package redisx_test

import (
	"context"
	"strings"
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

// BenchmarkPipeline is a MULTI/EXEC of three commands inside a sampled
// span (the projector's and the notifier's shape), plain and traced.
func BenchmarkPipeline(b *testing.B) {
	prev := otel.GetTracerProvider()
	tp := sdktrace.NewTracerProvider()
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
	value := strings.Repeat("x", 600) // an encoded item's size
	for _, c := range []struct {
		name string
		rdb  *redis.Client
	}{{"plain", plain}, {"traced", traced}} {
		b.Run(c.name, func(b *testing.B) {
			ctx, span := tp.Tracer("bench").Start(context.Background(), "item")
			defer span.End()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
					p.Set(ctx, "item", value, 0)
					p.ZAdd(ctx, "open", redis.Z{Score: 1, Member: "item"})
					p.HSet(ctx, "h", "f", value)
					return nil
				}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
