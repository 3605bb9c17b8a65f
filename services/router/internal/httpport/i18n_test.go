package httpport

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// The page's language follows the customer's locale as the notifier's
// templates do (the locale, its base language, then English), and its
// dates are written as that language writes them.
func TestLanguageAndDates(t *testing.T) {
	at := time.Date(2026, time.December, 6, 3, 35, 0, 0, time.UTC)
	for _, c := range []struct{ locale, lang, date, dateTime string }{
		{"de", "de", "6. Dezember 2026", "6. Dezember 2026, 03:35 UTC"},
		{"de-CH", "de", "6. Dezember 2026", "6. Dezember 2026, 03:35 UTC"},
		{"FR_fr", "fr", "6 décembre 2026", "6 décembre 2026 à 03:35 UTC"},
		{"en", "en", "6 December 2026", "6 December 2026, 03:35 UTC"},
		{"en-US", "en-US", "December 6, 2026", "December 6, 2026, 03:35 UTC"},
		{"en-GB", "en", "6 December 2026", "6 December 2026, 03:35 UTC"},
		{"pt-BR", "en", "6 December 2026", "6 December 2026, 03:35 UTC"},
		{"", "en", "6 December 2026", "6 December 2026, 03:35 UTC"},
	} {
		tx := textsFor(c.locale)
		if tx.Lang != c.lang || tx.Date(at) != c.date || tx.DateTime(at) != c.dateTime {
			t.Errorf("%q: %s %q %q, want %s %q %q", c.locale, tx.Lang, tx.Date(at), tx.DateTime(at), c.lang, c.date, c.dateTime)
		}
	}
	// A time in another zone is still written in UTC.
	if got := english.DateTime(at.In(time.FixedZone("CET", 3600))); got != "6 December 2026, 03:35 UTC" {
		t.Errorf("CET time: %q", got)
	}
}

// Every language words every status the page can show, and every phrase.
func TestEveryLanguageIsComplete(t *testing.T) {
	for _, tx := range all {
		if len(tx.Status) != len(english.Status) {
			t.Errorf("%s: %d status words, want %d", tx.Lang, len(tx.Status), len(english.Status))
		}
		for _, s := range []string{tx.Title, tx.Received, tx.InProgress, tx.Closed, tx.Teams, tx.Timeline, tx.NextNews, tx.NextDone,
			tx.RateLink, tx.ClosedEntry, tx.SurveyTitle, tx.Question, tx.Low, tx.High, tx.Comment, tx.Send, tx.Thanks,
			tx.ErrNotOpen, tx.ErrScore, tx.ErrTooLong, tx.ErrInvalid, tx.NotFound, tx.NotFoundHelp, tx.GotIt(""), tx.Forwarded("x"),
			tx.Looking("x"), tx.Plan("x"), tx.Moved("x"), tx.Resolved("x"), tx.Declined("x"), tx.Reopened("x"), tx.ErrAnswered(3),
			tx.PlannedFor("d"), tx.NextPlanned("x", "d"), tx.TeamName("x")} {
			if s == "" {
				t.Errorf("%s: a text is missing", tx.Lang)
			}
		}
	}
}

// A team id is worded for the customer: "customer_success" reads
// "Customer success team" as a label and "the customer success team" in a
// sentence; the JSON form's English keeps the id.
func TestTeamIDsInWords(t *testing.T) {
	at := timestamppb.New(time.Date(2026, time.December, 6, 3, 35, 0, 0, time.UTC))
	for _, c := range []struct{ locale, label, forwarded, next string }{
		{"en", "Customer success team", "Forwarded to the customer success team", "Our customer success team plans"},
		{"de", "Team customer success", "customer success", "customer success"},
	} {
		item := &feedloopv1.Item{
			Feedback:    &feedloopv1.Feedback{Customer: &feedloopv1.Customer{Locale: c.locale}},
			ReceivedAt:  at,
			Assignments: []*feedloopv1.AssignmentState{{Team: "customer_success", Status: feedloopv1.Status_STATUS_PLANNED, PlannedDueAt: at}},
			Timeline:    []*feedloopv1.TimelineEntry{{At: at, Kind: feedloopv1.TimelineKind_TIMELINE_KIND_ROUTED, Team: "customer_success"}},
		}
		v := Build(item)
		if len(v.Teams) != 1 || v.Teams[0].Label != c.label {
			t.Errorf("%s: team label %+v, want %q", c.locale, v.Teams, c.label)
		}
		if len(v.Timeline) != 1 || !strings.Contains(v.Timeline[0].Text, c.forwarded) || strings.Contains(v.Timeline[0].Text, "_") {
			t.Errorf("%s: timeline %+v, want %q", c.locale, v.Timeline, c.forwarded)
		}
		if len(v.Timeline) == 1 && v.Timeline[0].What != "Forwarded to the customer_success team" {
			t.Errorf("%s: the JSON's what %q changed", c.locale, v.Timeline[0].What)
		}
		if !strings.Contains(v.Next, c.next) || strings.Contains(v.Next, "_") {
			t.Errorf("%s: next %q, want %q", c.locale, v.Next, c.next)
		}
	}
}
