// Package teamtoken makes team API tokens and the lines of the router's
// tokens file (ROUTER_TEAM_TOKENS_FILE) that admit them. The router keeps
// only SHA-256 hashes, so a token is shown once, to whoever made it.
package teamtoken

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/feedloop/feedloop/pkg/atomicfile"
	"github.com/feedloop/feedloop/pkg/bus"
)

// Size is the number of random bytes in a token.
const Size = 32

// New returns a fresh random token: Size bytes, base64url without padding
// (43 characters), safe in a shell and an HTTP header.
func New() string {
	b := make([]byte, Size)
	_, _ = rand.Read(b) // never fails: crypto/rand panics rather than return short
	return base64.RawURLEncoding.EncodeToString(b)
}

// Hash is the hex SHA-256 of token, as the tokens file holds it (the same
// as the router's teamauth.Hash).
func Hash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// Entry is one line of the tokens file.
type Entry struct {
	// Team the token acts for.
	Team string
	// Name of the holder, recorded as the actor; empty acts as the team.
	Name string
	// SHA256 is Hash of the token.
	SHA256 string
	// Expires is when the token stops working; zero: never.
	Expires time.Time
}

// Check validates e the way the router will, so a bad line is refused
// here and not when the router reloads the file.
func (e Entry) Check() error {
	if !bus.ValidToken(e.Team) {
		return fmt.Errorf("team: must be 1-64 characters of a-z 0-9 _ -, got %q", e.Team)
	}
	if len(e.Name) > 128 || strings.ContainsFunc(e.Name, unicode.IsControl) {
		return fmt.Errorf("name: at most 128 characters, no control characters, got %q", e.Name)
	}
	if raw, err := hex.DecodeString(e.SHA256); err != nil || len(raw) != sha256.Size {
		return fmt.Errorf("sha256: must be 64 hex digits")
	}
	return nil
}

// Line is e as a YAML list item of the file's tokens list. The name is
// quoted (a double-quoted YAML scalar accepts Go's escapes), so any name
// stays one string.
func (e Entry) Line() string {
	var b strings.Builder
	b.WriteString("- {team: " + e.Team)
	if e.Name != "" {
		b.WriteString(", name: " + strconv.Quote(e.Name))
	}
	b.WriteString(", sha256: " + e.SHA256)
	if !e.Expires.IsZero() {
		b.WriteString(`, expires: "` + e.Expires.UTC().Format(time.RFC3339) + `"`)
	}
	b.WriteString("}")
	return b.String()
}

// ParseExpiry reads an --expires value relative to now: days ("90d"), a Go
// duration ("36h") or an RFC 3339 time. The result is in UTC, whole seconds.
func ParseExpiry(v string, now time.Time) (time.Time, error) {
	var at time.Time
	if n, ok := strings.CutSuffix(v, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 1 || days > 3660 {
			return time.Time{}, fmt.Errorf("expires: want days between 1d and 3660d, got %q", v)
		}
		at = now.AddDate(0, 0, days)
	} else if d, err := time.ParseDuration(v); err == nil {
		if d < time.Minute {
			return time.Time{}, fmt.Errorf("expires: must be at least 1m from now, got %q", v)
		}
		at = now.Add(d)
	} else if t, err := time.Parse(time.RFC3339, v); err == nil {
		if !t.After(now) {
			return time.Time{}, fmt.Errorf("expires: %s is in the past", v)
		}
		at = t
	} else {
		return time.Time{}, fmt.Errorf("expires: want days (90d), a duration (36h) or an RFC 3339 time (2027-03-01T00:00:00Z), got %q", v)
	}
	return at.UTC().Truncate(time.Second), nil
}

// File renders a whole tokens file.
func File(entries []Entry) []byte {
	var b strings.Builder
	b.WriteString("tokens:\n")
	for _, e := range entries {
		b.WriteString("  " + e.Line() + "\n")
	}
	return []byte(b.String())
}

// WriteFile writes a tokens file readable by its owner only, replacing it
// in one rename so a router watching it never reads half a file.
func WriteFile(path string, entries []Entry) error {
	for i, e := range entries {
		if err := e.Check(); err != nil {
			return fmt.Errorf("tokens[%d].%w", i, err)
		}
	}
	if err := atomicfile.Write(path, File(entries), 0o600); err != nil {
		return fmt.Errorf("team tokens: %w", err)
	}
	return nil
}
