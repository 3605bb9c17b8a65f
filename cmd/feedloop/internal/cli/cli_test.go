package cli

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/feedloop/feedloop/pkg/testkit"

	"github.com/feedloop/feedloop/cmd/feedloop/internal/stack"
	"github.com/feedloop/feedloop/cmd/feedloop/internal/teamtoken"
)

const examples = "../../../../deploy/examples"

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb testkit.SyncBuffer
	code = Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// The printed curl line is what a newcomer pastes first: it must work and
// its item must reach the teams and the customer on the console. Then the
// printed export lines let them play a team by hand, against the
// in-process Redis stand-in.
func TestDevPrintsAWorkingCurlLineAndTeamTokens(t *testing.T) {
	data := t.TempDir()
	out := startDev(t, data)
	pasteCurlLine(t, out)
	for _, line := range []string{
		"→ customer ada@example.com [received]",
		"→ team billing [routed]",
		"→ team product [routed]",
	} {
		testkit.Eventually(t, line, func() bool { return strings.Contains(out.String(), line) })
	}
	// The metrics line of the banner serves every service's metrics.
	mu := regexp.MustCompile(`metrics\s+(http://\S+/metrics)`).FindStringSubmatch(out.String())
	if mu == nil {
		t.Fatalf("no metrics line in the banner:\n%s", out.String())
	}
	mres, err := http.Get(mu[1])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(mres.Body)
	mres.Body.Close()
	if !strings.Contains(string(body), "feedloop_messages_processed_total") {
		t.Fatalf("%s lacks the pipeline metrics:\n%.500s", mu[1], body)
	}

	// The banner opens with the console: a sign-in link per team that signs
	// a browser in with one click, and the mailbox.
	banner0 := out.String()
	if !regexp.MustCompile(`^feedloop dev is running — Ctrl-C to stop\n\n  console  http://127\.0\.0\.1:\d+\n  open http://`).MatchString(banner0) ||
		!strings.Contains(banner0, "/dev/mailbox  (what customers and teams were sent)") {
		t.Fatalf("the banner does not open with the console:\n%s", banner0)
	}
	signin := regexp.MustCompile(`(?m)^  open (http://\S+/dev/signin/billing) to work as billing$`).FindStringSubmatch(banner0)
	if signin == nil {
		t.Fatalf("no sign-in link for billing:\n%s", banner0)
	}
	jar, _ := cookiejar.New(nil)
	res, err := (&http.Client{Jar: jar}).Get(signin[1])
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(page), "billing") || res.Request.URL.Path == "/signin" {
		t.Fatalf("the sign-in link led to %s (%d):\n%.500s", res.Request.URL, res.StatusCode, page)
	}

	// One export line per team of the example routes, each token's hash in
	// the tokens file under --data, and the team API's address.
	banner := out.String()
	tree, err := loadTree(filepath.Join(examples, "routes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	hashes, err := os.ReadFile(filepath.Join(data, devTokensFile))
	if err != nil {
		t.Fatal(err)
	}
	// The tokens dev keeps in clear under --data match the hashes the router
	// reads; --as finds them, so nobody pastes a token.
	tokens, err := stack.ReadDevTokens(filepath.Join(data, stack.DevTokensFile))
	if err != nil {
		t.Fatal(err)
	}
	for team, tok := range tokens {
		if !strings.Contains(string(hashes), "{team: "+team+", sha256: "+teamtoken.Hash(tok)+"}") {
			t.Errorf("the tokens file lacks team %s's hash:\n%s", team, hashes)
		}
	}
	if len(tokens) != len(tree.Teams()) {
		t.Errorf("tokens for %v, want one for each of %v", tokens, tree.Teams())
	}
	sm := regexp.MustCompile(`(?m)^  export FEEDLOOP_SERVER=(\S+)$`).FindStringSubmatch(banner)
	if sm == nil || !regexp.MustCompile(`(?m)^  status pages  http://127\.0\.0\.1:\d+/status/<token>`).MatchString(banner) {
		t.Fatalf("banner lacks the team API or status page address:\n%s", banner)
	}
	if !strings.Contains(banner, "feedloop inbox list --as billing --dev-data "+data+"\n") || strings.Contains(banner, "FEEDLOOP_TOKEN=") {
		t.Fatalf("the banner should show --as, not tokens to paste:\n%s", banner)
	}

	// The printed lines work: billing finds the item and acknowledges it.
	t.Setenv(envServer, sm[1])
	t.Setenv(envToken, tokens["billing"])
	id := theOneItem(t)
	t.Setenv(envToken, "")
	if code, stdout, stderr := run(t, "inbox", "ack", id, "--as", "billing", "--dev-data", data); code != 0 || !strings.Contains(stdout, "billing is now acknowledged") {
		t.Fatalf("ack: exit %d, %q %q", code, stdout, stderr)
	}
	if code, _, stderr := run(t, "inbox", "list", "--as", "nobody", "--dev-data", data); code != 2 || !strings.Contains(stderr, "no team nobody") {
		t.Fatalf("--as an unknown team: exit %d, %q", code, stderr)
	}
	if code, _, stderr := run(t, "inbox", "list", "--as", "billing", "--dev-data", t.TempDir()); code != 2 || !strings.Contains(stderr, "is feedloop dev running") {
		t.Fatalf("--as without dev: exit %d, %q", code, stderr)
	}
	// Another --data directory's tokens (a dev run earlier elsewhere): the
	// router's refusal and the CLI's hint say what to do about it.
	stale := t.TempDir()
	if err := os.WriteFile(filepath.Join(stale, stack.DevTokensFile), []byte("tokens:\n  billing: \"fl_stale-token-of-another-data-dir\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run(t, "inbox", "list", "--as", "billing", "--dev-data", stale)
	if code != 1 {
		t.Fatalf("--as with another --data's token: exit %d, %q", code, stderr)
	}
	for _, want := range []string{"unknown team token", "ask whoever runs the router", filepath.Join(stale, stack.DevTokensFile), "started with --data " + stale, "set --dev-data"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("--as with another --data's token: stderr lacks %q: %s", want, stderr)
		}
	}
	if strings.Contains(stderr, "stale-token") {
		t.Errorf("the token was printed: %s", stderr)
	}
	t.Setenv(envToken, tokens["billing"])
	if code, stdout, stderr := run(t, "inbox", "show", id); code != 0 || !strings.Contains(stdout, "billing: routed → acknowledged by billing") {
		t.Fatalf("show: exit %d, %q %q", code, stdout, stderr)
	}
}

// startDev runs `feedloop dev` on free ports with data as its data
// directory until the test ends, and returns what it prints.
func startDev(t *testing.T, data string, args ...string) *testkit.SyncBuffer {
	t.Helper()
	var out, errb testkit.SyncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, append([]string{"dev", "--data", data, "--examples", examples,
			"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
			"--router-grpc-addr", "127.0.0.1:0", "--router-http-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0",
			"--smtp-addr", "127.0.0.1:0", "--console-addr", "127.0.0.1:0"}, args...), &out, &errb)
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("dev exited %d: %s", code, errb.String())
		}
	})
	return &out
}

// pasteCurlLine waits for dev's banner and posts the item of its curl line.
func pasteCurlLine(t *testing.T, out *testkit.SyncBuffer) {
	t.Helper()
	curl := regexp.MustCompile(`curl -sS -X POST (\S+) .*\\\n\s+-d '([^']+)'`)
	testkit.Eventually(t, "the banner", func() bool { return curl.MatchString(out.String()) })
	m := curl.FindStringSubmatch(out.String())
	res, err := http.Post(m[1], "application/json", strings.NewReader(m[2]))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("curl line answered %d", res.StatusCode)
	}
}

// theOneItem waits until the inbox of the team whose token is in the
// environment holds one item, and returns its id.
func theOneItem(t *testing.T, args ...string) string {
	t.Helper()
	var id string
	testkit.Eventually(t, "the item in the team's inbox", func() bool {
		code, stdout, _ := run(t, append([]string{"inbox", "list", "--json"}, args...)...)
		var l struct {
			Items []struct{ FeedbackID string } `json:"items"`
		}
		if code != 0 || json.Unmarshal([]byte(stdout), &l) != nil || len(l.Items) != 1 {
			return false
		}
		id = l.Items[0].FeedbackID
		return true
	})
	return id
}

func TestDevRejectsBadFlags(t *testing.T) {
	code, _, stderr := run(t, "dev", "--examples", t.TempDir())
	if code != 2 || !strings.Contains(stderr, "--examples") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = run(t, "dev", "--examples", examples, "--log-level", "loud")
	if code != 2 || !strings.Contains(stderr, "--log-level") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

func TestSubmit(t *testing.T) {
	cfg := stack.DevConfig(examples, t.TempDir())
	var console testkit.SyncBuffer
	cfg.Notifier.ConsoleOutput = &console
	s, err := stack.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, s.Run)
	server := s.Intake.GRPCAddr()

	args := []string{"submit", "--server", server, "--source", "helpdesk", "--external-id", "T-1",
		"--email", "ada@example.com", "--consent", "--nps", "3", "--attr", "plan=pro",
		"--text", "Delivery was late again"}
	code, stdout, stderr := run(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	id := strings.TrimSpace(stdout)
	if !regexp.MustCompile(`^[0-9a-f-]{36}$`).MatchString(id) {
		t.Fatalf("stdout %q is not an id", stdout)
	}
	testkit.Eventually(t, "acknowledgement", func() bool {
		return strings.Contains(console.String(), "→ customer ada@example.com [received]") &&
			strings.Contains(console.String(), id)
	})

	code, stdout, _ = run(t, append(args, "--json")...)
	var resp struct {
		FeedbackID string `json:"feedbackId"`
		Duplicate  bool   `json:"duplicate"`
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &resp) != nil || resp.FeedbackID != id || !resp.Duplicate {
		t.Fatalf("resubmission: exit %d, %q", code, stdout)
	}

	code, _, stderr = run(t, "submit", "--server", server, "--source", "helpdesk", "--external-id", "T-2", "--text", "x", "--nps", "11", "--email", "not-an-email")
	if code != 2 || !strings.Contains(stderr, "feedback.nps") || !strings.Contains(stderr, "feedback.customer.email") {
		t.Fatalf("invalid submit: exit %d, stderr %q", code, stderr)
	}

	file := filepath.Join(t.TempDir(), "fb.json")
	if err := os.WriteFile(file, []byte(`{"source":"web","externalId":"F-1","text":"from a file","channel":"CHANNEL_WEB"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := run(t, "submit", "--server", server, "--file", file); code != 0 || strings.TrimSpace(stdout) == id {
		t.Fatalf("--file: exit %d, %q %q", code, stdout, stderr)
	}
	if code, _, stderr := run(t, "submit", "--server", server, "--channel", "pigeon"); code != 2 || !strings.Contains(stderr, "--channel") {
		t.Fatalf("--channel pigeon: exit %d, %q", code, stderr)
	}
}

func TestRulesCheck(t *testing.T) {
	code, stdout, stderr := run(t, "rules", "check", filepath.Join(examples, "routes.yaml"))
	if code != 0 || !strings.Contains(stdout, "ok") || !strings.Contains(stdout, "default team triage") {
		t.Fatalf("example: exit %d, %q %q", code, stdout, stderr)
	}
	bad := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(bad, []byte("route:\n  team: triage\n  routes:\n    - team: Billing!\n      matchers: ['topic=~\"(\"']\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = run(t, "rules", "check", bad)
	if code != 2 || !strings.Contains(stderr, "route.routes[0]") || !strings.Contains(stderr, "matchers[0]") {
		t.Fatalf("bad tree: exit %d, stderr %q", code, stderr)
	}
	// The classifier's rules file README ships is checked as what it is.
	code, stdout, stderr = run(t, "rules", "check", filepath.Join(examples, "rules.yaml"))
	if code != 0 || !strings.Contains(stdout, "ok — classifier rules") || !strings.Contains(stdout, "billing") {
		t.Fatalf("example rules: exit %d, %q %q", code, stdout, stderr)
	}
	badRules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(badRules, []byte("version: v1\ntopics:\n  - id: x\n    topic: billing\n    patterns: ['(']\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = run(t, "rules", "check", badRules)
	if code != 2 || !strings.Contains(stderr, "topics[0].patterns[0]") {
		t.Fatalf("bad rules: exit %d, stderr %q", code, stderr)
	}
	neither := filepath.Join(t.TempDir(), "x.yaml")
	if err := os.WriteFile(neither, []byte("teams: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr = run(t, "rules", "check", neither); code != 2 || !strings.Contains(stderr, "neither a routing tree") {
		t.Fatalf("neither kind: exit %d, stderr %q", code, stderr)
	}
	// A flag the command requires is a usage error, exit 2.
	if code, _, stderr = run(t, "rules", "test", filepath.Join(examples, "routes.yaml")); code != 2 || !strings.Contains(stderr, "feedback") {
		t.Fatalf("rules test without --feedback: exit %d, stderr %q", code, stderr)
	}
}

func TestRulesTest(t *testing.T) {
	fb := `{"source":"helpdesk","text":"I was charged twice and the app crashes","nps":2}`
	code, stdout, stderr := run(t, "rules", "test", filepath.Join(examples, "routes.yaml"),
		"--rules", filepath.Join(examples, "rules.yaml"), "--feedback", fb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"customer-success via root/detractors", "billing via root/billing", "product via root/product", `nps_band="detractor"`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}

	// The shipped example item reaches every team that owns a part of it.
	code, stdout, stderr = run(t, "rules", "test", filepath.Join(examples, "routes.yaml"),
		"--rules", filepath.Join(examples, "rules.yaml"), "--feedback", filepath.Join(examples, "feedback.json"))
	if code != 0 {
		t.Fatalf("example feedback: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"3 team(s)", "customer-success via", "billing via", "logistics-dach via root/logistics/dach"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("example feedback: output lacks %q:\n%s", want, stdout)
		}
	}

	// Without --rules the item has no topic: the default team takes it.
	code, stdout, _ = run(t, "rules", "test", filepath.Join(examples, "routes.yaml"), "--json",
		"--feedback", `{"source":"web","text":"hello"}`)
	var res struct {
		Matches []struct{ Team, Route string } `json:"matches"`
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &res) != nil || len(res.Matches) != 1 || res.Matches[0].Team != "triage" {
		t.Fatalf("exit %d, %q", code, stdout)
	}

	if code, _, stderr := run(t, "rules", "test", filepath.Join(examples, "routes.yaml"), "--feedback", `{"nps":"high"}`); code != 2 || !strings.Contains(stderr, "--feedback") {
		t.Fatalf("bad feedback: exit %d, %q", code, stderr)
	}
}
