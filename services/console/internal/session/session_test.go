package session_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/feedloop/feedloop/services/console/internal/session"
)

var key = bytes.Repeat([]byte("k"), session.MinKeyLen)

// roundTrip seals s with z and opens the cookie with o, as a browser would
// carry it from one request to the next.
func roundTrip(t *testing.T, z, o *session.Sealer, s session.Session, edit func(string) string) (session.Session, error) {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := z.Seal(rec, s); err != nil {
		t.Fatal(err)
	}
	c := rec.Result().Cookies()[0]
	if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
		t.Fatalf("cookie attributes: %+v", c)
	}
	if edit != nil {
		c.Value = edit(c.Value)
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.AddCookie(c)
	return o.Open(req)
}

// The cookie opens to what was sealed, never shows the token in clear, and
// does not open when altered, sealed with another key, or expired.
func TestSealOpen(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	z, err := session.NewSealer(key, true, clock)
	if err != nil {
		t.Fatal(err)
	}
	s := session.Session{Team: "billing", Name: "alice", Token: "secret-team-token", Expires: now.Add(time.Hour), CSRF: "c"}

	rec := httptest.NewRecorder()
	_ = z.Seal(rec, s)
	if c := rec.Result().Cookies()[0]; !c.Secure || strings.Contains(c.Value, "secret-team-token") {
		t.Fatalf("cookie not Secure or shows the token: %+v", c)
	}
	got, err := roundTrip(t, z, z, s, nil)
	if err != nil || got.Team != "billing" || got.Token != s.Token || !got.SignedIn() {
		t.Fatalf("open = %+v, %v", got, err)
	}
	flip := func(v string) string { b := []byte(v); b[len(b)/2] ^= 1; return string(b) }
	if _, err := roundTrip(t, z, z, s, flip); !errors.Is(err, session.ErrNone) {
		t.Fatalf("altered cookie: %v, want ErrNone", err)
	}
	other, _ := session.NewSealer(bytes.Repeat([]byte("o"), session.MinKeyLen), true, clock)
	if _, err := roundTrip(t, z, other, s, nil); !errors.Is(err, session.ErrNone) {
		t.Fatalf("another key: %v, want ErrNone", err)
	}
	later, _ := session.NewSealer(key, true, func() time.Time { return now.Add(time.Hour) })
	if _, err := roundTrip(t, z, later, s, nil); !errors.Is(err, session.ErrExpired) {
		t.Fatalf("at expiry: %v, want ErrExpired", err)
	}
	if _, err := session.NewSealer(key[:session.MinKeyLen-1], false, clock); err == nil {
		t.Fatal("a short key was accepted")
	}
}

// A sign-on attempt opens in its own cookie only, and not once expired:
// a session cookie cannot pass for it, nor it for a session.
func TestLogin(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	z, _ := session.NewSealer(key, false, func() time.Time { return now })
	rec := httptest.NewRecorder()
	l := session.Login{State: "st", Nonce: "no", Verifier: "ve", Next: "/items/x", Expires: now.Add(10 * time.Minute)}
	if err := z.SealLogin(rec, l); err != nil {
		t.Fatal(err)
	}
	c := rec.Result().Cookies()[0]
	req := httptest.NewRequest(http.MethodGet, "/oidc/callback", nil)
	req.AddCookie(c)
	if got, err := z.OpenLogin(req); err != nil || got != l {
		t.Fatalf("OpenLogin = %+v, %v", got, err)
	}
	// The same sealed value under the session's name does not open.
	swapped := httptest.NewRequest(http.MethodGet, "/", nil)
	swapped.AddCookie(&http.Cookie{Name: session.CookieName, Value: c.Value})
	if _, err := z.Open(swapped); !errors.Is(err, session.ErrNone) {
		t.Fatalf("a login cookie opened as a session: %v", err)
	}
	later, _ := session.NewSealer(key, false, func() time.Time { return now.Add(10 * time.Minute) })
	if _, err := later.OpenLogin(req); !errors.Is(err, session.ErrExpired) {
		t.Fatalf("expired attempt: %v, want ErrExpired", err)
	}
	if _, err := z.OpenLogin(httptest.NewRequest(http.MethodGet, "/", nil)); !errors.Is(err, session.ErrNone) {
		t.Fatalf("no attempt: %v, want ErrNone", err)
	}
}
