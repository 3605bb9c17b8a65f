package router_test

import (
	"slices"
	"testing"

	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// What a console signs in with and searches by, through the real router:
// Me names the token's team and holder and the routing tree's teams; a
// List query finds a routed item by the redacted text and customer, never
// by what redaction removed.
func TestConsoleCallsThroughTheRouter(t *testing.T) {
	h := start(t)
	billing := h.team("billing")
	me, err := billing.c.Me(billing.ctx(), &feedloopv1.MeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if me.GetTeam() != "billing" || me.GetName() != "billing-lead" || me.GetExpiresAt() != nil ||
		!slices.IsSorted(me.GetTeams()) || len(slices.Compact(slices.Clone(me.GetTeams()))) != len(me.GetTeams()) {
		t.Fatalf("Me = %v", me)
	}
	for _, team := range []string{"billing", "customer-success", "logistics"} {
		if !slices.Contains(me.GetTeams(), team) {
			t.Errorf("Me.teams %v lacks %s, a team of the routing tree", me.GetTeams(), team)
		}
	}

	const id = "fb-console-1"
	h.submit(id, "", item{topics: []string{"billing"}})
	testkit.Eventually(t, "the item in the read model", func() bool { _, err := billing.get(id); return err == nil })
	for q, want := range map[string]int64{
		"REFUND late": 1, // redacted text
		"cust-7":      1, // customer id
		"[phone]":     1, // what teams see instead of the number
		"1234567":     0, // redacted away
		"refund nope": 0, // every word must occur
	} {
		resp, err := billing.c.List(billing.ctx(), &feedloopv1.ListRequest{Query: q})
		if err != nil {
			t.Fatalf("List(%q): %v", q, err)
		}
		if resp.GetTotal() != want || int64(len(resp.GetItems())) != want {
			t.Errorf("List(%q) = %d items (total %d), want %d", q, len(resp.GetItems()), resp.GetTotal(), want)
		}
	}
}
