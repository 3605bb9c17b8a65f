package app_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/intake/access"
	"github.com/feedloop/feedloop/services/intake/internal/app"
	"github.com/feedloop/feedloop/services/intake/internal/auth"
	"github.com/feedloop/feedloop/services/intake/internal/idem"
	"github.com/feedloop/feedloop/services/intake/internal/ratelimit"
)

var now = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

func clock() time.Time { return now }

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func item(ext string) *feedloopv1.Feedback {
	return &feedloopv1.Feedback{Source: "helpdesk", ExternalId: ext, Text: "the app crashes on login"}
}

func receivedCount(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	st, err := js.Stream(t.Context(), bus.StreamFeedback)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context(), jetstream.WithSubjectFilter(bus.SubjectReceived))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[bus.SubjectReceived]
}

func TestSubmitDoesNotModifyInputAndSetsTimes(t *testing.T) {
	b := testkit.Bus(t)
	acc := app.New(idem.New(testkit.RedisClient(t), time.Hour), b, discard(), clock)
	in := item("A-1")
	res, err := acc.Submit(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if in.GetId() != "" || in.GetReceivedAt() != nil || in.GetOccurredAt() != nil {
		t.Fatalf("input modified: %v", in)
	}
	if res.FeedbackID != app.FeedbackID("helpdesk", "A-1") {
		t.Fatalf("id = %s", res.FeedbackID)
	}
	st, _ := b.JetStream().Stream(t.Context(), bus.StreamFeedback)
	raw, err := st.GetLastMsgForSubject(t.Context(), bus.SubjectReceived)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Header.Get(bus.HeaderPayloadType) != "feedloop.v1.Received" || raw.Header.Get(bus.HeaderFeedbackID) != res.FeedbackID {
		t.Fatalf("headers = %v", raw.Header)
	}
	var ev feedloopv1.Event
	if err := proto.Unmarshal(raw.Data, &ev); err != nil {
		t.Fatal(err)
	}
	// The status page token is 128 random bits in hex, never derived from the id.
	tok := ev.GetReceived().GetStatusToken()
	if len(tok) != 32 || strings.Contains(tok, res.FeedbackID) {
		t.Fatalf("status token = %q", tok)
	}
	if other := app.NewStatusToken(); other == tok {
		t.Fatalf("two tokens are equal: %s", tok)
	}
}

// Publishing fails (the bus connection is gone): the caller gets
// ErrUnavailable and the key is NOT set, so a retry once the bus is back
// publishes the item instead of calling it a duplicate.
func TestBusDownNeverLosesTheItem(t *testing.T) {
	url := testkit.NATS(t)
	good := testkit.BusAt(t, url)
	rdb := testkit.RedisClient(t)
	keys := idem.New(rdb, time.Hour)

	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	down, err := bus.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()

	_, err = app.New(keys, down, discard(), clock).Submit(t.Context(), item("A-2"))
	if !errors.Is(err, app.ErrUnavailable) {
		t.Fatalf("Submit with the bus down = %v, want ErrUnavailable", err)
	}
	if n, err := rdb.Exists(t.Context(), idem.Key("helpdesk", "A-2")).Result(); err != nil || n != 0 {
		t.Fatalf("idempotency key exists (%d, %v) although nothing was stored", n, err)
	}

	res, err := app.New(keys, good, discard(), clock).Submit(t.Context(), item("A-2"))
	if err != nil || res.Duplicate {
		t.Fatalf("retry with the bus back = %+v, %v; want accepted as new", res, err)
	}
	if n := receivedCount(t, good.JetStream()); n != 1 {
		t.Fatalf("%d events, want 1", n)
	}
}

// Redis may read but not write (a real ACL denies SET): the event is stored,
// so the submission succeeds; a resubmission is still a duplicate because
// JetStream drops the same event id.
func TestKeyNotWrittenStillAcceptsOnce(t *testing.T) {
	b := testkit.Bus(t)
	admin := testkit.RedisClient(t)
	if err := admin.Do(t.Context(), "ACL", "SETUSER", "reader", "on", ">secret", "~*", "+@connection", "+get").Err(); err != nil {
		t.Fatalf("acl: %v", err)
	}
	opt := *admin.Options()
	opt.Username, opt.Password = "reader", "secret"
	reader := redis.NewClient(&opt)
	t.Cleanup(func() { _ = reader.Close() })
	if err := reader.Set(t.Context(), "probe", "x", 0).Err(); err == nil {
		t.Fatal("the reader may write; the test would prove nothing")
	}

	acc := app.New(idem.New(reader, time.Hour), b, discard(), clock)
	first, err := acc.Submit(t.Context(), item("A-3"))
	if err != nil || first.Duplicate {
		t.Fatalf("first = %+v, %v; want accepted", first, err)
	}
	again, err := acc.Submit(t.Context(), item("A-3"))
	if err != nil || !again.Duplicate || again.FeedbackID != first.FeedbackID {
		t.Fatalf("again = %+v, %v; want duplicate of %s", again, err, first.FeedbackID)
	}
	if n := receivedCount(t, b.JetStream()); n != 1 {
		t.Fatalf("%d events, want 1", n)
	}
}

func TestInvalidCarriesViolations(t *testing.T) {
	b := testkit.Bus(t)
	acc := app.New(idem.New(testkit.RedisClient(t), time.Hour), b, discard(), clock)
	_, err := acc.Submit(context.Background(), &feedloopv1.Feedback{Source: "helpdesk", Text: "x"})
	if !errors.Is(err, app.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	vs := app.Violations(err)
	if len(vs) != 1 || vs[0].Field != "feedback.external_id" {
		t.Fatalf("violations = %v", vs)
	}
	if n := receivedCount(t, b.JetStream()); n != 0 {
		t.Fatalf("%d events, want 0", n)
	}
}

func TestIDsAreDeterministic(t *testing.T) {
	a, b := app.FeedbackID("helpdesk", "X"), app.FeedbackID("helpdesk", "X")
	if a != b || a == app.FeedbackID("helpdesk", "Y") || a == app.FeedbackID("crm", "X") {
		t.Fatal("feedback ids must depend on exactly (source, external_id)")
	}
	if app.ReceivedEventID(a) != bus.DeriveID(a, "received") {
		t.Fatal("received event id must derive from the feedback id")
	}
}

// With Redis unreachable the limiter fails open: admitted, counted, logged
// once per outage.
func TestAdmitFailsOpenWhenTheLimiterFails(t *testing.T) {
	dead := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t)), MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = dead.Close() })
	var logs testkit.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	one := func(string) access.Limit { return access.Limit{Rate: access.Rate{N: 1, Per: time.Hour}, Burst: 1} }
	acc := app.New(idem.New(dead, time.Hour), testkit.Bus(t), log, clock, app.WithLimiter(ratelimit.New(dead, one)))
	for range 3 {
		if err := acc.Admit(t.Context(), "helpdesk", 1); err != nil {
			t.Fatalf("Admit with the limiter down = %v, want admitted", err)
		}
	}
	if n := strings.Count(logs.String(), "rate limiter unavailable"); n != 1 {
		t.Fatalf("logged %d times, want once per outage:\n%s", n, logs.String())
	}

	// The same limit on a live Redis refuses the second.
	live := app.New(idem.New(testkit.RedisClient(t), time.Hour), testkit.Bus(t), log, clock,
		app.WithLimiter(ratelimit.New(testkit.RedisClient(t), one)))
	if err := live.Admit(t.Context(), "helpdesk", 1); err != nil {
		t.Fatal(err)
	}
	err := live.Admit(t.Context(), "helpdesk", 1)
	if d, ok := app.RetryAfter(err); !errors.Is(err, app.ErrLimited) || !ok || d < 59*time.Minute {
		t.Fatalf("second Admit = %v (retry %s), want ErrLimited with about an hour", err, d)
	}
	// Invalid sources are left to validation, never keyed.
	if err := live.Admit(t.Context(), "Not A Source", 1); err != nil {
		t.Fatalf("invalid source = %v, want admitted (validation refuses it)", err)
	}
}

func TestCallerMayOnlySubmitForItsSource(t *testing.T) {
	b := testkit.Bus(t)
	acc := app.New(idem.New(testkit.RedisClient(t), time.Hour), b, discard(), clock)
	ctx := auth.WithCaller(t.Context(), auth.Caller{Source: "helpdesk", Key: "zendesk"})
	_, err := acc.Submit(ctx, &feedloopv1.Feedback{Source: "crm", ExternalId: "X", Text: "t"})
	v, ok := app.Forbidden(err)
	if !errors.Is(err, app.ErrForbidden) || !ok || v.Field != "feedback.source" {
		t.Fatalf("Submit = %v, want ErrForbidden on feedback.source", err)
	}
	if _, err := acc.Submit(ctx, item("own")); err != nil {
		t.Fatalf("own source: %v", err)
	}
	if n := receivedCount(t, b.JetStream()); n != 1 {
		t.Fatalf("%d events, want 1", n)
	}
}

// AdmitSubmit with a limiter that also looks the key up (one round trip)
// answers as Admit then Submit: same id, resubmissions duplicates even
// when raced, refusals before anything is published, invalid items
// refused by validation.
func TestAdmitSubmitLooksUpWithTheLimit(t *testing.T) {
	b := testkit.Bus(t)
	rdb := testkit.RedisClient(t)
	three := func(string) access.Limit { return access.Limit{Rate: access.Rate{N: 3, Per: time.Hour}, Burst: 8} }
	acc := app.New(idem.New(rdb, time.Hour), b, discard(), clock, app.WithLimiter(ratelimit.New(rdb, three)))
	ctx := t.Context()

	first, err := acc.AdmitSubmit(ctx, item("B-1"))
	if err != nil || first.Duplicate || first.FeedbackID != app.FeedbackID("helpdesk", "B-1") {
		t.Fatalf("first = %+v, %v; want accepted with the derived id", first, err)
	}
	again, err := acc.AdmitSubmit(ctx, item("B-1"))
	if err != nil || !again.Duplicate || again.FeedbackID != first.FeedbackID {
		t.Fatalf("again = %+v, %v; want a duplicate of %s", again, err, first.FeedbackID)
	}
	// Raced: every one gets the same id, one event is stored.
	var wg sync.WaitGroup
	results := make([]app.Result, 6)
	errs := make([]error, len(results))
	for i := range results {
		wg.Go(func() { results[i], errs[i] = acc.AdmitSubmit(ctx, item("B-2")) })
	}
	wg.Wait()
	for i, r := range results {
		if errs[i] != nil || r.FeedbackID != app.FeedbackID("helpdesk", "B-2") {
			t.Fatalf("raced %d = %+v, %v", i, r, errs[i])
		}
	}
	if n := receivedCount(t, b.JetStream()); n != 2 {
		t.Fatalf("%d events, want 2", n)
	}
	// The burst (8) is spent: refused, nothing published.
	_, err = acc.AdmitSubmit(ctx, item("B-3"))
	if d, ok := app.RetryAfter(err); !errors.Is(err, app.ErrLimited) || !ok || d <= 0 {
		t.Fatalf("over the limit = %v, want ErrLimited with a delay", err)
	}
	if n := receivedCount(t, b.JetStream()); n != 2 {
		t.Fatalf("%d events after a refusal, want 2", n)
	}
	// Invalid items are refused by validation (another source's budget:
	// unlimited here, so not refused by the limit first).
	unlimited := app.New(idem.New(rdb, time.Hour), b, discard(), clock,
		app.WithLimiter(ratelimit.New(rdb, func(string) access.Limit { return access.Limit{} })))
	if _, err := unlimited.AdmitSubmit(ctx, &feedloopv1.Feedback{Source: "helpdesk", ExternalId: "B-4"}); !errors.Is(err, app.ErrInvalid) {
		t.Fatalf("no text = %v, want ErrInvalid", err)
	}
	if _, err := unlimited.AdmitSubmit(ctx, &feedloopv1.Feedback{Source: "Not:A source", ExternalId: "B-4", Text: "t"}); !errors.Is(err, app.ErrInvalid) {
		t.Fatalf("bad source = %v, want ErrInvalid", err)
	}
}

// The lookup's failure in the combined trip is ErrUnavailable, the
// limiter's is failed open: Redis down is ErrUnavailable, as before.
func TestAdmitSubmitRedisDown(t *testing.T) {
	dead := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t)), MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = dead.Close() })
	one := func(string) access.Limit { return access.Limit{Rate: access.Rate{N: 1, Per: time.Hour}, Burst: 1} }
	b := testkit.Bus(t)
	acc := app.New(idem.New(dead, time.Hour), b, discard(), clock, app.WithLimiter(ratelimit.New(dead, one)))
	if _, err := acc.AdmitSubmit(t.Context(), item("C-1")); !errors.Is(err, app.ErrUnavailable) {
		t.Fatalf("Redis down = %v, want ErrUnavailable", err)
	}
	if n := receivedCount(t, b.JetStream()); n != 0 {
		t.Fatalf("%d events, want 0: the key could not be looked up", n)
	}
}
