package teamtoken_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/feedloop/feedloop/cmd/feedloop/internal/teamtoken"
)

func TestNewIsRandomAndShellSafe(t *testing.T) {
	a, b := teamtoken.New(), teamtoken.New()
	if a == b {
		t.Fatal("two tokens are equal")
	}
	raw, err := base64.RawURLEncoding.DecodeString(a)
	if err != nil || len(raw) != teamtoken.Size {
		t.Fatalf("token %q: %d bytes, %v", a, len(raw), err)
	}
	if strings.ContainsAny(a, "+/= \n") {
		t.Fatalf("token %q is not URL- and shell-safe", a)
	}
}

func TestHashIsHexSHA256(t *testing.T) {
	sum := sha256.Sum256([]byte("billing-secret"))
	if got := teamtoken.Hash("billing-secret"); got != hex.EncodeToString(sum[:]) {
		t.Fatalf("Hash = %s", got)
	}
}

// The file must read back as the router's format, with names that YAML
// would otherwise take apart kept whole.
func TestWriteFileReadsBack(t *testing.T) {
	entries := []teamtoken.Entry{
		{Team: "billing", Name: `Zoë "Z" O'Neil: lead, #1`, SHA256: teamtoken.Hash("a")},
		{Team: "product", SHA256: teamtoken.Hash("b"), Expires: time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)},
	}
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := teamtoken.WriteFile(path, entries); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Tokens []struct{ Team, Name, SHA256, Expires string } `yaml:"tokens"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if len(f.Tokens) != 2 {
		t.Fatalf("%d tokens\n%s", len(f.Tokens), data)
	}
	for i, e := range entries {
		wantExp := ""
		if !e.Expires.IsZero() {
			wantExp = e.Expires.Format(time.RFC3339)
		}
		if got := f.Tokens[i]; got.Team != e.Team || got.Name != e.Name || got.SHA256 != e.SHA256 || got.Expires != wantExp {
			t.Errorf("tokens[%d] = %+v, want %+v", i, got, e)
		}
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, %v", info.Mode(), err)
	}
}

func TestCheckNamesTheField(t *testing.T) {
	for e, want := range map[teamtoken.Entry]string{
		{Team: "Billing!", SHA256: teamtoken.Hash("x")}:                      "team:",
		{Team: "billing", Name: "a\nb", SHA256: teamtoken.Hash("x")}:         "name:",
		{Team: "billing", SHA256: "abc"}:                                     "sha256:",
		{Team: "billing", Name: strings.Repeat("n", 129), SHA256: "x"}:       "name:",
		{Team: strings.Repeat("t", 65), Name: "n", SHA256: "not-hex-at-all"}: "team:",
	} {
		err := e.Check()
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%+v: %v, want %s", e, err, want)
		}
	}
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := teamtoken.WriteFile(path, []teamtoken.Entry{{Team: "ok", SHA256: teamtoken.Hash("x")}, {Team: "Bad"}}); err == nil || !strings.Contains(err.Error(), "tokens[1].team") {
		t.Fatalf("WriteFile: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a refused file was written: %v", err)
	}
}

func TestParseExpiry(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 30, 15, 500, time.FixedZone("CET", 3600))
	for in, want := range map[string]time.Time{
		"90d":                  time.Date(2027, 3, 1, 11, 30, 15, 0, time.UTC),
		"36h":                  time.Date(2026, 12, 2, 23, 30, 15, 0, time.UTC),
		"2027-03-01T00:00:00Z": time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC),
	} {
		got, err := teamtoken.ParseExpiry(in, now)
		if err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "soon", "0d", "-3d", "30s", "2026-12-01T10:00:00Z", "2027-03-01"} {
		if _, err := teamtoken.ParseExpiry(bad, now); err == nil || !strings.HasPrefix(err.Error(), "expires:") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
