package app_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/notifier/internal/app"
	"github.com/feedloop/feedloop/services/notifier/internal/channel/webhook"
	"github.com/feedloop/feedloop/services/notifier/internal/dailycap"
	"github.com/feedloop/feedloop/services/notifier/internal/dedup"
	"github.com/feedloop/feedloop/services/notifier/internal/recipients"
	"github.com/feedloop/feedloop/services/notifier/internal/steps"
	"github.com/feedloop/feedloop/services/notifier/internal/templates"
)

type fixture struct {
	h     *app.Handler
	b     *bus.Bus
	hits  *atomic.Int32
	store *dedup.Store
	rdb   *redis.Client
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	t.Cleanup(srv.Close)
	hook, err := webhook.New(webhook.Options{URL: srv.URL, Secret: []byte("0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	samples := map[string]any{}
	for _, n := range steps.Names() {
		samples[n] = steps.Sample(n)
	}
	set, err := templates.Load(filepath.Join("..", "..", "..", "..", "deploy", "examples", "templates"), samples)
	if err != nil {
		t.Fatal(err)
	}
	b := testkit.Bus(t)
	rdb := testkit.RedisClient(t)
	store := dedup.New(rdb, time.Minute, time.Hour)
	return fixture{
		b: b, hits: &hits, store: store, rdb: rdb,
		h: &app.Handler{
			Templates:  set,
			Recipients: &recipients.Directory{CustomerWebhook: hook},
			Dedup:      store,
			Publisher:  b,
			Log:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		},
	}
}

func receivedMsg(t *testing.T, id, fid string) *bus.Msg {
	ev := &feedloopv1.Event{Id: id, FeedbackId: fid, Payload: &feedloopv1.Event_Received{Received: &feedloopv1.Received{
		Feedback: &feedloopv1.Feedback{Id: fid, Text: "hello", Customer: &feedloopv1.Customer{Id: "c1", Consent: &feedloopv1.Consent{Contact: true}}},
	}}}
	data, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return &bus.Msg{Subject: bus.SubjectReceived, Data: data, Header: nats.Header{}, NumDelivered: 1}
}

func key(fid string) string {
	return steps.Delivery{FeedbackID: fid, Step: "received", Channel: "webhook", Recipient: recipients.CustomerWebhook}.Key()
}

// A claim held by another replica means "in flight": retry later, send nothing.
func TestHeldClaimIsTransient(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	fid := bus.NewID()
	other, err := f.store.Claim(ctx, key(fid)) // another replica is sending
	if err != nil || other.State != dedup.Acquired {
		t.Fatal(other.State, err)
	}
	err = f.h.Handle(ctx, receivedMsg(t, "ev-1", fid))
	if !errors.Is(err, app.ErrInFlight) || bus.IsPermanent(err) {
		t.Fatalf("Handle = %v, want a transient ErrInFlight", err)
	}
	if n := f.hits.Load(); n != 0 {
		t.Fatalf("webhook got %d requests while another replica held the claim", n)
	}

	// The other replica finishes; the retry then sends nothing and records
	// the delivery under the other replica's cause.
	if err := f.store.MarkSent(ctx, other, "ev-other"); err != nil {
		t.Fatal(err)
	}
	if err := f.h.Handle(ctx, receivedMsg(t, "ev-1", fid)); err != nil {
		t.Fatalf("Handle after sent = %v", err)
	}
	if n := f.hits.Load(); n != 0 {
		t.Fatalf("webhook got %d requests for a delivery already made", n)
	}
	s, err := f.b.JetStream().Stream(ctx, bus.StreamFeedback)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(ctx, bus.SubjectNotified)
	if err != nil {
		t.Fatalf("no notified event: %v", err)
	}
	want := bus.DeriveID("ev-other", "notified", "received", "webhook", recipients.CustomerWebhook)
	if got := m.Header.Get(nats.MsgIdHdr); got != want {
		t.Errorf("notified id = %s, want %s (the original cause's)", got, want)
	}
}

func TestSendsOnceAndMarksSent(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	fid := bus.NewID()
	for i := 0; i < 3; i++ {
		if err := f.h.Handle(ctx, receivedMsg(t, "ev-1", fid)); err != nil {
			t.Fatalf("Handle #%d: %v", i+1, err)
		}
	}
	if n := f.hits.Load(); n != 1 {
		t.Fatalf("webhook got %d requests, want 1", n)
	}
	c, err := f.store.Claim(ctx, key(fid))
	if err != nil || c.State != dedup.Sent || c.Cause != "ev-1" {
		t.Fatalf("record = %+v, %v; want sent by ev-1", c, err)
	}
}

func TestUndecodableMessageIsPermanent(t *testing.T) {
	f := newFixture(t)
	err := f.h.Handle(context.Background(), &bus.Msg{Subject: bus.SubjectReceived, Data: []byte{0xff, 0x01}, Header: nats.Header{}})
	if !bus.IsPermanent(err) {
		t.Fatalf("Handle = %v, want permanent", err)
	}
}

// A digest another replica is sending is left for a later tick, and once
// sent is retired without a second send.
func TestDigestInFlightElsewhereIsLeftThenRetired(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)
	f.h.Cap, f.h.CapLimit, f.h.Now = dailycap.New(f.rdb, time.Hour), 1, func() time.Time { return now }
	first, second := bus.NewID(), bus.NewID()
	for _, m := range []*bus.Msg{receivedMsg(t, "ev-1", first), receivedMsg(t, "ev-2", second)} {
		if err := f.h.Handle(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.hits.Load(); n != 1 {
		t.Fatalf("webhook got %d requests, want 1 (cap 1, the second held)", n)
	}
	digest := steps.Delivery{
		FeedbackID: steps.DigestID("2025-03-14", steps.CapIdentity(steps.Customer{ID: "c1"})),
		Step:       "digest", Channel: "webhook", Recipient: recipients.CustomerWebhook,
	}
	other, err := f.store.Claim(ctx, digest.Key())
	if err != nil || other.State != dedup.Acquired {
		t.Fatal(other.State, err)
	}
	now = time.Date(2025, 3, 15, 0, 0, 0, 0, time.UTC)
	if err := f.h.SendDigests(ctx); err != nil {
		t.Fatalf("SendDigests while in flight elsewhere: %v", err)
	}
	if n := f.hits.Load(); n != 1 {
		t.Fatalf("webhook got %d requests while another replica sent the digest", n)
	}
	if due, _ := f.h.Cap.Due(ctx, now, 10); len(due) != 1 {
		t.Fatalf("due = %v, want the digest still due", due)
	}
	if err := f.store.MarkSent(ctx, other, digest.FeedbackID); err != nil {
		t.Fatal(err)
	}
	if err := f.h.SendDigests(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.hits.Load(); n != 1 {
		t.Fatalf("webhook got %d requests, want no second digest", n)
	}
	if due, _ := f.h.Cap.Due(ctx, now, 10); len(due) != 0 {
		t.Fatalf("due = %v, want the digest retired", due)
	}
	// The held message is recorded as told, under its own item and cause.
	s, err := f.b.JetStream().Stream(ctx, bus.StreamFeedback)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(ctx, bus.SubjectNotified)
	if err != nil {
		t.Fatal(err)
	}
	ev := &feedloopv1.Event{}
	if err := proto.Unmarshal(m.Data, ev); err != nil {
		t.Fatal(err)
	}
	if n := ev.GetNotified(); ev.GetFeedbackId() != second || n.GetStep() != feedloopv1.Step_STEP_DIGEST || n.GetCauseEventId() != "ev-2" {
		t.Errorf("last notified = %v", ev)
	}
	// A digest speaks of the customer's other items too: its records do
	// not carry it to each item's teams.
	if n := ev.GetNotified(); n.GetSubject() != "" || n.GetText() != "" {
		t.Errorf("a digest's record carries the digest: %q %q", n.GetSubject(), n.GetText())
	}
}
