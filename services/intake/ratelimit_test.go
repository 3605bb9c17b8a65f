package intake_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/intake/access"
)

func retryDelay(t *testing.T, err error) time.Duration {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("code = %s (%v), want ResourceExhausted", st.Code(), err)
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	t.Fatalf("no RetryInfo in %v", err)
	return 0
}

// Two replicas on one Redis share each source's budget: one per 2 s,
// burst 3. The slow rate keeps the budget from refilling between calls
// on a loaded machine (at 10/s a 100 ms stall refilled it).
func TestRateLimits(t *testing.T) {
	b, rdb := testkit.Bus(t), testkit.RedisClient(t)
	const interval = 2 * time.Second
	cfg := testConfig()
	cfg.RateLimit, cfg.RateBurst = access.Rate{N: 1, Per: interval}, 3
	one, two := startOn(t, cfg, b, rdb), startOn(t, cfg, b, rdb)
	submit := func(e *env, fb *feedloopv1.Feedback) error {
		_, err := e.grpc.Submit(ctxT(t), &feedloopv1.SubmitRequest{Feedback: fb})
		return err
	}
	for i, e := range []*env{one, two, one} {
		if err := submit(e, feedback("helpdesk", fmt.Sprintf("R-%d", i))); err != nil {
			t.Fatalf("submission %d within the burst: %v", i, err)
		}
	}
	// The burst is spent on both replicas together.
	delay := retryDelay(t, submit(two, feedback("helpdesk", "R-3")))
	if delay <= 0 || delay > interval {
		t.Fatalf("retry delay = %s, want within one emission interval (%s)", delay, interval)
	}
	retryDelay(t, submit(one, feedback("helpdesk", "R-3")))
	// HTTP says 429 with Retry-After in whole seconds, rounded up.
	body, _ := protojson.Marshal(feedback("helpdesk", "R-3"))
	code, resp, hdr := one.post(t, "application/json", body)
	if ra := hdr.Get("Retry-After"); code != http.StatusTooManyRequests || (ra != "1" && ra != "2") || !strings.Contains(string(resp), `rate limit exceeded: source \"helpdesk\"`) {
		t.Fatalf("HTTP over the limit = %d %s Retry-After %q, want 429 with Retry-After 1 or 2 (whole seconds, rounded up)", code, resp, ra)
	}
	// Another source has its own budget.
	if err := submit(two, feedback("crm", "C-1")); err != nil {
		t.Fatalf("crm: %v, want its own budget", err)
	}
	// NATS is not limited: the work queue is the buffer.
	for i := range 5 {
		data, _ := proto.Marshal(feedback("", fmt.Sprintf("N-%d", i)))
		if _, err := b.PublishData(ctxT(t), bus.SubmitSubject("helpdesk"), fmt.Sprintf("n-%d", i), data, nil); err != nil {
			t.Fatal(err)
		}
	}
	one.waitReceived(t, 3+1+5)
	// Waiting the delay lets the refused item through.
	time.Sleep(delay)
	if err := submit(one, feedback("helpdesk", "R-3")); err != nil {
		t.Fatalf("after the retry delay: %v", err)
	}

	// A batch takes one unit per item, all or nothing, before publishing.
	time.Sleep(3 * interval) // the burst refills
	items := []*feedloopv1.Feedback{feedback("helpdesk", "B-1"), feedback("helpdesk", "B-2")}
	if res, err := one.grpc.SubmitBatch(ctxT(t), &feedloopv1.SubmitBatchRequest{Items: items}); err != nil || res.GetResults()[1].GetFeedbackId() == "" {
		t.Fatalf("batch of 2 within the burst = %v, %v", res, err)
	}
	items = []*feedloopv1.Feedback{feedback("helpdesk", "B-3"), feedback("helpdesk", "B-4")}
	_, err := two.grpc.SubmitBatch(ctxT(t), &feedloopv1.SubmitBatchRequest{Items: items})
	retryDelay(t, err)
	// More items than the burst can never pass: ResourceExhausted saying so.
	big := make([]*feedloopv1.Feedback, 4)
	for i := range big {
		big[i] = feedback("web", "W-"+strconv.Itoa(i))
	}
	_, err = one.grpc.SubmitBatch(ctxT(t), &feedloopv1.SubmitBatchRequest{Items: big})
	if st := status.Convert(err); st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "at most 3 items at once") {
		t.Fatalf("batch over the burst = %v, want ResourceExhausted naming the burst", err)
	}
	if n := one.receivedCount(t); n != 3+1+5+1+2 {
		t.Fatalf("%d events, want %d: nothing refused may be published", n, 3+1+5+1+2)
	}
}

// Per-source limits from the keys file override the default.
func TestRateLimitOverride(t *testing.T) {
	path := keysFile(t, fmtKeys(`
keys:
  - {source: survey, name: typeform, sha256: %s}
  - {source: helpdesk, name: zendesk, sha256: %s}
limits:
  survey: {rate: "0"}
  helpdesk: {rate: 1/h, burst: 1}
`, "tf", "zd"))
	cfg := testConfig()
	cfg.APIKeysFile, cfg.RateLimit, cfg.RateBurst = path, access.Rate{N: 1, Per: time.Hour}, 1
	e := start(t, cfg)
	for i := range 5 {
		if _, err := withKey(t, "tf").submit(e, feedback("survey", fmt.Sprintf("S-%d", i))); err != nil {
			t.Fatalf("survey (no limit) %d: %v", i, err)
		}
	}
	if _, err := withKey(t, "zd").submit(e, feedback("helpdesk", "H-1")); err != nil {
		t.Fatal(err)
	}
	if d := retryDelay(t, func() error { _, err := withKey(t, "zd").submit(e, feedback("helpdesk", "H-2")); return err }()); d < 59*time.Minute {
		t.Fatalf("helpdesk retry delay = %s, want about an hour (1/h)", d)
	}
	// A key spends its own source's budget whatever the item claims: a
	// helpdesk key cannot exhaust the survey budget (and is refused anyway).
	if _, err := withKey(t, "zd").submit(e, feedback("survey", "X-1")); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("helpdesk key, survey item = %v; want its own (spent) budget: ResourceExhausted", err)
	}
}
