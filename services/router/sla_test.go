package router_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router"
)

const slaRoutes = `
route:
  team: triage
  routes:
    - team: billing
      matchers: ['topic="billing"']
      sla: {acknowledge: 2s, resolve: 1h}
      escalate:
        - {team: support-escalations, after: 0s}
        - {team: customer-success, after: 1s}
`

// An unacknowledged item warns at half time, breaches and climbs the escalation chain,
// each step exactly once although two router replicas run; an acknowledged
// one never escalates.
func TestEscalationWithTwoReplicas(t *testing.T) {
	h := start(t)
	h.writeRoutes(slaRoutes)
	testkit.Eventually(t, "routes reloaded", func() bool { return len(h.svc.Tree().Teams()) == 2 })
	cfg := testConfig(h.routes, h.tokens)
	cfg.ReloadInterval, cfg.SLATick, cfg.SLAWarnAt = 100*time.Millisecond, 50*time.Millisecond, 0.5
	second, err := router.New(cfg, h.infra)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, second.Run)

	h.submit("fb-late", "", item{topics: []string{"billing"}})
	h.submit("fb-prompt", "", item{topics: []string{"billing"}})
	billing := h.team("billing")
	testkit.Eventually(t, "items in the read model", func() bool { _, err := billing.get("fb-prompt"); return err == nil })
	if _, err := billing.c.Acknowledge(billing.ctx(), &feedloopv1.AcknowledgeRequest{FeedbackId: "fb-prompt"}); err != nil {
		t.Fatal(err)
	}

	steps := func(id string) []string {
		var out []string
		for _, ev := range h.events(bus.AllEscalated, id) {
			e := ev.GetEscalated()
			out = append(out, fmt.Sprintf("%s/%d/%s", strings.TrimPrefix(e.GetKind().String(), "ESCALATION_KIND_"), e.GetLevel(), e.GetEscalateTo()))
		}
		return out
	}
	testkit.Eventually(t, "level 2 of the chain", func() bool {
		return strings.Contains(strings.Join(steps("fb-late"), " "), "BREACH/2/customer-success")
	})
	// A marker routed after level 2 fired: once its own warning fired, both
	// replicas have ticked past level 2's time, so a second level 2 (or a
	// level the chain does not have) would be in the stream.
	h.submit("fb-marker", "", item{topics: []string{"billing"}})
	testkit.Eventually(t, "the marker's warning", func() bool { return len(steps("fb-marker")) > 0 })
	got := steps("fb-late")
	if strings.Join(got, " ") != "WARNING/0/ BREACH/1/support-escalations BREACH/2/customer-success" {
		t.Fatalf("escalations of the late item: %v", got)
	}
	for _, s := range steps("fb-prompt") {
		if strings.Contains(s, "BREACH") {
			t.Fatalf("acknowledged item escalated: %v", s)
		}
	}
	r, err := billing.get("fb-late")
	if err != nil {
		t.Fatal(err)
	}
	if lvl := r.GetItem().GetAssignments()[0].GetEscalationLevel(); lvl != 2 {
		t.Fatalf("read model escalation level = %d", lvl)
	}
}
