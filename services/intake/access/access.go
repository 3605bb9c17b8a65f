// Package access reads intake's API keys file (INTAKE_API_KEYS_FILE): which
// keys may submit feedback for which source, stored as SHA-256 hashes, and
// how fast each source may submit. It is public so `feedloop intake key`
// renders lines this parser accepts.
package access

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/feedloop/feedloop/pkg/apikey"
	"github.com/feedloop/feedloop/pkg/bus"
)

// MaxNameBytes bounds a key's name: it is logged and recorded as the actor.
const MaxNameBytes = 128

// File is a parsed, validated keys file.
type File struct {
	// Keys are the configured keys; an entry's Scope is its source.
	Keys *apikey.Set
	// Limits override the default rate limit per source.
	Limits map[string]Limit
}

// Limit is a source's rate limit: Rate sustained, up to Burst at once.
// A zero Rate is no limit.
type Limit struct {
	Rate  Rate
	Burst int
}

// Limit returns the limit of source: its override, else def.
func (f *File) Limit(source string, def Limit) Limit {
	if f != nil {
		if l, ok := f.Limits[source]; ok {
			return l
		}
	}
	return def
}

type fileYAML struct {
	Keys   []keyYAML            `yaml:"keys"`
	Limits map[string]limitYAML `yaml:"limits"`
}

type keyYAML struct {
	Source  string `yaml:"source"`
	Name    string `yaml:"name"`
	SHA256  string `yaml:"sha256"`
	Expires string `yaml:"expires"`
	Revoked bool   `yaml:"revoked"`
}

type limitYAML struct {
	Rate  string `yaml:"rate"`
	Burst int    `yaml:"burst"`
}

// Parse reads a keys file strictly (unknown fields are errors). Every
// error names the entry and field at fault, e.g. "keys[2].expires: …".
func Parse(data []byte) (*File, error) {
	var f fileYAML
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("keys file: %w", err)
	}
	var errs []error
	entries := make([]apikey.Entry, 0, len(f.Keys))
	for i, k := range f.Keys {
		at := fmt.Sprintf("keys[%d]", i)
		e := apikey.Entry{Scope: k.Source, Name: k.Name, SHA256: k.SHA256, Revoked: k.Revoked}
		if err := CheckSource(k.Source); err != nil {
			errs = append(errs, fmt.Errorf("%s.source: %w", at, err))
		}
		if err := CheckName(k.Name); err != nil {
			errs = append(errs, fmt.Errorf("%s.name: %w", at, err))
		}
		if k.Expires != "" {
			t, err := time.Parse(time.RFC3339, k.Expires)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.expires: must be an RFC 3339 time such as 2027-03-01T00:00:00Z, got %q", at, k.Expires))
			}
			e.Expires = t
		}
		entries = append(entries, e)
	}
	set, err := apikey.NewSet(entries)
	if err != nil {
		// apikey names entries "[i].field"; the list is "keys".
		errs = append(errs, prefixLines("keys", err))
	}
	limits := make(map[string]Limit, len(f.Limits))
	sources := make([]string, 0, len(f.Limits))
	for s := range f.Limits {
		sources = append(sources, s)
	}
	sort.Strings(sources) // deterministic errors
	for _, s := range sources {
		l, at := f.Limits[s], "limits."+s
		if err := CheckSource(s); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", at, err))
			continue
		}
		r, err := ParseRate(l.Rate)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.rate: %w", at, err))
		}
		if l.Burst < 0 {
			errs = append(errs, fmt.Errorf("%s.burst: must not be negative, got %d", at, l.Burst))
		}
		limits[s] = Limit{Rate: r, Burst: l.Burst}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &File{Keys: set, Limits: limits}, nil
}

func prefixLines(prefix string, err error) error {
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return errors.New(strings.Join(lines, "\n"))
}

// CheckSource validates a source name the way intake validates feedback.source.
func CheckSource(s string) error {
	if !bus.ValidToken(s) {
		return fmt.Errorf("must be a source name: 1 to 64 characters of a-z, 0-9, '_' or '-', got %q", s)
	}
	return nil
}

// CheckName validates a key's name: optional, short, no control characters
// (it is logged).
func CheckName(n string) error {
	if len(n) > MaxNameBytes || strings.ContainsFunc(n, unicode.IsControl) {
		return fmt.Errorf("must be at most %d bytes without control characters, got %q", MaxNameBytes, n)
	}
	return nil
}

// Line is the keys-file list item admitting a key with the given hash, for
// `feedloop intake key`. The name is quoted (a double-quoted YAML scalar
// takes Go's escapes), so any name stays one string.
func Line(source, name, sha256 string, expires time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "- {source: %s", source)
	if name != "" {
		fmt.Fprintf(&b, ", name: %s", strconv.Quote(name))
	}
	fmt.Fprintf(&b, ", sha256: %s", sha256)
	if !expires.IsZero() {
		fmt.Fprintf(&b, ", expires: %s", expires.UTC().Format(time.RFC3339))
	}
	b.WriteString("}")
	return b.String()
}

// Rate is a number of submissions per period. The zero Rate is no limit.
type Rate struct {
	N   int
	Per time.Duration
}

// IsZero reports whether r is no limit.
func (r Rate) IsZero() bool { return r.N == 0 }

func (r Rate) String() string {
	if r.IsZero() {
		return "0"
	}
	unit := map[time.Duration]string{time.Second: "s", time.Minute: "m", time.Hour: "h"}[r.Per]
	return strconv.Itoa(r.N) + "/" + unit
}

// ParseRate reads "100/s", "6000/m", "50000/h", or "0" (or "") for no limit.
func ParseRate(s string) (Rate, error) {
	if s == "" || s == "0" {
		return Rate{}, nil
	}
	n, unit, ok := strings.Cut(s, "/")
	per, known := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}[unit]
	v, err := strconv.Atoi(n)
	if !ok || !known || err != nil || v < 0 {
		return Rate{}, fmt.Errorf("must be a rate such as 100/s, 6000/m or 50000/h, or 0 for no limit, got %q", s)
	}
	if v == 0 {
		return Rate{}, nil
	}
	return Rate{N: v, Per: per}, nil
}

// UnmarshalText lets the env loader read a Rate.
func (r *Rate) UnmarshalText(b []byte) error {
	v, err := ParseRate(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}
