package intake_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/intake"
)

// After Redis lost the idempotency keys, intake rebuilds them from the
// stream's feedback.received events: a resubmission older than JetStream's
// duplicate window is still answered as a duplicate of the same item and
// publishes nothing.
func TestFlushedKeysAreRebuilt(t *testing.T) {
	nc, err := nats.Connect(testkit.NATS(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	b, err := bus.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	const window = 200 * time.Millisecond // so that the test can outlast it
	if err := b.EnsureStreams(ctxT(t), bus.StreamsConfig{DuplicateWindow: window}); err != nil {
		t.Fatal(err)
	}
	e := startOn(t, testConfig(), b, testkit.RedisClient(t))
	ctx := ctxT(t)
	const items = 20
	ids := map[string]string{}
	for i := range items {
		ext := fmt.Sprintf("T-%d", i)
		res, err := e.grpc.Submit(ctx, &feedloopv1.SubmitRequest{Feedback: feedback("helpdesk", ext)})
		if err != nil {
			t.Fatal(err)
		}
		ids[ext] = res.GetFeedbackId()
	}
	time.Sleep(3 * window) // JetStream forgot the event ids
	if err := e.rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "keys rebuilt", func() bool {
		n, err := e.rdb.Exists(context.Background(), intake.RebuildPrefix+"ready").Result()
		return err == nil && n == 1
	})
	for ext, fid := range ids {
		if v, err := e.rdb.Get(ctx, "intake:idem:helpdesk:"+ext).Result(); err != nil || v != fid {
			t.Errorf("key of %s after the rebuild = %q, %v; want %s", ext, v, err, fid)
		}
		res, err := e.grpc.Submit(ctx, &feedloopv1.SubmitRequest{Feedback: feedback("helpdesk", ext)})
		if err != nil {
			t.Fatal(err)
		}
		if res.GetFeedbackId() != fid || !res.GetDuplicate() {
			t.Errorf("resubmission of %s = %v, want a duplicate of %s", ext, res, fid)
		}
	}
	if n := e.receivedCount(t); n != items {
		t.Fatalf("%d events on feedback.received, want %d: a resubmission was published again", n, items)
	}
}
