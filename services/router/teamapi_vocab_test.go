package router_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// The words of an action are named by who reads them (customer_message,
// internal_note). A client built before sends the deprecated fields
// (message, reason, text): the router still takes them, into the same
// place of the event. A request with both names set to different words is
// refused, naming the new field, and changes nothing: one of them would
// reach the wrong reader.
func TestTeamAPIWordsNamedByAudienceOldFieldsStillWork(t *testing.T) {
	h := start(t)
	billing, cs, logistics := h.team("billing"), h.team("customer-success"), h.team("logistics")
	const id = "7b1e2c3d-4f50-4a6b-8c7d-9e0f1a2b3c4d"
	// A detractor answering a survey: routed to billing and to customer success.
	h.submit(id, "fedcba9876543210fedcba9876543210", item{topics: []string{"billing"}, nps: feedloopv1.NpsBand_NPS_BAND_DETRACTOR, channel: feedloopv1.Channel_CHANNEL_SURVEY})
	testkit.Eventually(t, "the item in the read model", func() bool { _, err := billing.get(id); return err == nil })
	if _, err := billing.c.Acknowledge(billing.ctx(), &feedloopv1.AcknowledgeRequest{FeedbackId: id}); err != nil {
		t.Fatal(err)
	}
	due := timestamppb.New(time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 7))

	conflicts := []struct {
		name, field, old string
		call             func() error
	}{
		{"plan", "customer_message", "message", func() error {
			_, err := billing.c.Plan(billing.ctx(), &feedloopv1.PlanRequest{FeedbackId: id, DueAt: due, CustomerMessage: "We refund you.", Message: "Finance ticket FIN-1"})
			return err
		}},
		{"resolve", "customer_message", "message", func() error {
			_, err := billing.c.Resolve(billing.ctx(), &feedloopv1.ResolveRequest{FeedbackId: id, CustomerMessage: "Refunded.", Message: "Refunded 42 EUR."})
			return err
		}},
		{"decline", "customer_message", "reason", func() error {
			_, err := cs.c.Decline(cs.ctx(), &feedloopv1.DeclineRequest{FeedbackId: id, CustomerMessage: "Billing handles it.", Reason: "not worth a call"})
			return err
		}},
		{"reroute", "internal_note", "reason", func() error {
			_, err := cs.c.Reroute(cs.ctx(), &feedloopv1.RerouteRequest{FeedbackId: id, Team: "logistics", InternalNote: "a parcel question", Reason: "Sorry!"})
			return err
		}},
		{"comment", "internal_note", "text", func() error {
			_, err := billing.c.Comment(billing.ctx(), &feedloopv1.CommentRequest{FeedbackId: id, InternalNote: "called", Text: "called twice"})
			return err
		}},
	}
	for _, c := range conflicts {
		v := fieldViolation(t, c.call())
		if v.GetField() != c.field || !strings.Contains(v.GetDescription(), c.old) {
			t.Errorf("%s with both fields different: violation %s: %s, want field %s naming %s", c.name, v.GetField(), v.GetDescription(), c.field, c.old)
		}
	}
	updates := func() []*feedloopv1.Event { return h.events("feedback.updated.*", id) }
	if n := len(updates()); n != 1 {
		t.Fatalf("refused requests changed the item: %d updated events, want the acknowledgement only", n)
	}

	// Both set to the same words (a client moving over may send both): taken.
	if _, err := billing.c.Plan(billing.ctx(), &feedloopv1.PlanRequest{FeedbackId: id, DueAt: due, CustomerMessage: "We refund you by then.", Message: "We refund you by then."}); err != nil {
		t.Fatalf("plan with both fields equal: %v", err)
	}
	// The deprecated fields alone, as an older client sends them.
	if _, err := billing.c.Comment(billing.ctx(), &feedloopv1.CommentRequest{FeedbackId: id, Text: "old client: finance ticket FIN-42"}); err != nil {
		t.Fatalf("comment with text: %v", err)
	}
	if _, err := billing.c.Resolve(billing.ctx(), &feedloopv1.ResolveRequest{FeedbackId: id, Message: "old client: refunded"}); err != nil {
		t.Fatalf("resolve with message: %v", err)
	}
	if _, err := cs.c.Reroute(cs.ctx(), &feedloopv1.RerouteRequest{FeedbackId: id, Team: "logistics", Reason: "old client: a parcel question"}); err != nil {
		t.Fatalf("reroute with reason: %v", err)
	}
	testkit.Eventually(t, "logistics has its share", func() bool { _, err := logistics.get(id); return err == nil })
	if _, err := logistics.c.Decline(logistics.ctx(), &feedloopv1.DeclineRequest{FeedbackId: id, Reason: "old client: nothing to ship"}); err != nil {
		t.Fatalf("decline with reason: %v", err)
	}

	// Each text is where the notifier and the read model look for it.
	var got []string
	for _, ev := range updates() {
		switch {
		case ev.GetCommented() != nil:
			got = append(got, "note:"+ev.GetCommented().GetText())
		case ev.GetStatusChanged() != nil:
			sc := ev.GetStatusChanged()
			got = append(got, sc.GetTeam()+":"+workflowWord(sc.GetTo())+":customer="+sc.GetCustomerMessage()+":reason="+sc.GetReason())
		}
	}
	want := []string{
		"billing:acknowledged:customer=:reason=",
		"billing:planned:customer=We refund you by then.:reason=",
		"note:old client: finance ticket FIN-42",
		"billing:resolved:customer=old client: refunded:reason=",
		"customer-success:rerouted:customer=:reason=old client: a parcel question",
		"logistics:declined:customer=:reason=old client: nothing to ship",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("updated events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if rs := h.events(bus.RoutedSubject("logistics"), id); len(rs) != 1 {
		t.Fatalf("logistics routed events = %d, want 1", len(rs))
	}
}

func workflowWord(s feedloopv1.Status) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "STATUS_"))
}
