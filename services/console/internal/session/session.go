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
}

// SignedIn reports whether the session acts for a team.
func (s Session) SignedIn() bool { return s.Team != "" && s.Token != "" }

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
	plain, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("session: %w", err)
	}
	nonce := make([]byte, z.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return fmt.Errorf("session: %w", err)
	}
	// The cookie name is authenticated too: a sealed value is good for
	// this cookie only.
	sealed := z.aead.Seal(nonce, nonce, plain, []byte(CookieName))
	http.SetCookie(w, &http.Cookie{
		Name:  CookieName,
		Value: base64.RawURLEncoding.EncodeToString(sealed),
		Path:  "/",
		// The browser keeps the cookie a little longer than the session
		// lasts, so the console can say the session expired rather than
		// just show the sign-in page.
		Expires:  s.Expires.Add(time.Hour),
		HttpOnly: true,
		Secure:   z.secure,
		SameSite: http.SameSiteLaxMode,
	})
	return nil
}

// Open reads the session of r.
func (z *Sealer) Open(r *http.Request) (Session, error) {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return Session{}, ErrNone
	}
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(raw) < z.aead.NonceSize() {
		return Session{}, ErrNone
	}
	n := z.aead.NonceSize()
	plain, err := z.aead.Open(nil, raw[:n], raw[n:], []byte(CookieName))
	if err != nil {
		return Session{}, ErrNone
	}
	var s Session
	if err := json.Unmarshal(plain, &s); err != nil {
		return Session{}, ErrNone
	}
	if !z.now().Before(s.Expires) {
		return s, ErrExpired
	}
	return s, nil
}

// Clear removes the session cookie.
func (z *Sealer) Clear(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: z.secure, SameSite: http.SameSiteLaxMode})
}
