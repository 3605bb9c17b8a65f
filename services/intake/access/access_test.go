package access_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/feedloop/feedloop/pkg/apikey"
	"github.com/feedloop/feedloop/services/intake/access"
)

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func TestParse(t *testing.T) {
	f, err := access.Parse([]byte(`
keys:
  - {source: helpdesk, name: zendesk-prod, sha256: ` + apikey.Hash("live") + `, expires: 2027-03-01T00:00:00Z}
  - {source: helpdesk, name: zendesk-old, sha256: ` + apikey.Hash("old") + `, expires: 2026-11-01T00:00:00Z}
  - {source: crm, sha256: ` + apikey.Hash("gone") + `, revoked: true}
limits:
  survey: {rate: 1000/s, burst: 2000}
  crm: {rate: "0"}
`))
	if err != nil {
		t.Fatal(err)
	}
	if e, err := f.Keys.Lookup("live", now); err != nil || e.Scope != "helpdesk" || e.Name != "zendesk-prod" {
		t.Errorf("live = %+v, %v", e, err)
	}
	if _, err := f.Keys.Lookup("old", now); !errors.Is(err, apikey.ErrExpired) {
		t.Errorf("old = %v, want expired", err)
	}
	if _, err := f.Keys.Lookup("gone", now); !errors.Is(err, apikey.ErrRevoked) {
		t.Errorf("gone = %v, want revoked", err)
	}
	def := access.Limit{Rate: access.Rate{N: 100, Per: time.Second}}
	if l := f.Limit("survey", def); l.Rate != (access.Rate{N: 1000, Per: time.Second}) || l.Burst != 2000 {
		t.Errorf("survey limit = %+v", l)
	}
	if l := f.Limit("crm", def); !l.Rate.IsZero() {
		t.Errorf("crm limit = %+v, want none", l)
	}
	if l := f.Limit("helpdesk", def); l != def {
		t.Errorf("helpdesk limit = %+v, want the default", l)
	}
	empty, err := access.Parse(nil)
	if err != nil || empty.Keys.Len() != 0 {
		t.Errorf("empty file = %+v, %v; want no keys", empty, err)
	}
}

func TestParseNamesEntryAndField(t *testing.T) {
	_, err := access.Parse([]byte(`
keys:
  - {source: Help Desk, sha256: ` + apikey.Hash("a") + `}
  - {source: crm, sha256: abc}
  - {source: crm, name: "a\nb", sha256: ` + apikey.Hash("b") + `, expires: soon}
  - {source: crm, sha256: ` + apikey.Hash("a") + `}
limits:
  survey: {rate: lots}
  web: {rate: 5/s, burst: -1}
`))
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{
		`keys[0].source: must be a source name`,
		`keys[1].sha256: must be 64 hex digits`,
		`keys[2].name: must be at most 128 bytes without control characters`,
		`keys[2].expires: must be an RFC 3339 time such as 2027-03-01T00:00:00Z, got "soon"`,
		`keys[3].sha256: the same secret is listed twice`,
		`limits.survey.rate: must be a rate such as 100/s`,
		`limits.web.burst: must not be negative, got -1`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestParseIsStrict(t *testing.T) {
	_, err := access.Parse([]byte("keys:\n  - {source: crm, sha: x}\n"))
	if err == nil || !strings.Contains(err.Error(), "field sha not found") {
		t.Fatalf("err = %v, want the unknown field named", err)
	}
}

func TestLineParsesBack(t *testing.T) {
	exp := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	line := access.Line("helpdesk", `Zoë "Z": #1`, apikey.Hash("s"), exp)
	f, err := access.Parse([]byte("keys:\n  " + line + "\n"))
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	e, err := f.Keys.Lookup("s", now)
	if err != nil || e.Name != `Zoë "Z": #1` || !e.Expires.Equal(exp) || e.Scope != "helpdesk" {
		t.Fatalf("entry = %+v, %v", e, err)
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]access.Rate{
		"100/s": {100, time.Second}, "6000/m": {6000, time.Minute}, "1/h": {1, time.Hour},
		"0": {}, "": {}, "0/s": {},
	} {
		got, err := access.ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"100", "100/d", "-1/s", "x/s", "100/"} {
		if _, err := access.ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) accepted", in)
		}
	}
}

// The example file parses, and its comments hold the keys it lists.
func TestExampleFile(t *testing.T) {
	data, err := os.ReadFile("../../../deploy/examples/intake-keys.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f, err := access.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := f.Keys.Lookup("example-helpdesk-zendesk-NOT-A-REAL-KEY", now); err != nil || e.Scope != "helpdesk" {
		t.Errorf("zendesk key = %+v, %v", e, err)
	}
	if _, err := f.Keys.Lookup("example-helpdesk-zendesk-2025-NOT-A-REAL-KEY", now); !errors.Is(err, apikey.ErrRevoked) {
		t.Errorf("rotated-out key = %v, want revoked", err)
	}
	for _, k := range []string{"example-webform-NOT-A-REAL-KEY", "example-crm-NOT-A-REAL-KEY"} {
		if _, err := f.Keys.Lookup(k, now); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	if l := f.Limit("crm", access.Limit{}); l.Burst != 500 {
		t.Errorf("crm limit = %+v", l)
	}
}
