package app_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/services/notifier/internal/dailycap"
)

// A poll with no digest due starts no span; a due digest is a span of its
// own with its send inside it, so QuietBackground (which drops root Redis
// calls) keeps the digest's work in one trace.
func TestDigestIsASpanIdlePollIsNot(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	f := newFixture(t)
	ctx := context.Background()
	now := time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)
	f.h.Cap, f.h.CapLimit, f.h.Now = dailycap.New(f.rdb, time.Hour), 1, func() time.Time { return now }
	for _, m := range []*bus.Msg{receivedMsg(t, "ev-1", bus.NewID()), receivedMsg(t, "ev-2", bus.NewID())} {
		if err := f.h.Handle(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	digests := func() []sdktrace.ReadOnlySpan {
		var out []sdktrace.ReadOnlySpan
		for _, sp := range rec.Ended() {
			if sp.Name() == "digest.send" {
				out = append(out, sp)
			}
		}
		return out
	}
	if err := f.h.SendDigests(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(digests()); n != 0 {
		t.Fatalf("a poll with nothing due started %d digest.send spans", n)
	}
	now = time.Date(2025, 3, 15, 1, 0, 0, 0, time.UTC)
	if err := f.h.SendDigests(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.hits.Load(); n != 2 {
		t.Fatalf("webhook got %d requests, want 2 (one message, one digest)", n)
	}
	got := digests()
	if len(got) != 1 {
		t.Fatalf("%d digest.send spans for one digest, want 1", len(got))
	}
	children := 0
	for _, sp := range rec.Ended() {
		if sp.Parent().SpanID() == got[0].SpanContext().SpanID() {
			children++
		}
	}
	if children == 0 {
		t.Error("nothing the digest did is a child of digest.send")
	}
}
