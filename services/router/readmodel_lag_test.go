package router_test

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/feedloop/feedloop/pkg/testkit"
)

// Routing does not wait for the read model: while Redis refuses writes
// (CLIENT PAUSE … WRITE stalls every read-model transaction), each
// classified item is still routed and its message acknowledged, although
// the router runs two handlers at a time; the read model catches up once
// Redis takes writes again.
func TestRoutingDoesNotWaitForTheReadModel(t *testing.T) {
	h := start(t)
	h.waitHandled(h.publish(item{id: "fb-before", topics: []string{"billing"}}.event()))
	ctx := t.Context()
	rdb := h.infra.Redis
	if err := rdb.Do(ctx, "CLIENT", "PAUSE", "60000", "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	unpause := func() { _ = rdb.Do(context.Background(), "CLIENT", "UNPAUSE").Err() }
	t.Cleanup(unpause)

	const n = 12
	var last uint64
	for i := range n {
		last = h.publish(item{id: fmt.Sprintf("fb-%d", i), topics: []string{"billing"}}.event())
	}
	h.waitHandled(last)
	for i := range n {
		if got := h.routedFor(fmt.Sprintf("fb-%d", i)); len(got) != 1 {
			t.Fatalf("fb-%d: %d routed events while Redis refused writes, want 1", i, len(got))
		}
	}
	billing := h.team("billing")
	if _, err := billing.get("fb-0"); status.Code(err) != codes.NotFound {
		t.Fatalf("fb-0 in the read model while Redis refused writes: %v", err)
	}

	unpause()
	testkit.Eventually(t, "the read model to catch up", func() bool {
		for i := range n {
			if _, err := billing.get(fmt.Sprintf("fb-%d", i)); err != nil {
				return false
			}
		}
		return true
	})
}
