package intake_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/intake"
	"github.com/feedloop/feedloop/services/intake/access"
)

// env is one running intake against a real NATS and a real Redis.
type env struct {
	bus  *bus.Bus
	rdb  *redis.Client
	svc  *intake.Service
	grpc feedloopv1.IntakeServiceClient
	conn *grpc.ClientConn
	http *http.Client
	base string
	// logs holds what the service logged at Warn and above.
	logs *testkit.SyncBuffer
}

// start runs intake on fresh infrastructure until the test ends; cfg's
// addresses default to free loopback ports.
func start(t *testing.T, cfg intake.Config) *env {
	t.Helper()
	b := testkit.Bus(t)
	rdb := testkit.RedisClient(t)
	return startOn(t, cfg, b, rdb)
}

// testConfig is the default configuration on free loopback ports and
// without a rate limit, which only the rate limit tests set: other tests
// submit from one source as fast as they can.
func testConfig() intake.Config {
	cfg := intake.DefaultConfig()
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.RateLimit = access.Rate{}
	return cfg
}

func startOn(t *testing.T, cfg intake.Config, b *bus.Bus, rdb *redis.Client) *env {
	t.Helper()
	logs := &testkit.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(t.Output(), logs), &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, err := intake.New(cfg, &lifecycle.Infra{Bus: b, Redis: rdb, Log: log})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	testkit.Run(t, svc.Run)
	conn, err := grpc.NewClient(svc.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	hc := &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(hc.CloseIdleConnections)
	return &env{bus: b, rdb: rdb, svc: svc, grpc: feedloopv1.NewIntakeServiceClient(conn), conn: conn, http: hc, base: "http://" + svc.HTTPAddr(), logs: logs}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// received returns every event stored on feedback.received, in order, with
// its Nats-Msg-Id.
func (e *env) received(t *testing.T) ([]*feedloopv1.Event, []string) {
	t.Helper()
	var evs []*feedloopv1.Event
	var ids []string
	for _, raw := range testkit.Messages(t, e.bus, bus.StreamFeedback, bus.SubjectReceived) {
		ev := &feedloopv1.Event{}
		if err := proto.Unmarshal(raw.Data, ev); err != nil {
			t.Fatalf("decode event %d: %v", raw.Sequence, err)
		}
		evs = append(evs, ev)
		ids = append(ids, raw.Header.Get(nats.MsgIdHdr))
	}
	return evs, ids
}

// receivedCount is the number of messages on feedback.received, per the
// stream's own subject accounting.
func (e *env) receivedCount(t *testing.T) uint64 {
	t.Helper()
	ctx := ctxT(t)
	st, err := e.bus.JetStream().Stream(ctx, bus.StreamFeedback)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(bus.SubjectReceived))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[bus.SubjectReceived]
}

// feedbackCount is the number of messages on the FEEDBACK stream, every
// subject.
func (e *env) feedbackCount(t *testing.T) uint64 { return e.streamMsgs(t, bus.StreamFeedback) }

// streamMsgs is the number of messages on stream.
func (e *env) streamMsgs(t *testing.T, stream string) uint64 {
	t.Helper()
	st, err := e.bus.JetStream().Stream(ctxT(t), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// waitReceived polls until feedback.received holds n messages.
func (e *env) waitReceived(t *testing.T, n uint64) {
	t.Helper()
	testkit.Eventually(t, fmt.Sprintf("%d messages on feedback.received", n), func() bool { return e.receivedCount(t) == n })
}

// waitSubmitDrained polls until every submission on the work queue was
// settled (acked or terminated, which deletes it).
func (e *env) waitSubmitDrained(t *testing.T) {
	t.Helper()
	testkit.Eventually(t, "submit stream drained", func() bool {
		st, err := e.bus.JetStream().Stream(ctxT(t), bus.StreamSubmit)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs == 0 && info.State.LastSeq > 0
	})
}

func (e *env) post(t *testing.T, contentType string, body []byte) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, e.base+"/v1/feedback", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return e.do(t, req)
}

func (e *env) do(t *testing.T, req *http.Request) (int, []byte, http.Header) {
	t.Helper()
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header
}

func feedback(source, ext string) *feedloopv1.Feedback {
	return &feedloopv1.Feedback{
		Source:     source,
		ExternalId: ext,
		Channel:    feedloopv1.Channel_CHANNEL_EMAIL,
		Customer:   &feedloopv1.Customer{Id: "c-7", Email: "ada@example.com", Locale: "en-GB", Consent: &feedloopv1.Consent{Contact: true}},
		Subject:    "Charged twice",
		Text:       "My card was charged twice for the May invoice.",
		Csat:       proto.Int32(2),
		Attributes: map[string]string{"plan": "pro"},
	}
}

// checkEvent asserts ev is the feedback.received event of in, accepted with
// id fid.
func checkEvent(t *testing.T, ev *feedloopv1.Event, msgID string, in *feedloopv1.Feedback, fid string) {
	t.Helper()
	if want := bus.DeriveID(fid, "received"); ev.GetId() != want || msgID != want {
		t.Errorf("event id = %q, Nats-Msg-Id = %q, want %q", ev.GetId(), msgID, want)
	}
	if ev.GetFeedbackId() != fid {
		t.Errorf("event feedback_id = %q, want %q", ev.GetFeedbackId(), fid)
	}
	got := ev.GetReceived().GetFeedback()
	if got == nil {
		t.Fatalf("event has no Received payload: %v", ev)
	}
	if got.GetId() != fid {
		t.Errorf("feedback.id = %q, want %q", got.GetId(), fid)
	}
	rcv := got.GetReceivedAt()
	if rcv == nil || time.Since(rcv.AsTime()) > time.Minute || time.Since(rcv.AsTime()) < 0 {
		t.Errorf("received_at = %v, want the time of submission", rcv)
	}
	if !proto.Equal(ev.GetOccurredAt(), rcv) {
		t.Errorf("event occurred_at = %v, want received_at %v", ev.GetOccurredAt(), rcv)
	}
	want := proto.CloneOf(in)
	want.Id, want.ReceivedAt = fid, rcv
	if want.OccurredAt == nil {
		want.OccurredAt = rcv
	}
	if diff := cmpDiff(want, got); diff != "" {
		t.Errorf("feedback in event differs from the submission (-want +got):\n%s", diff)
	}
}

func TestSubmitGRPC(t *testing.T) {
	e := start(t, testConfig())
	ctx := ctxT(t)
	in := feedback("helpdesk", "T-1001")
	in.Id = "client-chosen-id" // ignored: intake assigns ids
	res, err := e.grpc.Submit(ctx, &feedloopv1.SubmitRequest{Feedback: in})
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	fid := bus.DeriveID("feedback", "helpdesk", "T-1001")
	if res.GetFeedbackId() != fid || res.GetDuplicate() {
		t.Fatalf("Submit = %v, want id %s, not duplicate", res, fid)
	}
	evs, ids := e.received(t)
	if len(evs) != 1 {
		t.Fatalf("%d events on feedback.received, want 1", len(evs))
	}
	in.Id = ""
	checkEvent(t, evs[0], ids[0], in, fid)

	// The idempotency key is set, with the configured (default) TTL.
	ttl, err := e.rdb.TTL(ctx, "intake:idem:helpdesk:T-1001").Result()
	if err != nil || ttl <= 719*time.Hour || ttl > 720*time.Hour {
		t.Fatalf("idempotency key TTL = %v (%v), want about 720h", ttl, err)
	}

	// Resubmission, even with other content, is the same item.
	again := feedback("helpdesk", "T-1001")
	again.Text = "edited later"
	res2, err := e.grpc.Submit(ctx, &feedloopv1.SubmitRequest{Feedback: again})
	if err != nil {
		t.Fatalf("resubmit: %v", err)
	}
	if res2.GetFeedbackId() != fid || !res2.GetDuplicate() {
		t.Fatalf("resubmit = %v, want id %s, duplicate", res2, fid)
	}
	if n := e.receivedCount(t); n != 1 {
		t.Fatalf("%d events after resubmission, want still 1", n)
	}

	// Another external id is another item.
	res3, err := e.grpc.Submit(ctx, &feedloopv1.SubmitRequest{Feedback: feedback("helpdesk", "T-1002")})
	if err != nil || res3.GetFeedbackId() == fid || res3.GetDuplicate() {
		t.Fatalf("other item = %v, %v; want a new id", res3, err)
	}
	if n := e.receivedCount(t); n != 2 {
		t.Fatalf("%d events, want 2", n)
	}
}

func TestSubmitHTTP(t *testing.T) {
	e := start(t, testConfig())
	in := feedback("webform", "F-1")
	in.Nps = proto.Int32(9)
	in.OccurredAt = timestamppb.New(time.Now().Add(-2 * time.Hour).Truncate(time.Second))
	body, err := protojson.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	code, resp, hdr := e.post(t, "application/json; charset=utf-8", body)
	if code != http.StatusAccepted {
		t.Fatalf("POST = %d %s, want 202", code, resp)
	}
	if ct := hdr.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var sr feedloopv1.SubmitResponse
	if err := protojson.Unmarshal(resp, &sr); err != nil {
		t.Fatalf("response %s: %v", resp, err)
	}
	fid := bus.DeriveID("feedback", "webform", "F-1")
	if sr.GetFeedbackId() != fid || sr.GetDuplicate() {
		t.Fatalf("response = %s, want id %s", resp, fid)
	}
	evs, ids := e.received(t)
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
	checkEvent(t, evs[0], ids[0], in, fid)
	if !proto.Equal(evs[0].GetReceived().GetFeedback().GetOccurredAt(), in.OccurredAt) {
		t.Errorf("occurred_at not kept: %v", evs[0].GetReceived().GetFeedback().GetOccurredAt())
	}

	// Posting again answers 200 with the same id and publishes nothing.
	code, resp, _ = e.post(t, "application/json", body)
	if code != http.StatusOK {
		t.Fatalf("repost = %d %s, want 200", code, resp)
	}
	if err := protojson.Unmarshal(resp, &sr); err != nil || sr.GetFeedbackId() != fid || !sr.GetDuplicate() {
		t.Fatalf("repost response = %s (%v), want id %s duplicate", resp, err, fid)
	}
	// Idempotency holds across transports.
	res, err := e.grpc.Submit(ctxT(t), &feedloopv1.SubmitRequest{Feedback: in})
	if err != nil || res.GetFeedbackId() != fid || !res.GetDuplicate() {
		t.Fatalf("gRPC after HTTP = %v, %v; want duplicate of %s", res, err, fid)
	}
	if n := e.receivedCount(t); n != 1 {
		t.Fatalf("%d events, want 1", n)
	}
}

func TestSubmitNATS(t *testing.T) {
	e := start(t, testConfig())
	ctx := ctxT(t)
	in := feedback("", "R-77") // the subject names the source
	in.Channel = feedloopv1.Channel_CHANNEL_APP_REVIEW
	data, err := proto.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.bus.PublishData(ctx, bus.SubmitSubject("appstore"), "sub-1", data, nil); err != nil {
		t.Fatal(err)
	}
	e.waitReceived(t, 1)
	fid := bus.DeriveID("feedback", "appstore", "R-77")
	evs, ids := e.received(t)
	in.Source = "appstore"
	checkEvent(t, evs[0], ids[0], in, fid)

	// The same item again (another message id, so the submit stream keeps
	// it, and with its source set): handled, nothing new published.
	in.Text = "resent"
	data, _ = proto.Marshal(in)
	if _, err := e.bus.PublishData(ctx, bus.SubmitSubject("appstore"), "sub-2", data, nil); err != nil {
		t.Fatal(err)
	}
	e.waitSubmitDrained(t)
	if n := e.receivedCount(t); n != 1 {
		t.Fatalf("%d events after a NATS resubmission, want 1", n)
	}
	if n := dlqCount(t, e); n != 0 {
		t.Fatalf("%d dead letters, want 0", n)
	}
	// And the NATS submission is a duplicate for gRPC too.
	res, err := e.grpc.Submit(ctx, &feedloopv1.SubmitRequest{Feedback: in})
	if err != nil || res.GetFeedbackId() != fid || !res.GetDuplicate() {
		t.Fatalf("gRPC after NATS = %v, %v; want duplicate of %s", res, err, fid)
	}
}

func TestSubmitBatch(t *testing.T) {
	e := start(t, testConfig())
	ctx := ctxT(t)
	if _, err := e.grpc.Submit(ctx, &feedloopv1.SubmitRequest{Feedback: feedback("crm", "old")}); err != nil {
		t.Fatal(err)
	}
	bad := feedback("crm", "B-2")
	bad.Nps = proto.Int32(11)
	bad.Customer.Email = "nope"
	res, err := e.grpc.SubmitBatch(ctx, &feedloopv1.SubmitBatchRequest{Items: []*feedloopv1.Feedback{
		feedback("crm", "B-1"), bad, feedback("crm", "old"), feedback("crm", "B-1"), feedback("crm", "B-3"),
	}})
	if err != nil {
		t.Fatalf("SubmitBatch: %v", err)
	}
	rs := res.GetResults()
	if len(rs) != 5 {
		t.Fatalf("%d results, want 5", len(rs))
	}
	id := func(ext string) string { return bus.DeriveID("feedback", "crm", ext) }
	if rs[0].GetFeedbackId() != id("B-1") || len(rs[0].GetViolations()) != 0 || rs[0].GetError() != "" {
		t.Errorf("results[0] = %v, want accepted B-1", rs[0])
	}
	if rs[1].GetFeedbackId() != "" || rs[1].GetDuplicate() {
		t.Errorf("results[1] = %v, want rejected", rs[1])
	}
	var fields []string
	for _, v := range rs[1].GetViolations() {
		fields = append(fields, v.GetField())
	}
	if strings.Join(fields, ",") != "feedback.customer.email,feedback.nps" {
		t.Errorf("results[1] violations on %v, want feedback.customer.email, feedback.nps", fields)
	}
	if rs[2].GetFeedbackId() != id("old") || !rs[2].GetDuplicate() {
		t.Errorf("results[2] = %v, want duplicate of old", rs[2])
	}
	// B-1 twice in one batch: one publish, both answers carry its id, and
	// exactly one of them is the new one.
	if rs[3].GetFeedbackId() != id("B-1") || rs[0].GetDuplicate() == rs[3].GetDuplicate() {
		t.Errorf("results[0], [3] = %v, %v; want B-1 once new, once duplicate", rs[0], rs[3])
	}
	if rs[4].GetFeedbackId() != id("B-3") || rs[4].GetDuplicate() {
		t.Errorf("results[4] = %v, want accepted B-3", rs[4])
	}
	evs, _ := e.received(t)
	got := map[string]int{}
	for _, ev := range evs {
		got[ev.GetReceived().GetFeedback().GetExternalId()]++
	}
	if len(evs) != 3 || got["old"] != 1 || got["B-1"] != 1 || got["B-3"] != 1 {
		t.Fatalf("events by external id = %v, want old, B-1, B-3 once each", got)
	}
}

// A lost idempotency key (Redis flushed, TTL passed) still yields a
// duplicate while JetStream remembers the event id, and the key is restored.
func TestDuplicateWithoutRedisKey(t *testing.T) {
	e := start(t, testConfig())
	ctx := ctxT(t)
	in := feedback("helpdesk", "T-9")
	first, err := e.grpc.Submit(ctx, &feedloopv1.SubmitRequest{Feedback: in})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := e.rdb.Del(ctx, "intake:idem:helpdesk:T-9").Result(); err != nil || n != 1 {
		t.Fatalf("del key = %d, %v; want the key to have existed", n, err)
	}
	again, err := e.grpc.Submit(ctx, &feedloopv1.SubmitRequest{Feedback: in})
	if err != nil {
		t.Fatal(err)
	}
	if again.GetFeedbackId() != first.GetFeedbackId() || !again.GetDuplicate() {
		t.Fatalf("resubmit = %v, want duplicate of %s", again, first.GetFeedbackId())
	}
	if n := e.receivedCount(t); n != 1 {
		t.Fatalf("%d events, want 1", n)
	}
	if v, err := e.rdb.Get(ctx, "intake:idem:helpdesk:T-9").Result(); err != nil || v != first.GetFeedbackId() {
		t.Fatalf("key after resubmit = %q, %v; want %s", v, err, first.GetFeedbackId())
	}
}

func TestHealth(t *testing.T) {
	e := start(t, testConfig())
	hc := healthpb.NewHealthClient(e.conn)
	for _, svc := range []string{"", "feedloop.v1.IntakeService"} {
		res, err := hc.Check(ctxT(t), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health %q = %v, %v; want SERVING", svc, res, err)
		}
	}
	req, _ := http.NewRequestWithContext(ctxT(t), http.MethodGet, e.base+"/healthz", nil)
	code, body, _ := e.do(t, req)
	var got map[string]string
	if code != http.StatusOK || json.Unmarshal(body, &got) != nil || got["nats"] != "ok" || got["redis"] != "ok" {
		t.Fatalf("/healthz = %d %s, want 200 with nats and redis ok", code, body)
	}
}

// With Redis unreachable intake cannot tell a duplicate, so it refuses
// with Unavailable / 503 instead of guessing, and publishes nothing.
func TestRedisDown(t *testing.T) {
	b := testkit.Bus(t)
	// A real client to a port where nothing listens.
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t)), MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	e := startOn(t, testConfig(), b, rdb)

	_, err := e.grpc.Submit(ctxT(t), &feedloopv1.SubmitRequest{Feedback: feedback("helpdesk", "T-1")})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("Submit with Redis down = %v, want Unavailable", err)
	}
	body, _ := protojson.Marshal(feedback("helpdesk", "T-2"))
	code, resp, hdr := e.post(t, "application/json", body)
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Fatalf("POST with Redis down = %d %s, want 503 with Retry-After", code, resp)
	}
	req, _ := http.NewRequestWithContext(ctxT(t), http.MethodGet, e.base+"/healthz", nil)
	if code, body, _ := e.do(t, req); code != http.StatusServiceUnavailable || !strings.Contains(string(body), "redis") {
		t.Fatalf("/healthz with Redis down = %d %s, want 503 naming redis", code, body)
	}
	// On NATS the failure is transient: the submission is redelivered, not
	// dead-lettered.
	data, _ := proto.Marshal(feedback("", "T-3"))
	if _, err := e.bus.PublishData(ctxT(t), bus.SubmitSubject("helpdesk"), "sub-t3", data, nil); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the submission to be redelivered", func() bool {
		cons, err := e.bus.JetStream().Consumer(ctxT(t), bus.StreamSubmit, "intake")
		if err != nil {
			return false
		}
		info, err := cons.Info(ctxT(t))
		return err == nil && info.NumRedelivered >= 1
	})
	if n := dlqCount(t, e); n != 0 {
		t.Fatalf("%d dead letters for a transient failure, want 0", n)
	}
	if n := e.receivedCount(t); n != 0 {
		t.Fatalf("%d events published with Redis down, want 0", n)
	}
}

func TestRunStopsAndFreesPorts(t *testing.T) {
	b := testkit.Bus(t)
	rdb := testkit.RedisClient(t)
	svc, err := intake.New(testConfig(), &lifecycle.Infra{Bus: b, Redis: rdb})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	testkit.Eventually(t, "HTTP up", func() bool {
		resp, err := http.Get("http://" + svc.HTTPAddr() + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return")
	}
	// Both addresses can be bound again: the listeners were closed.
	cfg := testConfig()
	cfg.GRPCAddr, cfg.HTTPAddr = svc.GRPCAddr(), svc.HTTPAddr()
	again, err := intake.New(cfg, &lifecycle.Infra{Bus: b, Redis: rdb})
	if err != nil {
		t.Fatalf("New on the freed addresses: %v", err)
	}
	ctx2, cancel2 := context.WithCancel(t.Context())
	cancel2()
	if err := again.Run(ctx2); err != nil {
		t.Fatalf("Run with a cancelled context = %v", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	cfg := testConfig()
	cfg.GRPCAddr = "nonsense"
	_, err := intake.New(cfg, &lifecycle.Infra{})
	if err == nil || !strings.Contains(err.Error(), "INTAKE_GRPC_ADDR") {
		t.Fatalf("New = %v, want an error naming INTAKE_GRPC_ADDR", err)
	}
}

func cmpDiff(want, got proto.Message) string {
	if proto.Equal(want, got) {
		return ""
	}
	w, _ := protojson.MarshalOptions{Multiline: true}.Marshal(want)
	g, _ := protojson.MarshalOptions{Multiline: true}.Marshal(got)
	return fmt.Sprintf("want %s\ngot  %s", w, g)
}
