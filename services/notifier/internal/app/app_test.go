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
	"google.golang.org/protobuf/proto"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/notifier/internal/app"
	"github.com/feedloop/feedloop/services/notifier/internal/channel/webhook"
	"github.com/feedloop/feedloop/services/notifier/internal/dedup"
	"github.com/feedloop/feedloop/services/notifier/internal/notify"
	"github.com/feedloop/feedloop/services/notifier/internal/recipients"
	"github.com/feedloop/feedloop/services/notifier/internal/templates"
)

type fixture struct {
	h     *app.Handler
	b     *bus.Bus
	hits  *atomic.Int32
	store *dedup.Store
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
	for _, n := range notify.StepNames() {
		samples[n] = notify.Sample(n)
	}
	set, err := templates.Load(filepath.Join("..", "..", "..", "..", "deploy", "examples", "templates"), samples)
	if err != nil {
		t.Fatal(err)
	}
	b := testkit.Bus(t)
	store := dedup.New(testkit.RedisClient(t), time.Minute, time.Hour)
	return fixture{
		b: b, hits: &hits, store: store,
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
	return notify.Delivery{FeedbackID: fid, Step: "received", Channel: "webhook", Recipient: recipients.CustomerWebhook}.Key()
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
