package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

func TestNATSConfigWritesSeedsAndServerConfig(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nats")
	code, stdout, stderr := run(t, "nats-config", "--out", dir, "--source", "helpdesk", "--source", "survey")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	seed, err := os.ReadFile(filepath.Join(dir, "intake.nk"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stdout, strings.TrimSpace(string(seed))) {
		t.Fatalf("a seed was printed:\n%s", stdout)
	}
	for _, user := range []string{"intake", "classifier", "router", "notifier", "tools", "admin", "source-helpdesk", "source-survey"} {
		fi, err := os.Stat(filepath.Join(dir, user+".nk"))
		if err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s.nk: mode %v, want 0600", user, fi.Mode().Perm())
		}
		if !strings.Contains(stdout, user) {
			t.Errorf("output does not list %s:\n%s", user, stdout)
		}
	}
	conf := filepath.Join(dir, "nats-server.conf")
	if err := os.WriteFile(conf, []byte("port: -1\njetstream: enabled\ninclude auth.conf\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil || len(opts.Nkeys) != 8 {
		t.Fatalf("auth.conf included: %v, %d users", err, len(opts.Nkeys))
	}

	// Again, with one more source: the keys stay.
	if code, _, stderr := run(t, "nats-config", "--out", dir, "--source", "helpdesk", "--source", "survey", "--source", "crm"); code != 0 {
		t.Fatalf("again: exit %d: %s", code, stderr)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "intake.nk")); string(again) != string(seed) {
		t.Fatal("regenerating changed intake's seed")
	}
	code, stdout, _ = run(t, "nats-config", "--out", dir, "--source", "helpdesk", "--print-seed", "intake")
	if code != 0 || strings.TrimSpace(stdout) != strings.TrimSpace(string(seed)) {
		t.Fatalf("--print-seed intake: exit %d, printed %q", code, stdout)
	}

	for _, bad := range [][]string{
		{"nats-config", "--out", dir, "--source", "Help Desk"},
		{"nats-config", "--out", dir, "--print-seed", "mallory"},
	} {
		if code, _, stderr := run(t, bad...); code != 2 || !strings.Contains(stderr, "--") {
			t.Errorf("%v: exit %d: %s", bad, code, stderr)
		}
	}
}
