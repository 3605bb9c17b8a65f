package cli

import (
	"bytes"
	"strings"
	"testing"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// Feedback text with terminal escape sequences reaches the team's terminal
// defused; layout characters survive.
func TestPrintableDefusesEscapes(t *testing.T) {
	var out bytes.Buffer
	printItem(printable{&out}, &feedloopv1.GetResponse{Item: &feedloopv1.Item{
		FeedbackId: "fb-1",
		Feedback: &feedloopv1.Feedback{Subject: "hi\x1b[2J", Text: "line one\nline two \x1b]52;c;ZXZpbA==\x07 end\r\x08",
			Customer: &feedloopv1.Customer{Name: "Eve\x1b[1A"}},
	}})
	got := out.String()
	for _, bad := range []string{"\x1b", "\x07", "\r", "\x08"} {
		if strings.Contains(got, bad) {
			t.Fatalf("output carries %q:\n%q", bad, got)
		}
	}
	if !strings.Contains(got, "line one\n") || !strings.Contains(got, "\uFFFD]52;c;") {
		t.Fatalf("output = %q", got)
	}
}

// A customer message in the timeline names the email's subject, as the
// notifier recorded it; a team alert has none to name.
func TestTimelineNamesTheCustomersEmail(t *testing.T) {
	told := timelineLine(&feedloopv1.TimelineEntry{Kind: feedloopv1.TimelineKind_TIMELINE_KIND_NOTIFIED, Step: feedloopv1.Step_STEP_PLANNED,
		Actor: "customer", Team: "billing", Subject: "Wir haben einen Plan: Charged twice", Text: "Guten Tag …"})
	if !strings.Contains(told, `told the customer: planned (email "Wir haben einen Plan: Charged twice")`) {
		t.Errorf("customer message line = %q", told)
	}
	alert := timelineLine(&feedloopv1.TimelineEntry{Kind: feedloopv1.TimelineKind_TIMELINE_KIND_NOTIFIED, Step: feedloopv1.Step_STEP_ROUTED,
		Actor: "team", Team: "billing", Internal: true})
	if strings.Contains(alert, "email") || !strings.Contains(alert, "told the team billing: routed") {
		t.Errorf("team alert line = %q", alert)
	}
}
