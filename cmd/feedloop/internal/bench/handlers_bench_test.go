package bench_test

// Benchmarks of each stage's handler. The services' handlers are internal
// to their modules, so the pure cores are measured through their public
// packages (classify.Pipeline, routing.Tree) and each service as a whole
// through its public New/Run on an embedded NATS and a real Redis: the
// stage drains b.N events prepared before the timer starts, so ns/op is
// the service's cost per event with its consumer, publishes and Redis
// calls, one service at a time.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/cmd/feedloop/internal/bench"
	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/classifier"
	"github.com/feedloop/feedloop/services/classifier/classify"
	"github.com/feedloop/feedloop/services/classifier/rules"
	"github.com/feedloop/feedloop/services/intake"
	"github.com/feedloop/feedloop/services/intake/access"
	"github.com/feedloop/feedloop/services/notifier"
	"github.com/feedloop/feedloop/services/router"
	"github.com/feedloop/feedloop/services/router/routing"
)

func feedback(n int) *feedloopv1.Feedback {
	fb := bench.Item()
	fb.ExternalId = fmt.Sprint("bm-", n)
	fb.Id = bus.DeriveID("feedback", fb.GetSource(), fb.GetExternalId())
	fb.ReceivedAt = timestamppb.Now()
	return fb
}

// BenchmarkClassify is the classifier's work per item: rules, score bands,
// language detection (lingua, the default languages) and PII redaction.
func BenchmarkClassify(b *testing.B) {
	rc, err := rules.Load(filepath.Join(examples, "rules.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	cfg := classifier.DefaultConfig()
	lang, err := classify.NewLanguageDetector(cfg.Languages)
	if err != nil {
		b.Fatal(err)
	}
	p := &classify.Pipeline{Model: rc, Language: lang, MinLanguageConfidence: cfg.LanguageMinConfidence}
	fb := feedback(0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Classify(b.Context(), fb); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRoute is the router's work per item: the routing tree's match
// and the Routed payload.
func BenchmarkRoute(b *testing.B) {
	tree, err := routing.Load(filepath.Join(examples, "routes.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	p, err := bench.BuildPayloads(b.Context(), examples)
	if err != nil {
		b.Fatal(err)
	}
	cl := p.Classified.Classified
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		for _, m := range tree.Match(cl.GetFeedback(), cl.GetClassification()) {
			_ = bench.RoutedFor(cl.GetFeedback(), cl.GetClassification(), m, now)
		}
	}
}

// BenchmarkEventCodec is what every stage pays on the bus per event:
// decoding its input and encoding its output (a Routed event).
func BenchmarkEventCodec(b *testing.B) {
	p, err := bench.BuildPayloads(b.Context(), examples)
	if err != nil {
		b.Fatal(err)
	}
	ev := &feedloopv1.Event{Id: bus.NewID(), FeedbackId: bus.NewID(), OccurredAt: timestamppb.Now(), Payload: p.Routed}
	b.ReportAllocs()
	for b.Loop() {
		data, err := proto.Marshal(ev)
		if err != nil {
			b.Fatal(err)
		}
		if err := proto.Unmarshal(data, &feedloopv1.Event{}); err != nil {
			b.Fatal(err)
		}
	}
}

// infra is one embedded NATS with the streams, and a real Redis.
func infra(b *testing.B) (*lifecycle.Infra, lifecycle.Common) {
	url := testkit.NATS(b)
	bs := testkit.BusAt(b, url)
	redisURL := testkit.Redis(b)
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		b.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	b.Cleanup(func() { _ = rdb.Close() })
	common := lifecycle.MustDefaults[lifecycle.Common]()
	common.NATSURL, common.RedisURL, common.LogLevel = url, redisURL, "warn"
	return &lifecycle.Infra{Bus: bs, Redis: rdb, Log: slog.New(slog.DiscardHandler)}, common
}

// BenchmarkIntakeSubmit is one gRPC Submit through intake: validation, the
// idempotency key in Redis and the received event's publish ack, with as
// many callers as GOMAXPROCS×16.
func BenchmarkIntakeSubmit(b *testing.B) {
	inf, common := infra(b)
	cfg := intake.DefaultConfig()
	cfg.Common, cfg.GRPCAddr, cfg.HTTPAddr = common, "127.0.0.1:0", "127.0.0.1:0"
	cfg.RateLimit = access.Rate{} // the benchmark measures a submission, not the limiter
	svc, err := intake.New(cfg, inf)
	if err != nil {
		b.Fatal(err)
	}
	testkit.Run(b, svc.Run)
	conn, err := grpc.NewClient(svc.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	client := feedloopv1.NewIntakeServiceClient(conn)
	var n atomic.Int64
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			fb := bench.Item()
			fb.ExternalId = fmt.Sprint("bm-", n.Add(1))
			if _, err := client.Submit(context.Background(), &feedloopv1.SubmitRequest{Feedback: fb}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// drain publishes b.N events on subject with the timer stopped, then runs
// the service until count reports b.N outputs.
func drain(b *testing.B, bs *bus.Bus, subject string, event func(n int) *feedloopv1.Event, run func(context.Context) error, count *atomic.Int64) {
	b.Helper()
	for n := range b.N {
		if _, err := bs.Publish(b.Context(), subject, event(n)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	stop := testkit.Run(b, run)
	deadline := time.Now().Add(2 * time.Minute)
	for count.Load() < int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d outputs after 2m", count.Load(), b.N)
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	stop()
}

// countOn counts the messages published on subject.
func countOn(b *testing.B, bs *bus.Bus, subject string) *atomic.Int64 {
	var n atomic.Int64
	sub, err := bs.Conn().Subscribe(subject, func(*nats.Msg) { n.Add(1) })
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sub.Unsubscribe() })
	return &n
}

func receivedAt(n int) *feedloopv1.Event {
	fb := feedback(n)
	fb.OccurredAt = fb.ReceivedAt
	return &feedloopv1.Event{
		Id: bus.DeriveID(fb.GetId(), "received"), FeedbackId: fb.GetId(), OccurredAt: fb.ReceivedAt,
		Payload: &feedloopv1.Event_Received{Received: &feedloopv1.Received{Feedback: fb, StatusToken: bus.NewID()}},
	}
}

// BenchmarkClassifierService is classifier.Run per feedback.received event.
func BenchmarkClassifierService(b *testing.B) {
	inf, common := infra(b)
	cfg := classifier.DefaultConfig()
	cfg.Common, cfg.RulesFile = common, filepath.Join(examples, "rules.yaml")
	svc, err := classifier.New(cfg, inf)
	if err != nil {
		b.Fatal(err)
	}
	drain(b, inf.Bus, bus.SubjectReceived, receivedAt, svc.Run, countOn(b, inf.Bus, bus.SubjectClassified))
}

// BenchmarkRouterService is router.Run per feedback.classified event: the
// route, the routed publish, the read model and SLA index at once, and the
// projector folding both events.
func BenchmarkRouterService(b *testing.B) {
	inf, common := infra(b)
	cfg := router.DefaultConfig()
	cfg.Common, cfg.RoutesFile = common, filepath.Join(examples, "routes.yaml")
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.SLAWarnAt = 0 // as measured before: no warning timers
	svc, err := router.New(cfg, inf)
	if err != nil {
		b.Fatal(err)
	}
	p, err := bench.BuildPayloads(b.Context(), examples)
	if err != nil {
		b.Fatal(err)
	}
	classified := func(n int) *feedloopv1.Event {
		fb := feedback(n)
		return &feedloopv1.Event{
			Id: bus.DeriveID(fb.GetId(), "classified"), FeedbackId: fb.GetId(), OccurredAt: timestamppb.Now(),
			Payload: &feedloopv1.Event_Classified{Classified: &feedloopv1.Classified{Feedback: fb, Classification: p.Classified.Classified.GetClassification()}},
		}
	}
	drain(b, inf.Bus, bus.SubjectClassified, classified, svc.Run, countOn(b, inf.Bus, bus.AllRouted))
}

// BenchmarkNotifierService is notifier.Run per feedback.routed event: the
// plan, the dedup claim, the rendered, signed team webhook to a loopback
// receiver, and the notified publish.
func BenchmarkNotifierService(b *testing.B) {
	inf, common := infra(b)
	var hooks atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		hooks.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	teams := filepath.Join(b.TempDir(), "teams.yaml")
	if err := os.WriteFile(teams, []byte("teams:\n  default:\n    - type: webhook\n      url: "+srv.URL+"/hooks\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg := notifier.DefaultConfig()
	cfg.Common, cfg.TemplatesDir, cfg.TeamsFile = common, filepath.Join(examples, "templates"), teams
	cfg.WebhookSecret, cfg.ConsoleOutput = "bench-secret-0123456789abcdef", io.Discard
	cfg.CustomerDailyCap = 0 // as measured before: every message sent
	svc, err := notifier.New(cfg, inf)
	if err != nil {
		b.Fatal(err)
	}
	p, err := bench.BuildPayloads(b.Context(), examples)
	if err != nil {
		b.Fatal(err)
	}
	routed := func(n int) *feedloopv1.Event {
		fb := feedback(n)
		r := proto.CloneOf(p.Routed.Routed)
		r.Feedback = fb
		return &feedloopv1.Event{
			Id: bus.DeriveID(fb.GetId(), "routed", p.Team), FeedbackId: fb.GetId(), OccurredAt: timestamppb.Now(),
			Payload: &feedloopv1.Event_Routed{Routed: r},
		}
	}
	drain(b, inf.Bus, bus.RoutedSubject(p.Team), routed, svc.Run, &hooks)
}
