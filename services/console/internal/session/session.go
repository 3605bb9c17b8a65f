// Package session keeps a console session in a cookie sealed with AES-GCM:
// the team token never reaches the browser in clear, the browser cannot
// forge or alter a session, and replicas share nothing but the key.
package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// CookieName is the session cookie.
const CookieName = "feedloop_console"

// MinKeyLen is the least key material accepted, in bytes.
const MinKeyLen = 32

// Errors of Open.
var (
	// ErrNone: the request carries no session cookie, or one that does not
	// open (another key, altered, truncated).
	ErrNone = errors.New("session: none")
	// ErrExpired: the session's time is up.
	ErrExpired = errors.New("session: expired")
)

// Session is what the cookie holds. A session without Team is anonymous:
// it carries only the CSRF token of the sign-in form.
type Session struct {
	Team    string    `json:"t,omitempty"`
	Name    string    `json:"n,omitempty"`
	Token   string    `json:"k,omitempty"`
	Expires time.Time `json:"e"`
	CSRF    string    `json:"c"`
	// Single sign-on: the person the console acts for (sent to the router
	// as the actor, so actions are recorded as theirs), their e-mail, and
	// the teams their account is in (the team chooser offers these only).
	Actor string   `json:"a,omitempty"`
	Email string   `json:"m,omitempty"`
	Teams []string `json:"ts,omitempty"`
}

// SignedIn reports whether the session acts for a team.
func (s Session) SignedIn() bool { return s.Team != "" && s.Token != "" }

// LoginCookie holds a single sign-on attempt between the redirect to the
// issuer and its callback.
const LoginCookie = "feedloop_oidc"

// Login is one single sign-on attempt: what the callback must match.
type Login struct {
	State    string    `json:"s"`
	Nonce    string    `json:"n"`
	Verifier string    `json:"v"` // PKCE
	Next     string    `json:"x,omitempty"`
	Expires  time.Time `json:"e"`
}

// Sealer seals sessions into cookies and opens them.
type Sealer struct {
	aead   cipher.AEAD
	secure bool
	now    func() time.Time
}

// NewSealer derives the AES-256 key from key (at least MinKeyLen bytes, e.g.
// a file of random bytes). secure marks cookies Secure (HTTPS only).
func NewSealer(key []byte, secure bool, now func() time.Time) (*Sealer, error) {
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("session: key has %d bytes, want at least %d", len(key), MinKeyLen)
	}
	k := sha256.Sum256(key)
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	return &Sealer{aead: aead, secure: secure, now: now}, nil
}

// Seal writes s as the session cookie.
func (z *Sealer) Seal(w http.ResponseWriter, s Session) error {
	// The browser keeps the cookie a little longer than the session
	// lasts, so the console can say the session expired rather than just
	// show the sign-in page.
	return z.seal(w, CookieName, s, s.Expires.Add(time.Hour))
}

// seal writes v sealed as cookie name.
func (z *Sealer) seal(w http.ResponseWriter, name string, v any, expires time.Time) error {
	plain, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("session: %w", err)
	}
	nonce := make([]byte, z.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return fmt.Errorf("session: %w", err)
	}
	// The cookie name is authenticated too: a sealed value is good for
	// this cookie only.
	sealed := z.aead.Seal(nonce, nonce, plain, []byte(name))
	http.SetCookie(w, &http.Cookie{
		Name:     name,
		Value:    base64.RawURLEncoding.EncodeToString(sealed),
		Path:     "/",
		Expires:  expires,
		HttpOnly: true,
		Secure:   z.secure,
		SameSite: http.SameSiteLaxMode,
	})
	return nil
}

// open reads cookie name of r into v; false when absent or not sealed by
// this key for this cookie.
func (z *Sealer) open(r *http.Request, name string, v any) bool {
	c, err := r.Cookie(name)
	if err != nil {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(raw) < z.aead.NonceSize() {
		return false
	}
	n := z.aead.NonceSize()
	plain, err := z.aead.Open(nil, raw[:n], raw[n:], []byte(name))
	if err != nil {
		return false
	}
	return json.Unmarshal(plain, v) == nil
}

// Open reads the session of r.
func (z *Sealer) Open(r *http.Request) (Session, error) {
	var s Session
	if !z.open(r, CookieName, &s) {
		return Session{}, ErrNone
	}
	if !z.now().Before(s.Expires) {
		return s, ErrExpired
	}
	return s, nil
}

// SealLogin writes a single sign-on attempt; it lasts until l.Expires.
func (z *Sealer) SealLogin(w http.ResponseWriter, l Login) error {
	return z.seal(w, LoginCookie, l, l.Expires)
}

// OpenLogin reads r's sign-on attempt: ErrNone without one, ErrExpired
// when it is too old.
func (z *Sealer) OpenLogin(r *http.Request) (Login, error) {
	var l Login
	if !z.open(r, LoginCookie, &l) {
		return Login{}, ErrNone
	}
	if !z.now().Before(l.Expires) {
		return Login{}, ErrExpired
	}
	return l, nil
}

// ClearLogin removes the sign-on attempt: a callback is good once.
func (z *Sealer) ClearLogin(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: LoginCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: z.secure, SameSite: http.SameSiteLaxMode})
}

// Clear removes the session cookie.
func (z *Sealer) Clear(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: z.secure, SameSite: http.SameSiteLaxMode})
}
