package httpport

import (
	"testing"
	"time"
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
