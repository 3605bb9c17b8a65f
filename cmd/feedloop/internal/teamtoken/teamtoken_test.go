package teamtoken_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
		{Team: "product", SHA256: teamtoken.Hash("b")},
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
		Tokens []struct{ Team, Name, SHA256 string } `yaml:"tokens"`
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
		if got := f.Tokens[i]; got.Team != e.Team || got.Name != e.Name || got.SHA256 != e.SHA256 {
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
