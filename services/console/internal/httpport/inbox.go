package httpport

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// pageSize is the inbox's page: each row costs the router a Get (for the
// customer and score bands, which ItemSummary lacks), so it stays modest.
const pageSize = 25

// Row is one item of the inbox.
type Row struct {
	ID          string
	Subject     string
	Excerpt     string
	Customer    string
	Priority    string
	Status      string
	StatusClass string
	Sentiment   string
	Topics      []string
	Bands       []string
	Due         Due
	Others      []string // other teams' statuses, "logistics: planned"
	New         bool
}

// States are the inbox filters, in menu order.
var states = []struct{ Key, Label string }{
	{"open", "Open"}, {"acknowledged", "Acknowledged"}, {"planned", "Planned"},
	{"resolved", "Resolved"}, {"declined", "Declined"}, {"all", "All"},
}

func statusesOf(state string) ([]feedloopv1.Status, bool) {
	switch state {
	case "", "open":
		return nil, true
	case "acknowledged":
		return []feedloopv1.Status{feedloopv1.Status_STATUS_ACKNOWLEDGED}, true
	case "planned":
		return []feedloopv1.Status{feedloopv1.Status_STATUS_PLANNED}, true
	case "resolved":
		return []feedloopv1.Status{feedloopv1.Status_STATUS_RESOLVED}, true
	case "declined":
		return []feedloopv1.Status{feedloopv1.Status_STATUS_DECLINED}, true
	case "all":
		var all []feedloopv1.Status
		for s := feedloopv1.Status_STATUS_ROUTED; s <= feedloopv1.Status_STATUS_REOPENED; s++ {
			all = append(all, s)
		}
		return all, true
	}
	return nil, false
}

type inboxData struct {
	State    string
	States   []struct{ Key, Label string }
	Query    string
	Rows     []Row
	Total    int64
	From     int
	To       int
	NextURL  string
	FirstURL string
	Live     bool // new items may be inserted at the top as they come
}

func (s *Server) inbox(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.auth(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		state = "open"
	}
	statuses, known := statusesOf(state)
	if !known {
		s.errorPage(w, r, http.StatusBadRequest, "Unknown filter", "There is no state called "+strconv.Quote(state)+".")
		return
	}
	query := strings.TrimSpace(q.Get("q"))
	from, _ := strconv.Atoi(q.Get("from"))
	ctx, cancel := s.call(r, sess)
	defer cancel()
	res, err := s.Team.List(ctx, &feedloopv1.ListRequest{Statuses: statuses, PageSize: pageSize, PageToken: q.Get("page"), Query: query})
	if err != nil {
		s.callFailed(w, r, err)
		return
	}
	rows := s.rows(res.GetItems())
	d := inboxData{
		State: state, States: states, Query: query, Rows: rows, Total: res.GetTotal(),
		From: from + 1, To: from + len(rows),
		Live: state == "open" && query == "" && q.Get("page") == "",
	}
	base := url.Values{}
	if state != "open" {
		base.Set("state", state)
	}
	if query != "" {
		base.Set("q", query)
	}
	if q.Get("page") != "" {
		d.FirstURL = "/?" + base.Encode()
	}
	if t := res.GetNextPageToken(); t != "" {
		next := url.Values{}
		for k, v := range base {
			next[k] = v
		}
		next.Set("page", t)
		next.Set("from", strconv.Itoa(from+len(rows)))
		d.NextURL = "/?" + next.Encode()
	}
	s.render(w, http.StatusOK, "inbox", page{Title: "Inbox", Session: sess, Nav: "inbox", Data: d})
}

// rows turns the summaries into inbox rows.
func (s *Server) rows(items []*feedloopv1.ItemSummary) []Row {
	rows := make([]Row, len(items))
	now := s.Now()
	for i, it := range items {
		a := it.GetAssignment()
		rows[i] = Row{
			ID: it.GetFeedbackId(), Excerpt: it.GetExcerpt(), Topics: it.GetTopics(),
			Subject: it.GetSubject(), Customer: customerName(it.GetCustomer()),
			Bands:     summaryBands(it),
			Sentiment: enumWord(it.GetSentiment(), "SENTIMENT_"),
			Priority:  enumWord(a.GetPriority().String(), "PRIORITY_"),
			Status:    statusLabel(a.GetStatus()), StatusClass: strings.ToLower(statusLabel(a.GetStatus())),
			Due: due(a.GetDueAt(), now),
		}
		if !open(a.GetStatus()) {
			rows[i].Due = Due{}
		}
		for team, st := range it.GetOtherTeams() {
			rows[i].Others = append(rows[i].Others, team+": "+strings.ToLower(statusLabel(st)))
		}
		sortStrings(rows[i].Others)
	}
	return rows
}

// summaryBands are the score bands of a list line, as bands shows them.
func summaryBands(it *feedloopv1.ItemSummary) []string {
	return bands(&feedloopv1.Classification{NpsBand: it.GetNpsBand(), CsatBand: it.GetCsatBand(), CesBand: it.GetCesBand()},
		&feedloopv1.Feedback{Nps: it.Nps, Csat: it.Csat, Ces: it.Ces})
}

// routedRow is the inbox row of a newly routed item, from the live stream.
func routedRow(rt *feedloopv1.Routed, now time.Time) Row {
	fb, c, a := rt.GetFeedback(), rt.GetClassification(), rt.GetAssignment()
	r := Row{
		ID: fb.GetId(), Subject: fb.GetSubject(), Excerpt: excerpt(c.GetRedactedText()),
		Customer: customerName(fb.GetCustomer()), Priority: enumWord(a.GetPriority().String(), "PRIORITY_"),
		Status: "New", StatusClass: "new", Sentiment: enumWord(c.GetSentiment().String(), "SENTIMENT_"),
		Bands: bands(c, fb), Due: due(a.GetAcknowledgeBy(), now), New: true,
	}
	for _, t := range c.GetTopics() {
		r.Topics = append(r.Topics, t.GetTopic())
	}
	return r
}

func excerpt(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if r := []rune(s); len(r) > 140 {
		return string(r[:139]) + "…"
	}
	return s
}
