// Package httpport is the router's HTTP port: the customer's status link,
// /status/{token}, with the customer-facing timeline of one item (HTML or
// JSON by Accept), and the one-question satisfaction survey, whose answer
// the survey use case (app.Survey) sends back through intake as feedback
// with in_reply_to set, like any other answer.
//
// The HTML page is in the customer's language (i18n.go: en, de, fr, from
// the customer's locale); the JSON form is for machines and stays English.
//
// The token is the only key: unknown tokens get 404, and nothing internal
// (comments, escalations, reroute reasons, other customers) is ever shown.
package httpport

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/intake/validate"
	"github.com/feedloop/feedloop/services/router/internal/app"
	"github.com/feedloop/feedloop/services/router/internal/workflow"
)

// Store finds an item by its status token.
type Store interface {
	ItemByToken(ctx context.Context, token string) (*feedloopv1.Item, error)
}

//go:embed page.html.tmpl
var pages embed.FS

var page = template.Must(template.New("page.html.tmpl").Funcs(template.FuncMap{
	"seq": func() []int { return []int{1, 2, 3, 4, 5} },
}).ParseFS(pages, "page.html.tmpl"))

// Handler serves /status/{token} and /status/{token}/survey.
type Handler struct {
	store    Store
	notFound func(error) bool
	survey   *app.Survey
	log      *slog.Logger
}

// New returns the handler. notFound tells a missing token from a failure;
// survey takes the answers.
func New(store Store, notFound func(error) bool, survey *app.Survey, log *slog.Logger) *Handler {
	return &Handler{store: store, notFound: notFound, survey: survey, log: log}
}

// Routes registers the handler's routes on mux.
func (h *Handler) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /status/{token}", h.status)
	mux.HandleFunc("GET /status/{token}/survey", h.surveyForm)
	mux.HandleFunc("POST /status/{token}/survey", h.surveyAnswer)
}

// View is what the customer sees.
type View struct {
	Received time.Time   `json:"received_at"`
	Closed   bool        `json:"closed"`
	Teams    []TeamView  `json:"teams"`
	Timeline []EntryView `json:"timeline"`
	Survey   *SurveyView `json:"-"`
	Answered bool        `json:"survey_answered"`
	CSAT     int32       `json:"csat,omitempty"`
	Token    string      `json:"-"`
	Subject  string      `json:"subject,omitempty"`
	// Language is the page's language (en, de, fr), from the customer's
	// locale; T its words.
	Language string `json:"language"`
	T        *texts `json:"-"`
	// Next is what happens next, in T's language.
	Next string `json:"-"`
}

// TeamView is one team's share as the customer sees it.
type TeamView struct {
	Team    string     `json:"team"`
	Status  string     `json:"status"`
	Due     *time.Time `json:"planned_for,omitempty"`
	Message string     `json:"message,omitempty"`
	// Label and State are the team and its status as T words them.
	Label string `json:"-"`
	State string `json:"-"`
}

// EntryView is one customer-facing event.
type EntryView struct {
	At      time.Time  `json:"at"`
	What    string     `json:"what"`
	Team    string     `json:"team,omitempty"`
	Message string     `json:"message,omitempty"`
	Due     *time.Time `json:"due,omitempty"`
	// Text is What in the page's language (What stays English for the
	// JSON form's readers).
	Text string `json:"-"`
}

// SurveyView is the survey form state.
type SurveyView struct {
	Score  int
	Thanks bool
	Error  string
	// Field names the input Error is about ("csat", "comment").
	Field string
	// Says is Error for the customer, in the page's language; Error stays
	// the API's English.
	Says string
	// Comment is the comment sent with a refused answer, to correct rather
	// than retype.
	Comment string
}

// surveyError is a refusal as the customer reads it.
func surveyError(t *texts, e *app.SurveyError, score int32) string {
	switch e.Reason {
	case app.SurveyNotOpen:
		return t.ErrNotOpen
	case app.SurveyAnswered:
		return t.ErrAnswered(score)
	case app.SurveyCommentTooLong:
		return t.ErrTooLong
	case app.SurveyNoScore:
		return t.ErrScore
	default:
		return t.ErrInvalid
	}
}

func (h *Handler) item(w http.ResponseWriter, r *http.Request) (*feedloopv1.Item, bool) {
	secure(w)
	token := r.PathValue("token")
	if !validToken(token) {
		notFound(w)
		return nil, false
	}
	item, err := h.store.ItemByToken(r.Context(), token)
	switch {
	case err == nil:
		return item, true
	case h.notFound(err):
		notFound(w)
	default:
		h.log.ErrorContext(r.Context(), "httpport: read model unavailable", "err", err)
		http.Error(w, "temporarily unavailable, please try again", http.StatusServiceUnavailable)
	}
	return nil, false
}

func (h *Handler) status(w http.ResponseWriter, r *http.Request) {
	item, ok := h.item(w, r)
	if !ok {
		return
	}
	v := Build(item)
	if wantsJSON(r) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
		return
	}
	v.Token = r.PathValue("token")
	h.render(w, v)
}

func (h *Handler) surveyForm(w http.ResponseWriter, r *http.Request) {
	item, ok := h.item(w, r)
	if !ok {
		return
	}
	v := Build(item)
	v.Token = r.PathValue("token")
	score, _ := strconv.Atoi(r.URL.Query().Get("csat"))
	v.Survey = &SurveyView{Score: score}
	h.render(w, v)
}

// surveyAnswer takes the form (csat, comment) or JSON {"csat":N,"comment":""}.
func (h *Handler) surveyAnswer(w http.ResponseWriter, r *http.Request) {
	item, ok := h.item(w, r)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 2*app.MaxCommentBytes)
	var ans struct {
		CSAT    int    `json:"csat"`
		Comment string `json:"comment"`
	}
	var err error
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		err = json.NewDecoder(r.Body).Decode(&ans)
	} else if err = r.ParseForm(); err == nil {
		ans.CSAT, err = strconv.Atoi(r.PostForm.Get("csat"))
		ans.Comment = r.PostForm.Get("comment")
	}
	var tooBig *http.MaxBytesError
	sent := app.SurveyAnswer{CSAT: ans.CSAT, Comment: ans.Comment, TooLong: errors.As(err, &tooBig)}
	if err != nil && !sent.TooLong {
		sent.CSAT = 0 // unreadable: no score was chosen
	}
	v := Build(item)
	v.Token = r.PathValue("token")
	// A refused answer's comment stays in the form, to correct rather
	// than retype.
	v.Survey = &SurveyView{Score: ans.CSAT, Comment: ans.Comment}
	var refused *app.SurveyError
	switch err := h.survey.Submit(r.Context(), item, sent); {
	case err == nil:
		v.Survey.Thanks = true
	case errors.As(err, &refused):
		v.Survey.Field, v.Survey.Error = refused.Field, refused.Msg
		v.Survey.Says = surveyError(v.T, refused, item.GetCsat())
		if refused.Reason == app.SurveyInvalid && refused.Field == "comment" {
			// Characters the customer's screen did not show (a paste's
			// control characters): the form offers the comment back
			// without them, for the customer to check and send.
			v.Survey.Comment = validate.StripText(ans.Comment)
		}
		code := http.StatusUnprocessableEntity
		if refused.Conflict {
			code = http.StatusConflict
		}
		w.WriteHeader(code)
	default:
		h.log.ErrorContext(r.Context(), "httpport: survey answer not stored", "err", err)
		http.Error(w, "temporarily unavailable, please try again", http.StatusServiceUnavailable)
		return
	}
	h.respond(w, r, v)
}

func (h *Handler) respond(w http.ResponseWriter, r *http.Request, v View) {
	if wantsJSON(r) {
		w.Header().Set("Content-Type", "application/json")
		out := map[string]any{"ok": v.Survey.Error == ""}
		if v.Survey.Error != "" {
			out["error"] = v.Survey.Error
			if v.Survey.Field != "" {
				out["field"] = v.Survey.Field
			}
		}
		_ = json.NewEncoder(w).Encode(out)
		return
	}
	h.render(w, v)
}

func (h *Handler) render(w http.ResponseWriter, v View) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := page.Execute(w, v); err != nil {
		h.log.Error("httpport: render", "err", err)
	}
}

// Build turns an item into the customer's view: teams' statuses and the
// customer-facing events only.
func Build(item *feedloopv1.Item) View {
	t := textsFor(item.GetFeedback().GetCustomer().GetLocale())
	v := View{
		T:        t,
		Language: t.Lang,
		Received: item.GetReceivedAt().AsTime(),
		Closed:   item.GetClosedAt() != nil,
		CSAT:     item.GetCsat(),
		Answered: item.GetCsat() > 0,
		Subject:  item.GetFeedback().GetSubject(),
	}
	for _, a := range item.GetAssignments() {
		if a.GetStatus() == feedloopv1.Status_STATUS_REROUTED {
			continue // the team it went to is listed instead
		}
		tv := TeamView{Team: a.GetTeam(), Status: workflow.StatusName(a.GetStatus()),
			Label: t.TeamName(teamWords(a.GetTeam())), State: t.Status[a.GetStatus()]}
		if tv.State == "" {
			tv.State = tv.Status
		}
		switch a.GetStatus() {
		case feedloopv1.Status_STATUS_PLANNED:
			tv.Due = ts(a.GetPlannedDueAt())
			tv.Message = a.GetCustomerMessage()
		case feedloopv1.Status_STATUS_RESOLVED:
			tv.Message = a.GetCustomerMessage()
		case feedloopv1.Status_STATUS_DECLINED:
			tv.Message = a.GetReason()
		}
		v.Teams = append(v.Teams, tv)
	}
	for _, e := range item.GetTimeline() {
		if ev, ok := entry(e, t); ok {
			v.Timeline = append(v.Timeline, ev)
		}
	}
	v.Next = next(v)
	return v
}

// teamWords is a team id as the customer reads it: "customer_success" →
// "customer success" (ids are a-z, 0-9, '_' and '-').
func teamWords(team string) string { return idSeparators.Replace(team) }

var idSeparators = strings.NewReplacer("_", " ", "-", " ")

// next is the line under the header saying what happens next: the
// earliest date a team promised, or that we write when there is news.
func next(v View) string {
	if v.Closed {
		return v.T.NextDone
	}
	var soonest *TeamView
	for i, tv := range v.Teams {
		if tv.Due != nil && tv.Status == workflow.StatusName(feedloopv1.Status_STATUS_PLANNED) && (soonest == nil || tv.Due.Before(*soonest.Due)) {
			soonest = &v.Teams[i]
		}
	}
	if soonest != nil {
		return v.T.NextPlanned(teamWords(soonest.Team), v.T.Date(*soonest.Due))
	}
	return v.T.NextNews
}

// entry is e as the customer reads it, or false when the customer must not
// see it (internal notes, escalations, reroute reasons, deliveries).
// Its What is English (the JSON form's, unchanged), its Text in t's
// language.
func entry(e *feedloopv1.TimelineEntry, t *texts) (EntryView, bool) {
	if e.GetInternal() {
		return EntryView{}, false
	}
	ev := EntryView{At: e.GetAt().AsTime(), Team: e.GetTeam()}
	team, words := e.GetTeam(), teamWords(e.GetTeam())
	switch e.GetKind() {
	case feedloopv1.TimelineKind_TIMELINE_KIND_RECEIVED:
		ev.What, ev.Text = english.GotIt(team), t.GotIt(words)
		ev.Team = ""
	case feedloopv1.TimelineKind_TIMELINE_KIND_ROUTED:
		ev.What, ev.Text = english.Forwarded(team), t.Forwarded(words)
	case feedloopv1.TimelineKind_TIMELINE_KIND_STATUS_CHANGED:
		switch e.GetTo() {
		case feedloopv1.Status_STATUS_ACKNOWLEDGED:
			ev.What, ev.Text = english.Looking(team), t.Looking(words)
		case feedloopv1.Status_STATUS_PLANNED:
			ev.What, ev.Text = english.Plan(team), t.Plan(words)
			if e.GetFrom() == feedloopv1.Status_STATUS_PLANNED {
				ev.What, ev.Text = english.Moved(team), t.Moved(words)
			}
			ev.Message, ev.Due = e.GetCustomerMessage(), ts(e.GetDueAt())
		case feedloopv1.Status_STATUS_RESOLVED:
			ev.What, ev.Text = english.Resolved(team), t.Resolved(words)
			ev.Message = e.GetCustomerMessage()
		case feedloopv1.Status_STATUS_DECLINED:
			ev.What, ev.Text = english.Declined(team), t.Declined(words)
			ev.Message = e.GetReason()
		case feedloopv1.Status_STATUS_REOPENED:
			ev.What, ev.Text = english.Reopened(team), t.Reopened(words)
		default:
			return EntryView{}, false // rerouted: the new team's "forwarded" says it
		}
	case feedloopv1.TimelineKind_TIMELINE_KIND_CLOSED:
		ev.What, ev.Text, ev.Team = english.ClosedEntry, t.ClosedEntry, ""
	case feedloopv1.TimelineKind_TIMELINE_KIND_REPLIED:
		// One answer is attributed to each team; show it once.
		return EntryView{}, false
	default:
		return EntryView{}, false
	}
	return ev, true
}

func ts(t *timestamppb.Timestamp) *time.Time {
	if t == nil {
		return nil
	}
	v := t.AsTime()
	return &v
}

// validToken accepts what intake issues: 32 lower-case hex digits.
func validToken(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

func wantsJSON(r *http.Request) bool {
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "application/json") && !strings.Contains(accept, "text/html")
}

// notFound is the page of an unknown or malformed token: whose it would
// be is unknown, so it says so in every language the page speaks.
func notFound(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusNotFound)
	// The status is written; a client gone away is not ours to log.
	_ = page.ExecuteTemplate(w, "notfound", all)
}

// secure sets headers for a page reached by a secret link: no caching, no
// referrer (the token is in the URL), no scripts.
func secure(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
	h.Set("X-Robots-Tag", "noindex")
}
