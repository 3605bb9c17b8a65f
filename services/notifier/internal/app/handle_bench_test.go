package app_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/notifier/internal/app"
	"github.com/feedloop/feedloop/services/notifier/internal/channel"
	"github.com/feedloop/feedloop/services/notifier/internal/channel/webhook"
	"github.com/feedloop/feedloop/services/notifier/internal/dedup"
	"github.com/feedloop/feedloop/services/notifier/internal/recipients"
	"github.com/feedloop/feedloop/services/notifier/internal/steps"
	"github.com/feedloop/feedloop/services/notifier/internal/teams"
	"github.com/feedloop/feedloop/services/notifier/internal/templates"
)

type teamFixture struct {
	h     *app.Handler
	hits  *atomic.Int64
	trips *testkit.RedisTrips
}

// newTeamFixture is the notifier as `feedloop bench` runs it: routed
// events alerting one team by a signed webhook, delivery records guarded
// by a rebuild's ready key.
func newTeamFixture(tb testing.TB) teamFixture {
	tb.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	tb.Cleanup(srv.Close)
	hook, err := webhook.New(webhook.Options{URL: srv.URL + "/hooks", Secret: []byte("bench-secret-0123456789abcdef")})
	if err != nil {
		tb.Fatal(err)
	}
	tf, err := teams.Parse([]byte("teams:\n  default:\n    - type: webhook\n      url: " + srv.URL + "/hooks\n"))
	if err != nil {
		tb.Fatal(err)
	}
	dir := &recipients.Directory{Teams: tf, TeamWebhooks: map[string]channel.Sender{}}
	for _, c := range tf.For("billing") {
		dir.TeamWebhooks[recipients.TeamWebhookKey(teams.Default, c.Name)] = hook
	}
	samples := map[string]any{}
	for _, n := range steps.Names() {
		samples[n] = steps.Sample(n)
	}
	set, err := templates.Load(filepath.Join("..", "..", "..", "..", "deploy", "examples", "templates"), samples)
	if err != nil {
		tb.Fatal(err)
	}
	rdb := testkit.RedisClient(tb)
	const ready = "notify:rebuild:ready"
	if err := rdb.Set(context.Background(), ready, "1", 0).Err(); err != nil {
		tb.Fatal(err)
	}
	trips := &testkit.RedisTrips{}
	rdb.AddHook(trips)
	return teamFixture{
		hits: &hits, trips: trips,
		h: &app.Handler{
			Templates:  set,
			Recipients: dir,
			Dedup:      dedup.New(rdb, time.Minute, time.Hour).Guarded(ready),
			Publisher:  testkit.Bus(tb),
			Log:        slog.New(slog.DiscardHandler),
		},
	}
}

func routedMsg(tb testing.TB) *bus.Msg {
	fid := bus.NewID()
	ev := &feedloopv1.Event{
		Id: bus.DeriveID(fid, "routed", "billing"), FeedbackId: fid, OccurredAt: timestamppb.Now(),
		Payload: &feedloopv1.Event_Routed{Routed: &feedloopv1.Routed{
			Feedback: &feedloopv1.Feedback{
				Id: fid, Source: "zendesk", Channel: feedloopv1.Channel_CHANNEL_EMAIL,
				Subject: "Charged twice", Text: "Card 4111 1111 1111 1111 was charged twice for my March invoice.",
				Customer:   &feedloopv1.Customer{Id: "cus_1", Email: "ada@example.com", Name: "Ada", Locale: "de-CH"},
				ReceivedAt: timestamppb.Now(),
			},
			Classification: &feedloopv1.Classification{
				Topics:       []*feedloopv1.TopicScore{{Topic: "billing", Confidence: 0.9}, {Topic: "refund", Confidence: 0.4}},
				Sentiment:    feedloopv1.Sentiment_SENTIMENT_NEGATIVE,
				Urgency:      feedloopv1.Urgency_URGENCY_HIGH,
				RedactedText: "Card [CARD] was charged twice for my March invoice.",
			},
			Assignment: &feedloopv1.Assignment{
				Team: "billing", Route: "root/billing", Priority: feedloopv1.Priority_PRIORITY_URGENT,
				AcknowledgeBy: timestamppb.New(time.Now().Add(4 * time.Hour)), ResolveBy: timestamppb.New(time.Now().Add(72 * time.Hour)),
			},
		}},
	}
	data, err := proto.Marshal(ev)
	if err != nil {
		tb.Fatal(err)
	}
	return &bus.Msg{Subject: bus.RoutedSubject("billing"), Data: data, Header: nats.Header{}, NumDelivered: 1}
}

// A routed event alerting one team by webhook costs two Redis round trips:
// the claim (with the ready check in it) and the mark.
func TestRoutedEventRedisRoundTrips(t *testing.T) {
	f := newTeamFixture(t)
	ctx := context.Background()
	// The first claim on a fresh Redis loads the script (NOSCRIPT, EVAL).
	if err := f.h.Handle(ctx, routedMsg(t)); err != nil {
		t.Fatal(err)
	}
	m := routedMsg(t)
	f.trips.Take()
	if err := f.h.Handle(ctx, m); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.trips.Take(); got != 2 {
		t.Errorf("first handling: %d Redis round trips, want 2 (claim, mark)", got)
	}
	if err := f.h.Handle(ctx, m); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.trips.Take(); got != 1 {
		t.Errorf("redelivery: %d Redis round trips, want 1 (the claim answering sent)", got)
	}
	if n := f.hits.Load(); n != 2 {
		t.Errorf("webhook got %d requests, want 2", n)
	}
}

// BenchmarkHandleRouted is Handle of one routed event alerting one team by
// a signed webhook to a loopback receiver, as in `feedloop bench`.
// cpu-ns/op is the process's CPU per event (NATS server and receiver
// included, redis-server not), steadier than ns/op on a shared machine.
func BenchmarkHandleRouted(b *testing.B) {
	f := newTeamFixture(b)
	ctx := context.Background()
	msgs := make([]*bus.Msg, b.N)
	for i := range msgs {
		msgs[i] = routedMsg(b)
	}
	f.trips.Take()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for _, m := range msgs {
		if err := f.h.Handle(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
	trips, _ := f.trips.Take()
	b.ReportMetric(float64(trips)/float64(b.N), "redis-trips/op")
	if n := f.hits.Load(); n != int64(b.N) {
		b.Fatalf("webhook got %d requests, want %d", n, b.N)
	}
}
