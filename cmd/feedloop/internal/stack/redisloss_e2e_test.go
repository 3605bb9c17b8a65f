package stack_test

import (
	"context"
	"testing"
	"time"

	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/intake"
	"github.com/feedloop/feedloop/services/notifier"
	"github.com/feedloop/feedloop/services/router"
)

// Redis lost while the stack runs with NATS authorization on, as deployed:
// each service rebuilds its state from the stream with its own, least
// permissions, and afterwards a resubmission is still a duplicate and
// every customer has exactly one acknowledgement.
func TestRedisLossUnderNATSAuthorization(t *testing.T) {
	e := start(t)
	if e.s.NATSUsers == nil {
		t.Fatal("the dev stack runs without NATS authorization")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	submit := func(id string) *feedloopv1.SubmitResponse {
		t.Helper()
		res, err := e.intake.Submit(ctx, &feedloopv1.SubmitRequest{Feedback: &feedloopv1.Feedback{
			Source: "helpdesk", ExternalId: id, Text: "I was charged twice for my order",
			Customer: &feedloopv1.Customer{Id: "c-" + id, Email: id + "@example.com", Locale: "en", Consent: &feedloopv1.Consent{Contact: true}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := submit("loss-1").GetFeedbackId()
	testkit.Eventually(t, "the first acknowledgement", func() bool { return len(e.customer.find(first, "received")) == 1 })
	e.idle(t)

	if err := e.s.Redis.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{router.RebuildPrefix + "ready", notifier.RebuildPrefix + "ready", intake.RebuildPrefix + "ready"} {
		testkit.Eventually(t, "the rebuild behind "+key, func() bool {
			n, err := e.s.Redis.Exists(ctx, key).Result()
			return err == nil && n == 1
		})
	}

	if again := submit("loss-1"); !again.GetDuplicate() || again.GetFeedbackId() != first {
		t.Fatalf("resubmission after the rebuild: %+v, want a duplicate of %s", again, first)
	}
	second := submit("loss-2").GetFeedbackId()
	testkit.Eventually(t, "the second acknowledgement", func() bool { return len(e.customer.find(second, "received")) == 1 })
	e.idle(t)
	if n := len(e.customer.find(first, "received")); n != 1 {
		t.Fatalf("the first customer got %d acknowledgements, want 1", n)
	}
}
