package testkit_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/testkit"
)

func TestSubjectMatches(t *testing.T) {
	for _, tc := range []struct {
		filter, subject string
		want            bool
	}{
		{"feedback.received", "feedback.received", true},
		{"feedback.received", "feedback.received.x", false},
		{"feedback.routed.*", "feedback.routed.billing", true},
		{"feedback.routed.*", "feedback.routed", false},
		{"feedback.routed.*", "feedback.routed.a.b", false},
		{"feedback.>", "feedback.routed.a", true},
		{"feedback.>", "feedback", false},
		{"feedback.*.billing", "feedback.updated.billing", true},
		{"feedback.*.billing", "feedback.updated.product", false},
	} {
		if got := testkit.SubjectMatches(tc.filter, tc.subject); got != tc.want {
			t.Errorf("SubjectMatches(%q, %q) = %v, want %v", tc.filter, tc.subject, got, tc.want)
		}
	}
}

func TestMessagesReadsStoredMessagesInOrder(t *testing.T) {
	b := testkit.Bus(t)
	ctx := context.Background()
	for i, subj := range []string{bus.RoutedSubject("billing"), bus.SubjectReceived, bus.RoutedSubject("product")} {
		if _, err := b.PublishData(ctx, subj, string(rune('a'+i)), []byte(subj), nats.Header{}); err != nil {
			t.Fatal(err)
		}
	}
	got := testkit.Messages(t, b, bus.StreamFeedback, bus.AllRouted)
	if len(got) != 2 || got[0].Subject != bus.RoutedSubject("billing") || got[1].Subject != bus.RoutedSubject("product") {
		t.Fatalf("got %d messages: %v", len(got), got)
	}
	if n := len(testkit.Messages(t, b, bus.StreamFeedback, bus.AllFeedback)); n != 3 {
		t.Fatalf("feedback.> matched %d, want 3", n)
	}
}
