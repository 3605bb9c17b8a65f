package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/feedloop/feedloop/pkg/apikey"
	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/pkg/testkit"
	"github.com/feedloop/feedloop/services/intake"
	"github.com/feedloop/feedloop/services/intake/access"
)

// The key `feedloop intake key` prints is admitted by the line it prints,
// and `feedloop submit` sends it from --api-key or FEEDLOOP_API_KEY.
func TestIntakeKeyAndSubmitWithIt(t *testing.T) {
	code, stdout, stderr := run(t, "intake", "key", "--source", "helpdesk", "--name", "zendesk-prod", "--expires", "90d", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var k struct{ Key, Line, Sha256, Expires, Source string }
	if err := json.Unmarshal([]byte(stdout), &k); err != nil {
		t.Fatal(err)
	}
	if apikey.Hash(k.Key) != k.Sha256 || !strings.Contains(k.Line, k.Sha256) || k.Source != "helpdesk" {
		t.Fatalf("key output %s", stdout)
	}
	exp, err := time.Parse(time.RFC3339, k.Expires)
	if d := time.Until(exp); err != nil || d < 89*24*time.Hour || d > 90*24*time.Hour {
		t.Fatalf("expires %q, want in 90 days", k.Expires)
	}
	path := filepath.Join(t.TempDir(), "keys.yaml")
	if err := os.WriteFile(path, []byte("keys:\n  "+k.Line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := access.Parse([]byte("keys:\n  " + k.Line + "\n")); err != nil {
		t.Fatalf("the printed line does not parse: %v", err)
	}

	cfg := intake.DefaultConfig()
	cfg.APIKeysFile, cfg.GRPCAddr, cfg.HTTPAddr = path, "127.0.0.1:0", "127.0.0.1:0"
	svc, err := intake.New(cfg,
		&lifecycle.Infra{Bus: testkit.Bus(t), Redis: testkit.RedisClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, svc.Run)
	args := []string{"submit", "--server", svc.GRPCAddr(), "--source", "helpdesk", "--text", "late again"}

	if code, _, stderr := run(t, append(args, "--external-id", "K-1")...); code != 1 ||
		!strings.Contains(stderr, "Unauthenticated: missing API key") || !strings.Contains(stderr, "FEEDLOOP_API_KEY") {
		t.Fatalf("without a key: exit %d, %q", code, stderr)
	}
	if code, stdout, stderr := run(t, append(args, "--external-id", "K-1", "--api-key", k.Key)...); code != 0 || strings.TrimSpace(stdout) == "" {
		t.Fatalf("--api-key: exit %d, %q %q", code, stdout, stderr)
	}
	t.Setenv(envAPIKey, k.Key)
	if code, _, stderr := run(t, append(args, "--external-id", "K-2")...); code != 0 {
		t.Fatalf("FEEDLOOP_API_KEY: exit %d, %q", code, stderr)
	}
	if code, _, stderr := run(t, "submit", "--server", svc.GRPCAddr(), "--source", "crm", "--external-id", "K-3", "--text", "x"); code != 1 ||
		!strings.Contains(stderr, "PermissionDenied") || !strings.Contains(stderr, "feedback.source") {
		t.Fatalf("another source: exit %d, %q", code, stderr)
	}
}

func TestIntakeKeyPrintsExportAndLine(t *testing.T) {
	code, stdout, _ := run(t, "intake", "key", "--source", "survey")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != 0 || len(lines) != 4 || !strings.HasPrefix(lines[1], "export FEEDLOOP_API_KEY=") ||
		!strings.HasPrefix(strings.TrimSpace(lines[3]), "- {source: survey, sha256: ") {
		t.Fatalf("exit %d, output:\n%s", code, stdout)
	}
	for _, bad := range [][]string{
		{"--source", "Help Desk"}, {"--source", "crm", "--expires", "-3d"}, {"--source", "crm", "--expires", "2001-01-01"},
		{"--source", "crm", "--expires", "soon"}, {"--source", "crm", "--name", "a\nb"},
	} {
		if code, _, stderr := run(t, append([]string{"intake", "key"}, bad...)...); code != 2 || !strings.Contains(stderr, "--") {
			t.Errorf("%v: exit %d, %q; want 2 naming the flag", bad, code, stderr)
		}
	}
}

func TestParseExpiry(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"90d":                  now.AddDate(0, 0, 90),
		"36h":                  now.Add(36 * time.Hour),
		"2027-03-01":           time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC),
		"2027-03-01T08:00:00Z": time.Date(2027, 3, 1, 8, 0, 0, 0, time.UTC),
	} {
		if got, err := parseExpiry(in, now); err != nil || !got.Equal(want) {
			t.Errorf("parseExpiry(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

// feedloop dev --api-keys makes intake require keys, as deployed: a key
// `feedloop intake key` made submits, no key is refused; a file that does
// not parse is a usage error naming the flag before anything starts.
func TestDevWithAPIKeys(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("keys: [{source: Nope!}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := run(t, "dev", "--examples", examples, "--api-keys", bad); code != 2 || !strings.Contains(stderr, "--api-keys") {
		t.Fatalf("bad keys file: exit %d, %q", code, stderr)
	}

	code, stdout, stderr := run(t, "intake", "key", "--source", "helpdesk", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var k struct{ Key, Line string }
	if err := json.Unmarshal([]byte(stdout), &k); err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(t.TempDir(), "keys.yaml")
	if err := os.WriteFile(keys, []byte("keys:\n  "+k.Line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := startDev(t, t.TempDir(), "--api-keys", keys)
	testkit.Eventually(t, "the banner", func() bool { return strings.Contains(out.String(), "intake gRPC") })
	server := regexp.MustCompile(`(?m)^  intake gRPC   (\S+)$`).FindStringSubmatch(out.String())[1]
	args := []string{"submit", "--server", server, "--source", "helpdesk", "--external-id", "k-1", "--text", "hello"}
	if code, _, stderr := run(t, args...); code == 0 || !strings.Contains(stderr, "Unauthenticated") {
		t.Fatalf("without a key: exit %d, %q", code, stderr)
	}
	if code, _, stderr := run(t, append(args, "--api-key", k.Key)...); code != 0 {
		t.Fatalf("with the key: exit %d, %q", code, stderr)
	}
}
