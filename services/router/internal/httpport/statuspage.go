// Package httpport is the router's HTTP port: the customer's status link,
// /status/{token}, with the customer-facing timeline of one item (HTML or
// JSON by Accept), and the one-question satisfaction survey, whose answer
// the survey use case (app.Survey) sends back through intake as feedback
// with in_reply_to set, like any other answer.
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
	"date": func(t time.Time) string { return t.Format("2 January 2006") },
	"seq":  func() []int { return []int{1, 2, 3, 4, 5} },
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
}

// TeamView is one team's share as the customer sees it.
type TeamView struct {
	Team    string     `json:"team"`
	Status  string     `json:"status"`
	Due     *time.Time `json:"planned_for,omitempty"`
	Message string     `json:"message,omitempty"`
}

// EntryView is one customer-facing event.
type EntryView struct {
	At      time.Time  `json:"at"`
	What    string     `json:"what"`
	Team    string     `json:"team,omitempty"`
	Message string     `json:"message,omitempty"`
	Due     *time.Time `json:"due,omitempty"`
}

// SurveyView is the survey form state.
type SurveyView struct {
	Score  int
	Thanks bool
	Error  string
	// Field names the input Error is about ("csat", "comment").
	Field string
}

func (h *Handler) item(w http.ResponseWriter, r *http.Request) (*feedloopv1.Item, bool) {
	secure(w)
	token := r.PathValue("token")
	if !validToken(token) {
		http.NotFound(w, r)
		return nil, false
	}
	item, err := h.store.ItemByToken(r.Context(), token)
	switch {
	case err == nil:
		return item, true
	case h.notFound(err):
		http.NotFound(w, r)
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
	v.Survey = &SurveyView{Score: ans.CSAT}
	var refused *app.SurveyError
	switch err := h.survey.Submit(r.Context(), item, sent); {
	case err == nil:
		v.Survey.Thanks = true
	case errors.As(err, &refused):
		v.Survey.Field, v.Survey.Error = refused.Field, refused.Msg
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
	v := View{
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
		tv := TeamView{Team: a.GetTeam(), Status: workflow.StatusName(a.GetStatus())}
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
		if ev, ok := entry(e); ok {
			v.Timeline = append(v.Timeline, ev)
		}
	}
	return v
}

// entry is e as the customer reads it, or false when the customer must not
// see it (internal notes, escalations, reroute reasons, deliveries).
func entry(e *feedloopv1.TimelineEntry) (EntryView, bool) {
	if e.GetInternal() {
		return EntryView{}, false
	}
	ev := EntryView{At: e.GetAt().AsTime(), Team: e.GetTeam()}
	switch e.GetKind() {
	case feedloopv1.TimelineKind_TIMELINE_KIND_RECEIVED:
		ev.What, ev.Team = "We received your feedback", ""
	case feedloopv1.TimelineKind_TIMELINE_KIND_ROUTED:
		ev.What = "Forwarded to the " + e.GetTeam() + " team"
	case feedloopv1.TimelineKind_TIMELINE_KIND_STATUS_CHANGED:
		switch e.GetTo() {
		case feedloopv1.Status_STATUS_ACKNOWLEDGED:
			ev.What = "The " + e.GetTeam() + " team is looking into it"
		case feedloopv1.Status_STATUS_PLANNED:
			ev.What, ev.Message, ev.Due = "The "+e.GetTeam()+" team has a plan", e.GetCustomerMessage(), ts(e.GetDueAt())
			if e.GetFrom() == feedloopv1.Status_STATUS_PLANNED {
				ev.What = "The " + e.GetTeam() + " team moved the date"
			}
		case feedloopv1.Status_STATUS_RESOLVED:
			ev.What, ev.Message = "Resolved by the "+e.GetTeam()+" team", e.GetCustomerMessage()
		case feedloopv1.Status_STATUS_DECLINED:
			ev.What, ev.Message = "The "+e.GetTeam()+" team will not act on it", e.GetReason()
		case feedloopv1.Status_STATUS_REOPENED:
			ev.What = "Reopened for the " + e.GetTeam() + " team"
		default:
			return EntryView{}, false // rerouted: the new team's "forwarded" says it
		}
	case feedloopv1.TimelineKind_TIMELINE_KIND_CLOSED:
		ev.What, ev.Team = "Closed", ""
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
