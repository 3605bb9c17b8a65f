// Package httpport is the console's one port, its HTTP side: pages, forms,
// the live stream and the dev mailbox, with the views they render
// (templates/, static/, embedded). Every page is rendered on the server;
// every decision about what a team may see or do is the router's, asked
// through TeamService with the session's token, so the console has no use
// case of its own (no internal/app): this port calls the router's.
package httpport

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/console/internal/csrf"
	"github.com/feedloop/feedloop/services/console/internal/session"
	"github.com/feedloop/feedloop/services/console/internal/sso"
	"github.com/feedloop/feedloop/services/notifier/preview"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// CSP is every page's Content-Security-Policy: only the console's own
// script, styles and frames (the previews).
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; frame-src 'self'"

// FrameCSP is the policy of a message's HTML shown in an iframe: no script
// runs, links open in a new window, nothing is fetched.
const FrameCSP = "sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"

// callTimeout bounds one TeamService call made for a page.
const callTimeout = 10 * time.Second

// Mail is one message of the dev mailbox.
type Mail struct {
	ID            string
	At            time.Time
	From          string
	To            []string
	Subject, Text string
	HTML          string
}

// Deps is what the server needs.
type Deps struct {
	Team      feedloopv1.TeamServiceClient
	Health    healthpb.HealthClient
	Sealer    *session.Sealer
	TTL       time.Duration
	Preview   *preview.Renderer
	StatusURL string
	// DevTokens enables GET /dev/signin/{team} (nil: not registered).
	DevTokens map[string]string
	// Mailbox enables the dev mailbox (nil: not registered).
	Mailbox func() []Mail
	// SSO enables single sign-on at /oidc/ (nil: not registered).
	SSO *sso.Client
	Log *slog.Logger
	Now func() time.Time
	// TracerProvider receives the server spans (nil: the global one).
	TracerProvider trace.TracerProvider
}

// Server serves the console.
type Server struct {
	Deps
	pages map[string]*template.Template
}

// New parses the templates; they are embedded, so an error is a bug.
func New(d Deps) *Server {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	s := &Server{Deps: d, pages: map[string]*template.Template{}}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" || strings.HasPrefix(base, "_") {
			continue
		}
		files := []string{"templates/layout.html", n}
		partials, _ := fs.Glob(templateFS, "templates/_*.html")
		files = append(files, partials...)
		s.pages[base] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, files...))
	}
	return s
}

// Handler is the console with its middleware: tracing, security headers,
// and cross-origin protection of every POST.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", staticFiles(http.FileServerFS(static))))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /signin", s.signinPage)
	mux.HandleFunc("POST /signin", s.signin)
	mux.HandleFunc("POST /signout", s.signout)
	mux.HandleFunc("GET /{$}", s.inbox)
	mux.HandleFunc("GET /events", s.events)
	mux.HandleFunc("GET /items/{id}", s.item)
	mux.HandleFunc("POST /items/{id}/{action}", s.action)
	mux.HandleFunc("GET /items/{id}/preview/{n}", s.previewHTML)
	mux.HandleFunc("GET /kpis", s.kpis)
	if s.SSO != nil {
		mux.HandleFunc("GET /oidc/login", s.oidcLogin)
		mux.HandleFunc("GET /oidc/callback", s.oidcCallback)
		mux.HandleFunc("GET /oidc/team", s.oidcTeamPage)
		mux.HandleFunc("POST /oidc/team", s.oidcTeam)
	}
	if s.DevTokens != nil {
		mux.HandleFunc("GET /dev/signin/{team}", s.devSignin)
	}
	if s.Mailbox != nil {
		mux.HandleFunc("GET /dev/mailbox", s.mailbox)
		mux.HandleFunc("GET /dev/mailbox/{id}", s.mail)
		mux.HandleFunc("GET /dev/mailbox/{id}/html", s.mailHTML)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.errorPage(w, r, http.StatusNotFound, "Page not found", "There is no page at this address.")
	})
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.errorPage(w, r, http.StatusForbidden, "Request refused", "This form was sent from another site, so the console refused it. Open the console and try again from there.")
	}))
	var traced []otelhttp.Option
	if s.TracerProvider != nil {
		traced = append(traced, otelhttp.WithTracerProvider(s.TracerProvider))
	}
	// Server spans are named as semconv names them, "{method} {route}"
	// ("GET /inbox"); the resource's service.name says it is the console.
	return otelhttp.NewHandler(headers(cop.Handler(routed(mux))), "console.http", traced...)
}

// routed records the route the mux matched as the server span's
// http.route, which otelhttp knows only after the handler ran.
func routed(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		if _, route, ok := strings.Cut(r.Pattern, "/"); ok {
			trace.SpanFromContext(r.Context()).SetAttributes(semconv.HTTPRoute("/" + route))
		}
	})
}

func headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

func staticFiles(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Embedded files change only with a new build.
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	res, err := s.Health.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		http.Error(w, "router not answering", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// page is what every page template gets besides its own data.
type page struct {
	Title   string
	Session session.Session
	CSRF    string
	Nav     string
	Dev     bool
	Mailbox bool
	Data    any
}

func (s *Server) render(w http.ResponseWriter, code int, name string, p page) {
	t := s.pages[name]
	if t == nil {
		panic("web: no page " + name)
	}
	p.CSRF = p.Session.CSRF
	p.Dev = s.DevTokens != nil
	p.Mailbox = s.Mailbox != nil
	var b strings.Builder
	if err := t.Execute(&b, p); err != nil {
		s.Log.Error("console: render", "page", name, "err", err)
		http.Error(w, "The page could not be shown.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(b.String()))
}

func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, code int, title, msg string) {
	sess, _ := s.Sealer.Open(r)
	s.render(w, code, "error", page{Title: title, Session: sess, Data: msg})
}

// --- sessions -------------------------------------------------------------

// anonymous returns r's session, or a new anonymous one (sealed into w)
// carrying the sign-in form's CSRF token.
func (s *Server) anonymous(w http.ResponseWriter, r *http.Request) session.Session {
	sess, err := s.Sealer.Open(r)
	if err == nil {
		return sess
	}
	sess = session.Session{Expires: s.Now().Add(time.Hour), CSRF: csrf.NewToken()}
	if err := s.Sealer.Seal(w, sess); err != nil {
		s.Log.Error("console: seal", "err", err)
	}
	return sess
}

// signinForm is the sign-in page's data.
type signinForm struct {
	Message string
	Error   string
	Next    string
	Teams   []string // dev one-click sign-in
	SSO     bool     // "Sign in with your company account"
}

func (s *Server) signinPage(w http.ResponseWriter, r *http.Request) {
	sess, err := s.Sealer.Open(r)
	if err == nil && sess.SignedIn() {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if err == nil && len(sess.Teams) > 0 {
		// Signed in at the company, team not chosen yet.
		http.Redirect(w, r, "/oidc/team", http.StatusSeeOther)
		return
	}
	var msg string
	switch r.URL.Query().Get("m") {
	case "signedout":
		msg = "You are signed out."
	case "expired":
		msg = "Your session has expired. Sign in again to continue."
	}
	s.showSignin(w, r, http.StatusOK, signinForm{Message: msg, Next: safeNext(r.URL.Query().Get("next"))})
}

func (s *Server) showSignin(w http.ResponseWriter, r *http.Request, code int, f signinForm) {
	sess := s.anonymous(w, r)
	for t := range s.DevTokens {
		f.Teams = append(f.Teams, t)
	}
	sortStrings(f.Teams)
	f.SSO = s.SSO != nil
	s.render(w, code, "signin", page{Title: "Sign in", Session: sess, Data: f})
}

func (s *Server) signin(w http.ResponseWriter, r *http.Request) {
	sess, _ := s.Sealer.Open(r)
	if !csrf.Valid(r, sess.CSRF) {
		s.csrfRefused(w, r)
		return
	}
	next := safeNext(r.PostFormValue("next"))
	token := strings.TrimSpace(r.PostFormValue("token"))
	if token == "" {
		s.showSignin(w, r, http.StatusUnprocessableEntity, signinForm{Error: "Enter your team token.", Next: next})
		return
	}
	if err := s.startSession(w, r, token); err != nil {
		s.showSignin(w, r, http.StatusUnauthorized, signinForm{Error: err.Error(), Next: next})
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// startSession asks the router who token is and seals a new session (with
// a new CSRF token) for it.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, token string) error {
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	me, err := s.Team.Me(withToken(ctx, token), &feedloopv1.MeRequest{})
	if err != nil {
		switch status.Code(err) {
		case codes.Unauthenticated, codes.PermissionDenied:
			return fmt.Errorf("This token was not accepted: %s.", status.Convert(err).Message())
		default:
			s.Log.Warn("console: sign-in: router", "err", err)
			return errors.New("The console could not reach the router to check your token. Try again in a moment.")
		}
	}
	exp := s.Now().Add(s.TTL)
	if me.GetExpiresAt() != nil && me.GetExpiresAt().AsTime().Before(exp) {
		exp = me.GetExpiresAt().AsTime()
	}
	return s.Sealer.Seal(w, session.Session{Team: me.GetTeam(), Name: me.GetName(), Token: token, Expires: exp, CSRF: csrf.NewToken()})
}

func (s *Server) devSignin(w http.ResponseWriter, r *http.Request) {
	tok, ok := s.DevTokens[r.PathValue("team")]
	if !ok {
		s.errorPage(w, r, http.StatusNotFound, "No such team", "There is no dev sign-in for this team.")
		return
	}
	if err := s.startSession(w, r, tok); err != nil {
		s.showSignin(w, r, http.StatusUnauthorized, signinForm{Error: err.Error()})
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) signout(w http.ResponseWriter, r *http.Request) {
	sess, _ := s.Sealer.Open(r)
	if !csrf.Valid(r, sess.CSRF) {
		s.csrfRefused(w, r)
		return
	}
	s.Sealer.Clear(w)
	http.Redirect(w, r, "/signin?m=signedout", http.StatusSeeOther)
}

// auth returns the signed-in session, or answers the request itself (to the
// sign-in page) and returns false.
func (s *Server) auth(w http.ResponseWriter, r *http.Request) (session.Session, bool) {
	sess, err := s.Sealer.Open(r)
	switch {
	case err == nil && sess.SignedIn():
		return sess, true
	case errors.Is(err, session.ErrExpired) && sess.SignedIn():
		s.Sealer.Clear(w)
		s.showSignin(w, &http.Request{Header: http.Header{}}, http.StatusUnauthorized, signinForm{Message: "Your session has expired. Sign in again to continue.", Next: nextOf(r)})
		return sess, false
	}
	if r.Method == http.MethodGet && r.URL.Path != "/events" {
		http.Redirect(w, r, "/signin?next="+url.QueryEscape(nextOf(r)), http.StatusSeeOther)
	} else {
		s.errorPage(w, r, http.StatusUnauthorized, "Signed out", "You are not signed in. Sign in and try again.")
	}
	return sess, false
}

// postAuth is auth plus the CSRF check every state-changing request needs.
func (s *Server) postAuth(w http.ResponseWriter, r *http.Request) (session.Session, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	sess, err := s.Sealer.Open(r)
	if err == nil && sess.SignedIn() && !csrf.Valid(r, sess.CSRF) {
		s.csrfRefused(w, r)
		return sess, false
	}
	return s.auth(w, r)
}

func (s *Server) csrfRefused(w http.ResponseWriter, r *http.Request) {
	s.errorPage(w, r, http.StatusForbidden, "Form refused",
		"This form could not be verified (it is missing its security token, or it came from an old page). Nothing was changed. Go back, reload the page and try again.")
}

// refused handles an error of a TeamService call made for a page: a token
// the router no longer accepts signs the session out with the router's
// reason. It reports whether it answered the request.
func (s *Server) refused(w http.ResponseWriter, r *http.Request, err error) bool {
	if status.Code(err) != codes.Unauthenticated {
		return false
	}
	s.Sealer.Clear(w)
	s.showSignin(w, &http.Request{Header: http.Header{}}, http.StatusUnauthorized, signinForm{
		Message: "You were signed out: the router no longer accepts your team token (" + status.Convert(err).Message() + ").",
		Next:    nextOf(r),
	})
	return true
}

// callFailed shows an error page for a call that failed otherwise.
func (s *Server) callFailed(w http.ResponseWriter, r *http.Request, err error) {
	if s.refused(w, r, err) {
		return
	}
	switch status.Code(err) {
	case codes.NotFound, codes.PermissionDenied:
		s.errorPage(w, r, http.StatusNotFound, "Item not available", "This item does not exist or was not routed to your team.")
	case codes.InvalidArgument:
		s.errorPage(w, r, http.StatusBadRequest, "Invalid request", status.Convert(err).Message())
	default:
		s.Log.Warn("console: router call failed", "path", r.URL.Path, "err", err)
		s.errorPage(w, r, http.StatusBadGateway, "Router unavailable", "The console could not reach the router. Try again in a moment.")
	}
}

// withToken adds the team's bearer token to ctx's outgoing metadata.
func withToken(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// withSession adds sess's token and, for a person signed in through
// single sign-on, the person as the actor: the router records them, not
// the console's token, as having acted.
func withSession(ctx context.Context, sess session.Session) context.Context {
	ctx = withToken(ctx, sess.Token)
	if sess.Actor != "" {
		// Percent-encoded: gRPC metadata values are ASCII.
		ctx = metadata.AppendToOutgoingContext(ctx, "x-feedloop-actor", url.PathEscape(sess.Actor))
	}
	return ctx
}

// call is the context of one TeamService call for sess.
func (s *Server) call(r *http.Request, sess session.Session) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	return withSession(ctx, sess), cancel
}

// safeNext keeps a post-sign-in redirect on this site.
func safeNext(n string) string {
	if !strings.HasPrefix(n, "/") || strings.HasPrefix(n, "//") || strings.HasPrefix(n, "/\\") || strings.HasPrefix(n, "/signin") {
		return "/"
	}
	return n
}

func nextOf(r *http.Request) string {
	if r.Method != http.MethodGet || r.URL.Path == "/events" {
		if strings.HasPrefix(r.URL.Path, "/items/") {
			return "/items/" + r.PathValue("id")
		}
		return "/"
	}
	return r.URL.RequestURI()
}
