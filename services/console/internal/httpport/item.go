package httpport

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/language"
	"golang.org/x/text/language/display"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/console/internal/session"
	"github.com/feedloop/feedloop/services/notifier/preview"
)

// Form is what the user typed into the item page's forms, kept when an
// action is refused or previewed.
type Form struct {
	Action string // the form the error or preview belongs to
	// CustomerMessage is read by the customer (plan, resolve, decline),
	// InternalNote only by teams (reroute, comment): the team API's names.
	CustomerMessage string
	InternalNote    string
	Due             string // YYYY-MM-DD
	Team            string
	Error           string            // the refusal, in words
	Fields          map[string]string // field → problem
}

// Preview is the preview of one form's customer messages.
type Preview struct {
	Action   string
	Messages []PreviewMessage
	Skipped  []string
	Err      string
}

// PreviewMessage is one message with the URL of its HTML rendering.
type PreviewMessage struct {
	preview.Message
	LocaleName string
	HTMLURL    string
}

type timelineEntry struct {
	At       time.Time
	Kind     string
	Team     string
	Actor    string
	Summary  string
	Customer string // what the customer was told
	Internal string // what only teams see
	Email    *sentEmail
	Mine     bool
}

// sentEmail is a message the customer was sent, as the notifier recorded it.
type sentEmail struct{ Subject, Text string }

type topic struct {
	Name       string
	Confidence string
}

type itemData struct {
	ID          string
	Feedback    *feedloopv1.Feedback
	Customer    string
	LocaleName  string // the customer's locale in words: "German (de)"
	Consent     string
	Channel     string
	Received    time.Time
	Text        string
	Topics      []topic
	Sentiment   string
	Urgency     string
	Bands       []string
	Source      string
	Rules       []string
	Evidence    []*feedloopv1.Evidence
	Model       string
	Redactions  []string
	Mine        *feedloopv1.AssignmentState
	MyStatus    string
	MyDue       Due
	Planned     time.Time
	Open        bool
	CanAck      bool
	Assignments []assignmentView
	Timeline    []timelineEntry
	History     []Row
	Teams       []string // reroute targets
	Form        Form
	TopError    string // a refusal whose form is no longer shown
	Preview     *Preview
	Done        string
	MinDue      string
	// WriteIn names, per action (plan, resolve, decline), the language of
	// the email it sends the customer ("German"), absent when it sends
	// none: the team's message goes into that email, so it is the
	// language to write it in.
	WriteIn map[string]string
}

type assignmentView struct {
	Team, Status, StatusClass, Priority string
	Due                                 Due
	Mine                                bool
}

func (s *Server) item(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.auth(w, r)
	if !ok {
		return
	}
	var done string
	switch r.URL.Query().Get("done") {
	case "acknowledge":
		done = "Acknowledged. The customer is not told; your team's clock now runs to the plan or resolve deadline."
	case "plan":
		done = "Planned. The customer will be told the date and your message."
	case "resolve":
		done = "Resolved. The customer will be told and asked how it went."
	case "decline":
		done = "Declined. The customer will be told your reason."
	case "reroute":
		done = "Rerouted. The other team now owns this share; it leaves your inbox."
	case "comment":
		done = "Note added. Only teams see it."
	}
	s.showItem(w, r, sess, http.StatusOK, Form{}, nil, done)
}

// showItem renders the item page with f (values and refusal) and p.
func (s *Server) showItem(w http.ResponseWriter, r *http.Request, sess session.Session, code int, f Form, p *Preview, done string) {
	ctx, cancel := s.call(r, sess)
	defer cancel()
	id := r.PathValue("id")
	g, err := s.Team.Get(ctx, &feedloopv1.GetRequest{FeedbackId: id})
	if err != nil {
		s.callFailed(w, r, err)
		return
	}
	me, err := s.Team.Me(ctx, &feedloopv1.MeRequest{})
	if err != nil {
		if s.refused(w, r, err) {
			return
		}
		me = &feedloopv1.MeResponse{Team: sess.Team}
	}
	d := s.itemView(g, sess.Team, me.GetTeams())
	d.Form, d.Preview, d.Done = f, p, done
	if d.Open { // the message forms are shown only then
		d.WriteIn = s.writeIn(g.GetItem(), d.Mine, sess, d.MinDue)
	}
	shown := map[string]bool{"acknowledge": d.CanAck, "plan": d.Open && !d.CanAck, "resolve": d.Open && !d.CanAck,
		"decline": d.Open, "reroute": d.Open, "comment": true}
	if f.Error != "" && !shown[f.Action] {
		d.TopError = f.Error
	}
	title := d.Feedback.GetSubject()
	if title == "" {
		title = "Item " + shortID(id)
	}
	s.render(w, code, "item", page{Title: title, Session: sess, Nav: "inbox", Data: d})
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func (s *Server) itemView(g *feedloopv1.GetResponse, team string, teams []string) itemData {
	it := g.GetItem()
	fb, c := it.GetFeedback(), it.GetClassification()
	now := s.Now()
	d := itemData{
		ID: it.GetFeedbackId(), Feedback: fb, Customer: customerName(fb.GetCustomer()),
		Channel:  enumWord(fb.GetChannel().String(), "CHANNEL_"),
		Received: timeOf(it.GetReceivedAt()), Text: c.GetRedactedText(),
		Sentiment: enumWord(c.GetSentiment().String(), "SENTIMENT_"), Urgency: enumWord(c.GetUrgency().String(), "URGENCY_"),
		Bands: bands(c, fb), Source: enumWord(c.GetTopicSource().String(), "TOPIC_SOURCE_"),
		Rules: c.GetRuleIds(), Evidence: c.GetExplanation(), Model: c.GetModelVersion(),
		MinDue: now.UTC().AddDate(0, 0, 1).Format("2006-01-02"),
	}
	if d.Text == "" {
		d.Text = fb.GetText() // the router already gives teams redacted text
	}
	d.LocaleName = "not given"
	if loc := fb.GetCustomer().GetLocale(); loc != "" {
		d.LocaleName = localeLabel(loc)
	}
	switch cs := fb.GetCustomer().GetConsent(); {
	case cs.GetContact() && cs.GetSurvey():
		d.Consent = "progress messages and a survey"
	case cs.GetContact():
		d.Consent = "progress messages, no survey"
	default:
		d.Consent = "no messages: the customer will not be told of any step"
	}
	for _, t := range c.GetTopics() {
		d.Topics = append(d.Topics, topic{t.GetTopic(), fmt.Sprintf("%.0f%%", t.GetConfidence()*100)})
	}
	for k, n := range c.GetRedactions() {
		d.Redactions = append(d.Redactions, fmt.Sprintf("%d %s", n, k))
	}
	sortStrings(d.Redactions)
	for _, a := range it.GetAssignments() {
		mine := a.GetTeam() == team
		av := assignmentView{Team: a.GetTeam(), Status: statusLabel(a.GetStatus()), StatusClass: strings.ToLower(statusLabel(a.GetStatus())),
			Priority: enumWord(a.GetPriority().String(), "PRIORITY_"), Mine: mine}
		if open(a.GetStatus()) {
			av.Due = due(a.GetDueAt(), now)
		}
		d.Assignments = append(d.Assignments, av)
		// The team's live share: an open one over a rerouted-away one.
		if mine && (d.Mine == nil || open(a.GetStatus()) || !open(d.Mine.GetStatus())) {
			d.Mine = a
		}
	}
	if d.Mine != nil {
		d.MyStatus = statusLabel(d.Mine.GetStatus())
		d.Open = open(d.Mine.GetStatus())
		d.CanAck = d.Mine.GetStatus() == feedloopv1.Status_STATUS_ROUTED || d.Mine.GetStatus() == feedloopv1.Status_STATUS_REOPENED
		if d.Open {
			d.MyDue = due(d.Mine.GetDueAt(), now)
		}
		d.Planned = timeOf(d.Mine.GetPlannedDueAt())
	}
	for _, e := range it.GetTimeline() {
		d.Timeline = append(d.Timeline, timelineView(e, team))
	}
	slices.Reverse(d.Timeline) // newest first
	for _, h := range g.GetCustomerHistory() {
		a := h.GetAssignment()
		d.History = append(d.History, Row{ID: h.GetFeedbackId(), Excerpt: h.GetExcerpt(), Topics: h.GetTopics(),
			Status: statusLabel(a.GetStatus()), StatusClass: strings.ToLower(statusLabel(a.GetStatus()))})
	}
	for _, t := range teams {
		if t != team {
			d.Teams = append(d.Teams, t)
		}
	}
	return d
}

func timelineView(e *feedloopv1.TimelineEntry, team string) timelineEntry {
	v := timelineEntry{At: timeOf(e.GetAt()), Team: e.GetTeam(), Actor: e.GetActor(), Mine: e.GetTeam() == team}
	switch e.GetKind() {
	case feedloopv1.TimelineKind_TIMELINE_KIND_RECEIVED:
		v.Kind, v.Summary = "received", "Feedback received"
	case feedloopv1.TimelineKind_TIMELINE_KIND_ROUTED:
		v.Kind, v.Summary = "routed", "Routed to "+e.GetTeam()
	case feedloopv1.TimelineKind_TIMELINE_KIND_STATUS_CHANGED:
		v.Kind = "status"
		v.Summary = fmt.Sprintf("%s: %s → %s", e.GetTeam(), strings.ToLower(statusLabel(e.GetFrom())), strings.ToLower(statusLabel(e.GetTo())))
		if e.GetTo() == feedloopv1.Status_STATUS_PLANNED && e.GetDueAt() != nil {
			v.Summary += ", promised for " + e.GetDueAt().AsTime().UTC().Format("2 Jan 2006")
		}
		if e.GetTarget() != "" {
			v.Summary += " (to " + e.GetTarget() + ")"
		}
		v.Customer = e.GetCustomerMessage()
		if e.GetTo() == feedloopv1.Status_STATUS_DECLINED {
			v.Customer = e.GetReason()
		} else if e.GetReason() != "" {
			v.Internal = e.GetReason()
		}
	case feedloopv1.TimelineKind_TIMELINE_KIND_ESCALATED:
		v.Kind = "escalated"
		v.Summary = "SLA warning for " + e.GetTeam()
		if e.GetLevel() > 0 {
			v.Summary = fmt.Sprintf("SLA breached by %s (level %d", e.GetTeam(), e.GetLevel())
			if e.GetTarget() != "" {
				v.Summary += ", alerted " + e.GetTarget()
			}
			v.Summary += ")"
		}
	case feedloopv1.TimelineKind_TIMELINE_KIND_COMMENT:
		v.Kind, v.Summary, v.Internal = "comment", "Internal note by "+e.GetTeam(), e.GetText()
	case feedloopv1.TimelineKind_TIMELINE_KIND_REPLIED:
		v.Kind, v.Summary = "replied", "The customer answered"
		if e.GetLevel() > 0 {
			v.Summary += " (CSAT " + strconv.Itoa(int(e.GetLevel())) + ")"
		}
		v.Internal = e.GetText()
	case feedloopv1.TimelineKind_TIMELINE_KIND_CLOSED:
		v.Kind, v.Summary = "closed", "Every team closed its share"
	case feedloopv1.TimelineKind_TIMELINE_KIND_NOTIFIED:
		// The entry's actor is the audience ("customer", "team"), not a
		// person: the summary names who was told what instead.
		v.Kind, v.Summary, v.Actor = "notified", notifiedSummary(e.GetStep(), e.GetActor(), e.GetTeam()), ""
		if e.GetActor() == "customer" && (e.GetSubject() != "" || e.GetText() != "") {
			v.Email = &sentEmail{Subject: e.GetSubject(), Text: e.GetText()}
		}
	default:
		v.Kind, v.Summary = "other", "Event"
	}
	return v
}

// notifiedSummary says in a clerk's words which message went to whom.
func notifiedSummary(step feedloopv1.Step, audience, team string) string {
	if audience == "customer" {
		switch step {
		case feedloopv1.Step_STEP_RECEIVED:
			return "Customer told: we received their feedback"
		case feedloopv1.Step_STEP_PLANNED:
			return "Customer told: the plan and its date"
		case feedloopv1.Step_STEP_PLAN_CHANGED:
			return "Customer told: the promised date changed"
		case feedloopv1.Step_STEP_RESOLVED:
			return "Customer told: resolved"
		case feedloopv1.Step_STEP_DECLINED:
			return "Customer told: declined, with the reason"
		case feedloopv1.Step_STEP_SURVEY:
			return "Customer asked: how satisfied are they"
		case feedloopv1.Step_STEP_DIGEST:
			return "Customer sent: the day's held-back messages in one digest"
		}
		return "Customer sent a message: " + enumWord(step.String(), "STEP_")
	}
	who := "The team"
	if team != "" {
		who = team
	}
	switch step {
	case feedloopv1.Step_STEP_ROUTED:
		return who + " alerted: a new item"
	case feedloopv1.Step_STEP_ESCALATED:
		return who + " alerted: the SLA is at risk"
	case feedloopv1.Step_STEP_REOPENED:
		return who + " alerted: the customer's answer reopened it"
	}
	return who + " alerted: " + enumWord(step.String(), "STEP_")
}

// --- actions --------------------------------------------------------------

func formOf(r *http.Request, action string) Form {
	return Form{
		Action: action,
		// The older names (message, reason, text) come from a page loaded
		// before the forms were renamed: its words are not lost.
		CustomerMessage: postValue(r, "customer_message", "message", "reason"),
		InternalNote:    postValue(r, "internal_note", "reason", "text"),
		Due:             postValue(r, "due"),
		Team:            postValue(r, "team"),
	}
}

// postValue is the first of the form values names that is not blank.
func postValue(r *http.Request, names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(r.PostFormValue(n)); v != "" {
			return v
		}
	}
	return ""
}

// parseDue reads a date input (YYYY-MM-DD) as 00:00 UTC of that day, as
// `feedloop inbox plan --due` does.
func parseDue(s string) (*timestamppb.Timestamp, error) {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return nil, fmt.Errorf("choose a date")
	}
	return timestamppb.New(t), nil
}

func (s *Server) action(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.postAuth(w, r)
	if !ok {
		return
	}
	id, action := r.PathValue("id"), r.PathValue("action")
	if action == "preview" {
		s.preview(w, r, sess)
		return
	}
	f := formOf(r, action)
	ctx, cancel := s.call(r, sess)
	defer cancel()
	var err error
	switch action {
	case "acknowledge":
		_, err = s.Team.Acknowledge(ctx, &feedloopv1.AcknowledgeRequest{FeedbackId: id})
	case "plan":
		due, perr := parseDue(f.Due)
		if perr != nil {
			f.Fields = map[string]string{"due_at": "Choose the date you promise the customer."}
			f.Error = "Choose the date you promise the customer."
			s.showItem(w, r, sess, http.StatusUnprocessableEntity, f, nil, "")
			return
		}
		_, err = s.Team.Plan(ctx, &feedloopv1.PlanRequest{FeedbackId: id, CustomerMessage: f.CustomerMessage, DueAt: due})
	case "resolve":
		_, err = s.Team.Resolve(ctx, &feedloopv1.ResolveRequest{FeedbackId: id, CustomerMessage: f.CustomerMessage})
	case "decline":
		_, err = s.Team.Decline(ctx, &feedloopv1.DeclineRequest{FeedbackId: id, CustomerMessage: f.CustomerMessage})
	case "reroute":
		_, err = s.Team.Reroute(ctx, &feedloopv1.RerouteRequest{FeedbackId: id, Team: f.Team, InternalNote: f.InternalNote})
	case "comment":
		_, err = s.Team.Comment(ctx, &feedloopv1.CommentRequest{FeedbackId: id, InternalNote: f.InternalNote})
	default:
		s.errorPage(w, r, http.StatusNotFound, "Unknown action", "There is no action called "+strconv.Quote(action)+".")
		return
	}
	if err != nil {
		if s.refused(w, r, err) {
			return
		}
		code, msg, fields := explain(err)
		if code == http.StatusNotFound {
			s.callFailed(w, r, err)
			return
		}
		f.Error, f.Fields = msg, fields
		s.showItem(w, r, sess, code, f, nil, "")
		return
	}
	if action == "reroute" {
		http.Redirect(w, r, "/?rerouted="+url.QueryEscape(id), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/items/"+url.PathEscape(id)+"?done="+action, http.StatusSeeOther)
}

// explain turns a refused action into an HTTP status and words for the
// person at the form, with the fields at fault.
func explain(err error) (int, string, map[string]string) {
	st := status.Convert(err)
	fields := map[string]string{}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields[v.GetField()] = v.GetDescription()
			}
		}
	}
	switch st.Code() {
	case codes.InvalidArgument:
		var parts []string
		for f, d := range fields {
			parts = append(parts, fieldName(f)+": "+d)
		}
		sortStrings(parts)
		msg := "Please correct the form: " + strings.Join(parts, "; ") + "."
		if len(parts) == 0 {
			msg = "Please correct the form: " + st.Message() + "."
		}
		return http.StatusUnprocessableEntity, msg, fields
	case codes.FailedPrecondition:
		return http.StatusConflict, "This can't be done in the item's current state: " + st.Message() + ". Nothing was changed.", fields
	case codes.PermissionDenied:
		return http.StatusForbidden, "Your team may not do this: " + st.Message() + ". Nothing was changed.", fields
	case codes.Aborted:
		return http.StatusConflict, "Someone changed this item while you were working on it. Nothing was changed: check the timeline below and try again.", fields
	case codes.NotFound:
		return http.StatusNotFound, "", fields
	case codes.Unavailable, codes.DeadlineExceeded:
		return http.StatusServiceUnavailable, "The router did not answer, so nothing was changed. Try again in a moment.", fields
	}
	return http.StatusBadGateway, "The action failed: " + st.Message() + ". Nothing was changed.", fields
}

func fieldName(f string) string {
	switch f {
	case "due_at":
		return "date"
	case "team":
		return "team"
	case "customer_message":
		return "message to the customer"
	}
	return strings.ReplaceAll(f, "_", " ")
}

// --- preview --------------------------------------------------------------

// previewEvent is the StatusChanged the router would publish if sess's team
// did action with f now: the preview renders it as the notifier will.
func previewEvent(it *feedloopv1.Item, mine *feedloopv1.AssignmentState, team, actor string, f Form, now time.Time) (*feedloopv1.Event, error) {
	sc := &feedloopv1.StatusChanged{Team: team, Actor: actor, Feedback: it.GetFeedback(), StatusToken: preview.MaskedToken} // teams never get the real one
	if mine != nil {
		sc.From = mine.GetStatus()
	}
	switch f.Action {
	case "plan":
		sc.To, sc.CustomerMessage = feedloopv1.Status_STATUS_PLANNED, f.CustomerMessage
		due, err := parseDue(f.Due)
		if err != nil {
			return nil, fmt.Errorf("choose the date you promise, then preview again")
		}
		sc.DueAt = due
		if sc.From == feedloopv1.Status_STATUS_PLANNED {
			sc.PreviousDueAt = mine.GetPlannedDueAt()
		}
	case "resolve":
		sc.To, sc.CustomerMessage = feedloopv1.Status_STATUS_RESOLVED, f.CustomerMessage
	case "decline":
		sc.To, sc.Reason = feedloopv1.Status_STATUS_DECLINED, f.CustomerMessage
	default:
		return nil, fmt.Errorf("only plan, resolve and decline send the customer a message")
	}
	return &feedloopv1.Event{Id: "preview", FeedbackId: it.GetFeedbackId(), OccurredAt: timestamppb.New(now),
		Payload: &feedloopv1.Event_StatusChanged{StatusChanged: sc}}, nil
}

// writeIn is itemData.WriteIn: each action's email rendered as its preview
// renders it (an empty message, the earliest date), so the language named
// is the template the notifier will pick, fallbacks included, not a guess
// from the customer's locale.
func (s *Server) writeIn(it *feedloopv1.Item, mine *feedloopv1.AssignmentState, sess session.Session, minDue string) map[string]string {
	if s.Preview == nil {
		return nil
	}
	out := map[string]string{}
	for _, action := range []string{"plan", "resolve", "decline"} {
		ev, err := previewEvent(it, mine, sess.Team, sess.Team, Form{Action: action, Due: minDue}, s.Now())
		if err != nil {
			continue
		}
		res, err := s.Preview.Render(ev, s.StatusURL)
		if err != nil || len(res.Messages) == 0 {
			continue
		}
		// The language the template declares; none declared, no hint
		// rather than a guess.
		if lang := res.Messages[0].Language; lang != "" {
			out[action] = languageName(lang)
		}
	}
	return out
}

// languageName is a locale in English words, as CLDR names it: "de" →
// "German", "pt-BR" → "Brazilian Portuguese"; an unknown tag stays as it
// is.
func languageName(loc string) string {
	tag, err := language.Parse(loc)
	if err != nil {
		return loc
	}
	if name := display.English.Tags().Name(tag); name != "" {
		return name
	}
	return loc
}

// localeLabel is a locale tag with its language in words: "German (de)".
func localeLabel(tag string) string { return languageName(tag) + " (" + tag + ")" }

// templatesLabel names a previewed message's language and the notifier's
// templates it came from: "German (de templates)", "English (default
// templates)"; only the templates when their HTML declares no language.
func templatesLabel(m preview.Message) string {
	set := "default templates"
	if m.Locale != "" {
		set = m.Locale + " templates"
	}
	if m.Language == "" {
		return set
	}
	return languageName(m.Language) + " (" + set + ")"
}

// renderPreview renders f's customer messages for the item of r.
func (s *Server) renderPreview(r *http.Request, sess session.Session, f Form) (preview.Result, error) {
	ctx, cancel := s.call(r, sess)
	defer cancel()
	g, err := s.Team.Get(ctx, &feedloopv1.GetRequest{FeedbackId: r.PathValue("id")})
	if err != nil {
		return preview.Result{}, err
	}
	var mine *feedloopv1.AssignmentState
	for _, a := range g.GetItem().GetAssignments() {
		if a.GetTeam() == sess.Team && (mine == nil || open(a.GetStatus())) {
			mine = a
		}
	}
	actor := sess.Name
	if actor == "" {
		actor = sess.Team
	}
	ev, err := previewEvent(g.GetItem(), mine, sess.Team, actor, f, s.Now())
	if err != nil {
		return preview.Result{}, err
	}
	return s.Preview.Render(ev, s.StatusURL)
}

func (s *Server) preview(w http.ResponseWriter, r *http.Request, sess session.Session) {
	f := formOf(r, r.PostFormValue("for"))
	res, err := s.renderPreview(r, sess, f)
	if err != nil && status.Code(err) != codes.Unknown {
		s.callFailed(w, r, err)
		return
	}
	p := &Preview{Action: f.Action, Skipped: res.Skipped}
	if err != nil {
		p.Err = err.Error()
	}
	q := url.Values{"for": {f.Action}, "customer_message": {f.CustomerMessage}, "due": {f.Due}}
	for i, m := range res.Messages {
		name := templatesLabel(m)
		p.Messages = append(p.Messages, PreviewMessage{Message: m, LocaleName: name,
			HTMLURL: "/items/" + url.PathEscape(r.PathValue("id")) + "/preview/" + strconv.Itoa(i) + "?" + q.Encode()})
	}
	s.showItem(w, r, sess, http.StatusOK, f, p, "")
}

// previewHTML serves a previewed message's HTML body for its sandboxed
// iframe: the same rendering, from the form values in the query.
func (s *Server) previewHTML(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.auth(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	f := Form{Action: q.Get("for"), CustomerMessage: q.Get("customer_message"), Due: q.Get("due")}
	res, err := s.renderPreview(r, sess, f)
	n, _ := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 0 || n >= len(res.Messages) {
		http.Error(w, "no such preview", http.StatusNotFound)
		return
	}
	serveFrame(w, res.Messages[n].HTML)
}

// serveFrame serves an email's HTML for an iframe, sandboxed.
func serveFrame(w http.ResponseWriter, html string) {
	h := w.Header()
	h.Set("Content-Security-Policy", FrameCSP)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// Framed by the console's own pages only.
	h.Set("X-Frame-Options", "SAMEORIGIN")
	_, _ = w.Write([]byte(html))
}
