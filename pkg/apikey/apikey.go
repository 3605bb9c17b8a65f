// Package apikey checks the bearer secrets that company systems and teams
// present (source API keys at intake, team tokens at the router) against
// configured SHA-256 hashes. Each hash names a scope (the source or team
// the secret acts for) and its holder, and may carry an expiry or be marked
// revoked. Secrets themselves are never stored, compared in clear or logged.
//
// Parsing the file that lists the hashes stays with each service: the
// scope is a domain notion there (a source, a team).
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors of Lookup. Expired and revoked are told apart from unknown so the
// holder knows to ask for a new secret; only a holder of the secret can
// learn that, so it leaks nothing to anyone else.
var (
	ErrUnknown = errors.New("unknown key")
	ErrExpired = errors.New("key expired")
	ErrRevoked = errors.New("key revoked")
)

// Entry is one configured secret, by its hash.
type Entry struct {
	// Scope is what the secret acts for: a source or a team.
	Scope string
	// Name is who holds it (a person, a bot, a system); recorded as the actor.
	Name string
	// SHA256 is the hex SHA-256 of the secret.
	SHA256 string
	// Expires is when the secret stops working; zero means never.
	Expires time.Time
	// Revoked refuses the secret while keeping it listed, so a refusal says
	// why rather than "unknown".
	Revoked bool
}

// Set is a validated set of entries, looked up by hash.
type Set struct {
	byHash map[[sha256.Size]byte]Entry
}

// NewSet validates entries. Errors name the entry by its index ("[2].sha256: …")
// so the caller can prefix the file's list name.
func NewSet(entries []Entry) (*Set, error) {
	s := &Set{byHash: make(map[[sha256.Size]byte]Entry, len(entries))}
	var errs []error
	for i, e := range entries {
		raw, err := hex.DecodeString(e.SHA256)
		if err != nil || len(raw) != sha256.Size {
			errs = append(errs, fmt.Errorf("[%d].sha256: must be 64 hex digits (the SHA-256 of the secret)", i))
			continue
		}
		key := [sha256.Size]byte(raw)
		if _, dup := s.byHash[key]; dup {
			errs = append(errs, fmt.Errorf("[%d].sha256: the same secret is listed twice", i))
			continue
		}
		if e.Name == "" {
			e.Name = e.Scope
		}
		s.byHash[key] = e
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// Lookup returns the entry of secret, or ErrUnknown, ErrExpired (wrapped with
// the expiry time) or ErrRevoked. Looking up by hash leaks at most timing
// about the hash, never about the secret, so no constant-time compare is
// needed.
func (s *Set) Lookup(secret string, now time.Time) (Entry, error) {
	if s == nil || secret == "" {
		return Entry{}, ErrUnknown
	}
	e, ok := s.byHash[sha256.Sum256([]byte(secret))]
	switch {
	case !ok:
		return Entry{}, ErrUnknown
	case e.Revoked:
		return Entry{}, ErrRevoked
	case !e.Expires.IsZero() && !now.Before(e.Expires):
		return Entry{}, fmt.Errorf("%w on %s", ErrExpired, e.Expires.UTC().Format(time.RFC3339))
	}
	return e, nil
}

// Len is the number of entries, revoked and expired ones included.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.byHash)
}

// Hash is the hex SHA-256 of secret, as the files hold it.
func Hash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// Generate returns a new random secret: 32 bytes, URL-safe base64.
func Generate() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("apikey: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Bearer returns the secret of an "Authorization: Bearer <secret>" value.
func Bearer(value string) (string, bool) {
	scheme, secret, ok := strings.Cut(value, " ")
	secret = strings.TrimSpace(secret)
	if !ok || !strings.EqualFold(scheme, "bearer") || secret == "" {
		return "", false
	}
	return secret, true
}
