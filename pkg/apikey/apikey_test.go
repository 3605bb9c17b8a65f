package apikey

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestLookup(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	set, err := NewSet([]Entry{
		{Scope: "helpdesk", Name: "zendesk", SHA256: Hash("live")},
		{Scope: "helpdesk", SHA256: Hash("old"), Expires: now},
		{Scope: "survey", SHA256: Hash("later"), Expires: now.Add(time.Hour)},
		{Scope: "crm", SHA256: Hash("gone"), Revoked: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		secret    string
		wantScope string
		wantName  string
		wantErr   error
	}{
		{"live", "helpdesk", "zendesk", nil},
		{"later", "survey", "survey", nil}, // no name: the scope
		{"old", "", "", ErrExpired},        // expires at now: already expired
		{"gone", "", "", ErrRevoked},
		{"nope", "", "", ErrUnknown},
		{"", "", "", ErrUnknown},
		{Hash("live"), "", "", ErrUnknown}, // the hash itself is no secret
	} {
		e, err := set.Lookup(tc.secret, now)
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("Lookup(%q) err = %v, want %v", tc.secret, err, tc.wantErr)
			continue
		}
		if e.Scope != tc.wantScope || e.Name != tc.wantName {
			t.Errorf("Lookup(%q) = %+v, want scope %q name %q", tc.secret, e, tc.wantScope, tc.wantName)
		}
	}
	if _, err := set.Lookup("old", now); err == nil || !strings.Contains(err.Error(), "2026-12-01T12:00:00Z") {
		t.Errorf("an expired key's error should say when it expired, got %v", err)
	}
	if _, err := set.Lookup("later", now.Add(time.Hour)); !errors.Is(err, ErrExpired) {
		t.Errorf("a key must stop working at its expiry, got %v", err)
	}
	var nilSet *Set
	if _, err := nilSet.Lookup("live", now); !errors.Is(err, ErrUnknown) || nilSet.Len() != 0 {
		t.Errorf("a nil set knows no key: %v", err)
	}
}

func TestNewSetNamesTheBadEntry(t *testing.T) {
	_, err := NewSet([]Entry{
		{Scope: "a", SHA256: Hash("x")},
		{Scope: "b", SHA256: "abc"},
		{Scope: "c", SHA256: Hash("x")},
	})
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"[1].sha256: must be 64 hex digits", "[2].sha256: the same secret is listed twice"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestGenerate(t *testing.T) {
	a, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate()
	if a == b || len(a) != 43 {
		t.Fatalf("Generate = %q, %q: want two different 43-character secrets", a, b)
	}
}

func TestBearer(t *testing.T) {
	for in, want := range map[string]string{
		"Bearer abc":   "abc",
		"bearer  abc ": "abc",
		"Basic abc":    "",
		"Bearer":       "",
		"Bearer   ":    "",
		"abc":          "",
	} {
		got, ok := Bearer(in)
		if got != want || ok != (want != "") {
			t.Errorf("Bearer(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}
