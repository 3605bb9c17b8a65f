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

	// With the teams of the routes file, the router may create exactly
	// their watch consumers.
	code, _, stderr = run(t, "nats-config", "--out", dir, "--source", "helpdesk", "--routes", filepath.Join(examples, "routes.yaml"))
	if code != 0 {
		t.Fatalf("--routes: exit %d: %s", code, stderr)
	}
	auth, err := os.ReadFile(filepath.Join(dir, "auth.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(auth), `"$JS.API.CONSUMER.CREATE.FEEDBACK.watch-billing.feedback.routed.billing"`) ||
		// Once, for the tools user's ordered consumers; not for the router.
		strings.Count(string(auth), `"$JS.API.CONSUMER.CREATE.FEEDBACK.*.feedback.routed.*"`) != 1 {
		t.Fatal("--routes: the router's watch consumers are not limited to the routes' teams")
	}

	for _, bad := range [][]string{
		{"nats-config", "--out", dir, "--source", "Help Desk"},
		{"nats-config", "--out", dir, "--print-seed", "mallory"},
		{"nats-config", "--out", dir, "--routes", "/nonexistent/routes.yaml"},
	} {
		if code, _, stderr := run(t, bad...); code != 2 || !strings.Contains(stderr, "--") {
			t.Errorf("%v: exit %d: %s", bad, code, stderr)
		}
	}
}
