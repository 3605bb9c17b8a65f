package httpport

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"golang.org/x/oauth2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/console/internal/csrf"
	"github.com/feedloop/feedloop/services/console/internal/session"
	"github.com/feedloop/feedloop/services/console/internal/sso"
)

// loginTTL bounds a single sign-on attempt: long enough to type a
// password and a second factor at the issuer.
const loginTTL = 10 * time.Minute

// oidcLogin sends the browser to the issuer, keeping state, nonce and the
// PKCE verifier in a short-lived sealed cookie for the callback.
func (s *Server) oidcLogin(w http.ResponseWriter, r *http.Request) {
	l := session.Login{State: rand.Text(), Nonce: rand.Text(), Verifier: oauth2.GenerateVerifier(),
		Next: safeNext(r.URL.Query().Get("next")), Expires: s.Now().Add(loginTTL)}
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	u, err := s.SSO.AuthURL(ctx, l.State, l.Nonce, l.Verifier)
	if err != nil {
		s.Log.Warn("console: single sign-on: issuer", "err", err)
		s.errorPage(w, r, http.StatusBadGateway, "Company sign-in unavailable",
			"The console could not reach your company's sign-in service. Try again in a moment, or sign in with a team token.")
		return
	}
	if err := s.Sealer.SealLogin(w, l); err != nil {
		s.Log.Error("console: seal", "err", err)
		s.errorPage(w, r, http.StatusInternalServerError, "Sign-in failed", "The console could not start the sign-in. Try again.")
		return
	}
	http.Redirect(w, r, u, http.StatusFound)
}

// signinRefused answers a callback that signs nobody in: 400 with words.
func (s *Server) signinRefused(w http.ResponseWriter, r *http.Request, msg string) {
	s.errorPage(w, r, http.StatusBadRequest, "Sign-in refused", msg+" Nothing was signed in. Start again from the sign-in page.")
}

// oidcCallback finishes a sign-on: the state must be this browser's, the
// code is exchanged with the PKCE verifier, and the ID token must verify
// with this attempt's nonce. Every refusal is a page in words, never a 500.
func (s *Server) oidcCallback(w http.ResponseWriter, r *http.Request) {
	l, err := s.Sealer.OpenLogin(r)
	// An attempt is good once, whatever comes of it.
	s.Sealer.ClearLogin(w)
	q := r.URL.Query()
	switch {
	case err != nil:
		s.signinRefused(w, r, "This sign-in attempt has expired, or was started in another browser.")
		return
	case subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(l.State)) != 1:
		s.signinRefused(w, r, "The answer of the sign-in service does not match this sign-in attempt (state).")
		return
	case q.Get("error") != "":
		s.signinRefused(w, r, "The sign-in service did not sign you in ("+q.Get("error")+").")
		return
	case q.Get("code") == "":
		s.signinRefused(w, r, "The answer of the sign-in service carries no code.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	id, err := s.SSO.Exchange(ctx, q.Get("code"), l.Verifier, l.Nonce)
	switch {
	case errors.Is(err, sso.ErrCode):
		s.Log.Info("console: single sign-on refused", "err", err)
		s.signinRefused(w, r, "The sign-in service did not accept the sign-in code: it has expired or was already used.")
		return
	case errors.Is(err, sso.ErrToken):
		s.Log.Warn("console: single sign-on: ID token refused", "err", err)
		s.signinRefused(w, r, "The identity the sign-in service gave could not be verified (it is not for this console, has expired, or belongs to another sign-in attempt).")
		return
	case err != nil:
		s.Log.Warn("console: single sign-on: issuer", "err", err)
		s.errorPage(w, r, http.StatusBadGateway, "Company sign-in unavailable",
			"The console could not reach your company's sign-in service. Try again in a moment.")
		return
	}
	if len(id.Teams) == 0 {
		s.Log.Info("console: single sign-on: no team", "subject", id.Subject)
		s.errorPage(w, r, http.StatusForbidden, "No feedloop team",
			"You are signed in at your company as "+id.Actor()+", but your account is not in any feedloop team; ask your administrator to add you to your team's group.")
		return
	}
	sess := session.Session{Name: id.Actor(), Actor: id.Actor(), Email: id.Email, Teams: id.Teams,
		Expires: s.Now().Add(s.TTL), CSRF: csrf.NewToken()}
	if len(id.Teams) > 1 {
		// Chosen on the next page; the session acts for no team until then.
		if err := s.Sealer.Seal(w, sess); err != nil {
			s.Log.Error("console: seal", "err", err)
			s.errorPage(w, r, http.StatusInternalServerError, "Sign-in failed", "The console could not start the session. Try again.")
			return
		}
		http.Redirect(w, r, "/oidc/team?next="+url.QueryEscape(l.Next), http.StatusSeeOther)
		return
	}
	if !s.actAs(w, r, sess, id.Teams[0]) {
		return
	}
	http.Redirect(w, r, l.Next, http.StatusSeeOther)
}

// actAs seals sess acting for team with the console's token of that team,
// once the router has accepted the token and the person as its actor. It
// answers the request itself when it cannot.
func (s *Server) actAs(w http.ResponseWriter, r *http.Request, sess session.Session, team string) bool {
	tok, ok := s.SSO.Token(team)
	if !ok || !slices.Contains(sess.Teams, team) {
		s.errorPage(w, r, http.StatusForbidden, "Team not available", "Your account is not in this feedloop team.")
		return false
	}
	sess.Team, sess.Token = team, tok
	ctx, cancel := s.call(r, sess)
	defer cancel()
	me, err := s.Team.Me(ctx, &feedloopv1.MeRequest{})
	if err != nil {
		switch status.Code(err) {
		case codes.Unauthenticated, codes.PermissionDenied, codes.InvalidArgument:
			// The administrator's setup, not the person's account, is wrong.
			s.Log.Error("console: single sign-on: the router refused the console's token", "team", team, "err", err)
			s.errorPage(w, r, http.StatusBadGateway, "Team not available",
				"The router did not accept the console's credentials for team "+team+" ("+status.Convert(err).Message()+"). Tell your administrator.")
		default:
			s.Log.Warn("console: sign-in: router", "err", err)
			s.errorPage(w, r, http.StatusBadGateway, "Router unavailable", "The console could not reach the router. Try again in a moment.")
		}
		return false
	}
	sess.Team = me.GetTeam()
	if me.GetExpiresAt() != nil && me.GetExpiresAt().AsTime().Before(sess.Expires) {
		sess.Expires = me.GetExpiresAt().AsTime()
	}
	// A new CSRF token with every change of who acts.
	sess.CSRF = csrf.NewToken()
	if err := s.Sealer.Seal(w, sess); err != nil {
		s.Log.Error("console: seal", "err", err)
		s.errorPage(w, r, http.StatusInternalServerError, "Sign-in failed", "The console could not start the session. Try again.")
		return false
	}
	return true
}

// teamForm is the team chooser's data.
type teamForm struct {
	Teams   []string
	Current string
	Next    string
}

// ssoSession returns the single sign-on session of r, or answers the
// request (to the sign-in page) and returns false.
func (s *Server) ssoSession(w http.ResponseWriter, r *http.Request) (session.Session, bool) {
	sess, err := s.Sealer.Open(r)
	if err != nil || len(sess.Teams) == 0 {
		if errors.Is(err, session.ErrExpired) {
			s.Sealer.Clear(w)
		}
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
		return sess, false
	}
	return sess, true
}

// oidcTeamPage lets a person in several teams choose the one to act for
// (after sign-in, and from "Switch team").
func (s *Server) oidcTeamPage(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.ssoSession(w, r)
	if !ok {
		return
	}
	s.render(w, http.StatusOK, "team", page{Title: "Choose your team", Session: sess,
		Data: teamForm{Teams: sess.Teams, Current: sess.Team, Next: safeNext(r.URL.Query().Get("next"))}})
}

func (s *Server) oidcTeam(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	sess, ok := s.ssoSession(w, r)
	if !ok {
		return
	}
	if !csrf.Valid(r, sess.CSRF) {
		s.csrfRefused(w, r)
		return
	}
	// The session keeps its expiry: switching teams does not extend it.
	if !s.actAs(w, r, sess, r.PostFormValue("team")) {
		return
	}
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}
