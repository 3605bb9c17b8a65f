package readmodel_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/feedloop/feedloop/pkg/bus"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router/internal/readmodel"
)

// searchable routes an item to billing with the fields a query looks at.
func (s *script) searchable(id, subject, raw, redacted, topic string, c *feedloopv1.Customer, d time.Duration, sl sla) {
	fb := &feedloopv1.Feedback{Id: id, Source: "helpdesk", Subject: subject, Text: raw, Customer: c, ReceivedAt: at(d)}
	cl := &feedloopv1.Classification{Topics: []*feedloopv1.TopicScore{{Topic: topic, Confidence: 0.9}}, RedactedText: redacted}
	s.add(bus.SubjectReceived, id, d, &feedloopv1.Received{Feedback: fb, StatusToken: "tok-" + id})
	s.add(bus.SubjectClassified, id, d, &feedloopv1.Classified{Feedback: fb, Classification: cl})
	a := &feedloopv1.Assignment{Team: "billing", Route: "billing-route", AcknowledgeBy: at(d + sl.ack)}
	s.add(bus.RoutedSubject("billing"), id, d, &feedloopv1.Routed{Feedback: fb, Classification: cl, Assignment: a})
}

// searchScript: four billing items, soonest due first q1..q4; q4 resolved.
func searchScript() *script {
	sc := &script{}
	sc.searchable("q1", "Refund missing", "charged twice, call 555-0100", "charged twice, call [PHONE]", "billing",
		&feedloopv1.Customer{Id: "cust-42", Name: "Ann Lee", Email: "ann@example.com"}, 0, sla{ack: time.Hour})
	sc.searchable("q2", "Ärger mit der Rechnung", "Die Rechnung ist falsch", "Die Rechnung ist falsch", "invoice",
		&feedloopv1.Customer{Id: "cust-7", Name: "Jörg Groß", Email: "joerg@example.de"}, 0, sla{ack: 2 * time.Hour})
	sc.searchable("q3", "", "App crashes at checkout; refund please", "App crashes at checkout; refund please", "app",
		&feedloopv1.Customer{Email: "Bo@Example.com"}, 0, sla{ack: 3 * time.Hour})
	sc.searchable("q4", "Refund done?", "was the refund sent", "was the refund sent", "billing",
		&feedloopv1.Customer{Id: "cust-42", Name: "Ann Lee"}, 0, sla{ack: 4 * time.Hour})
	sc.change("q4", "billing", routedSt, resolvedSt, time.Minute)
	return sc
}

// TestListQuery: a query keeps the items holding every word, in any case,
// in the redacted text, subject, topics or customer id, name or email —
// never the unredacted text — with the statuses filter, paging over the
// matches and a total of the matches.
func TestListQuery(t *testing.T) {
	ctx := context.Background()
	s, rdb := store(t)
	applyAll(t, s, searchScript().events)

	list := func(q string, statuses []feedloopv1.Status, offset, limit int) ([]string, int64) {
		t.Helper()
		sums, total, err := s.List(ctx, "billing", statuses, q, offset, limit)
		if err != nil {
			t.Fatalf("List(%q): %v", q, err)
		}
		return ids(sums), total
	}
	all := []feedloopv1.Status{routedSt, resolvedSt}
	tests := []struct {
		name          string
		q             string
		statuses      []feedloopv1.Status
		offset, limit int
		want          []string
		total         int64
	}{
		{"blank matches all", "  ", nil, 0, 0, []string{"q1", "q2", "q3"}, 3},
		{"text word, open only", "REFUND", nil, 0, 0, []string{"q1", "q3"}, 2},
		{"text word, every status", "refund", all, 0, 0, []string{"q1", "q3", "q4"}, 3},
		{"every word must occur", "refund checkout", all, 0, 0, []string{"q3"}, 1},
		{"a word absent from all", "refund xyzzy", all, 0, 0, []string{}, 0},
		{"redacted text only", "555-0100", all, 0, 0, []string{}, 0},
		{"the redaction placeholder", "[phone]", nil, 0, 0, []string{"q1"}, 1},
		{"subject, non-ASCII case", "ärger", nil, 0, 0, []string{"q2"}, 1},
		{"topic", "invoice", nil, 0, 0, []string{"q2"}, 1},
		{"customer id", "cust-42", all, 0, 0, []string{"q1", "q4"}, 2},
		{"customer name, both words", "JÖRG groß", nil, 0, 0, []string{"q2"}, 1},
		{"customer email", "bo@example.com", nil, 0, 0, []string{"q3"}, 1},
		{"resolved only", "refund", []feedloopv1.Status{resolvedSt}, 0, 0, []string{"q4"}, 1},
		{"a page of the matches", "refund", all, 1, 1, []string{"q3"}, 3},
		{"past the matches", "refund", all, 3, 5, []string{}, 3},
	}
	for _, tt := range tests {
		got, total := list(tt.q, tt.statuses, tt.offset, tt.limit)
		if !slices.Equal(got, tt.want) || total != tt.total {
			t.Errorf("%s: List(%q) = %v (total %d), want %v (total %d)", tt.name, tt.q, got, total, tt.want, tt.total)
		}
	}
	// A word never matches across two fields: q1's text ends with
	// "[PHONE]" and its subject starts with "Refund".
	if got, _ := list("[phone]refund", nil, 0, 0); len(got) != 0 {
		t.Errorf("a word matched across two fields: %v", got)
	}

	// An item folded in before search documents existed is found from the
	// item itself.
	if err := rdb.Del(ctx, s.Prefix()+"search:q3").Err(); err != nil {
		t.Fatal(err)
	}
	if got, total := list("refund", all, 0, 0); !slices.Equal(got, []string{"q1", "q3", "q4"}) || total != 3 {
		t.Errorf("without q3's search document: %v (total %d)", got, total)
	}

	// A query reads a bounded number of items: beyond it, it says so.
	readmodel.SetQueryScan(s, 3)
	if got, _ := list("refund", nil, 0, 0); !slices.Equal(got, []string{"q1", "q3"}) {
		t.Errorf("3 open items at a bound of 3: %v", got)
	}
	for _, st := range [][]feedloopv1.Status{all, {routedSt, ackSt, plannedSt, reopenedSt, resolvedSt}} {
		if _, _, err := s.List(ctx, "billing", st, "refund", 0, 0); !errors.Is(err, readmodel.ErrQueryTooBroad) {
			t.Errorf("4 items at a bound of 3, statuses %v: err = %v, want ErrQueryTooBroad", st, err)
		}
	}
	readmodel.SetQueryScan(s, 4)
	if _, _, err := s.List(ctx, "billing", []feedloopv1.Status{routedSt}, "refund", 0, 0); err != nil {
		t.Errorf("one status set under the bound: %v", err)
	}
}

// TestSearchDocumentFollowsTheItem: the search document is written with
// the item, not before it is routed, and a rebuild writes the same.
func TestSearchDocumentFollowsTheItem(t *testing.T) {
	ctx := context.Background()
	s, rdb := store(t)
	sc := searchScript()
	applyAll(t, s, sc.events[:2]) // q1 received and classified, not routed
	if n, _ := rdb.Exists(ctx, s.Prefix()+"search:q1").Result(); n != 0 {
		t.Error("an item routed to no team has a search document")
	}
	applyAll(t, s, sc.events[2:])
	doc, err := rdb.Get(ctx, s.Prefix()+"search:q1").Result()
	if err != nil {
		t.Fatal(err)
	}
	if want := "charged twice, call [phone]\nrefund missing\ncust-42\nann lee\nann@example.com\nbilling"; doc != want {
		t.Errorf("search document = %q, want %q", doc, want)
	}
}
