package cli

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/feedloop/feedloop/cmd/feedloop/internal/stack"
	"github.com/feedloop/feedloop/cmd/feedloop/internal/teamtoken"
	"github.com/feedloop/feedloop/pkg/testkit"
	"github.com/feedloop/feedloop/pkg/tlsfiles"
)

// submit and inbox talk TLS (and mTLS) with --ca-file, --cert-file and
// --key-file; a team token never goes in clear text to another machine
// unless --insecure says so.
func TestSubmitAndInboxOverTLS(t *testing.T) {
	certs := testkit.NewCerts(t)
	token := teamtoken.New()
	tokensFile := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := teamtoken.WriteFile(tokensFile, []teamtoken.Entry{{Team: "billing", SHA256: teamtoken.Hash(token)}}); err != nil {
		t.Fatal(err)
	}
	cfg := stack.DevConfig(examples, t.TempDir())
	cfg.Notifier.ConsoleOutput = &testkit.SyncBuffer{}
	cfg.Router.TeamTokensFile = tokensFile
	cfg.Intake.TLSCertFile, cfg.Intake.TLSKeyFile = certs.ServerCert, certs.ServerKey
	cfg.Router.TLSCertFile, cfg.Router.TLSKeyFile, cfg.Router.TLSClientCAFile = certs.ServerCert, certs.ServerKey, certs.CA
	s, err := stack.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, s.Run)

	submit := []string{"submit", "--server", s.Intake.GRPCAddr(), "--source", "helpdesk", "--external-id", "T-1", "--text", "Charged twice", "--timeout", "5s"}
	if code, _, stderr := run(t, append(submit, "--ca-file", certs.CA)...); code != 0 {
		t.Fatalf("submit over TLS: exit %d: %s", code, stderr)
	}
	if code, _, _ := run(t, submit...); code == 0 {
		t.Fatal("plaintext submit to a TLS intake succeeded")
	}
	if code, _, _ := run(t, append(submit, "--ca-file", certs.OtherCA)...); code == 0 {
		t.Fatal("submit trusting another CA succeeded")
	}

	t.Setenv(envToken, token)
	list := []string{"inbox", "list", "--server", s.Router.GRPCAddr(), "--timeout", "5s"}
	if code, _, stderr := run(t, append(list, "--ca-file", certs.CA, "--cert-file", certs.ClientCert, "--key-file", certs.ClientKey)...); code != 0 {
		t.Fatalf("inbox list over mTLS: exit %d: %s", code, stderr)
	}
	if code, _, _ := run(t, append(list, "--ca-file", certs.CA)...); code != 1 {
		t.Fatalf("inbox list without a client certificate: exit %d, want 1", code)
	}

	// The router's status pages are served over the same mTLS.
	cfg2, err := tlsfiles.Client{CAFile: certs.CA, CertFile: certs.ClientCert, KeyFile: certs.ClientKey}.Config()
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg2}}
	defer hc.CloseIdleConnections()
	res, err := hc.Get("https://" + s.Router.HTTPAddr() + "/status/no-such-token")
	if err != nil {
		t.Fatalf("status page over mTLS: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound || res.TLS == nil {
		t.Fatalf("status page over mTLS: %s (TLS %v)", res.Status, res.TLS != nil)
	}

	// The refusal comes before any dial: nothing is sent to the remote
	// address (the tests send traffic to loopback only).
	remote := []string{"inbox", "list", "--server", "router.feedloop.example:7003", "--timeout", "200ms"}
	code, stdout, stderr := run(t, remote...)
	if code != 2 || !strings.Contains(stderr, "team token would travel in clear text") || !strings.Contains(stderr, "--insecure") {
		t.Fatalf("plaintext to a remote server: exit %d: %s", code, stderr)
	}
	if strings.Contains(stdout+stderr, token) {
		t.Fatal("the token was printed")
	}
	code, stdout, stderr = run(t, "submit", "--server", "intake.feedloop.example:7001", "--api-key", "submit-key-NOT-REAL",
		"--source", "helpdesk", "--external-id", "x", "--text", "t")
	if code != 2 || !strings.Contains(stderr, "API key would travel in clear text") || strings.Contains(stdout+stderr, "submit-key-NOT-REAL") {
		t.Fatalf("submit with an API key in clear to a remote server: exit %d: %s", code, stderr)
	}
}

func TestInsecureAllowsCleartext(t *testing.T) {
	if _, err := (&tlsFlags{insecure: true}).creds("router.feedloop.example:7003", "team token"); err != nil {
		t.Fatalf("--insecure must allow clear text: %v", err)
	}
	if _, err := (&tlsFlags{}).creds("router.feedloop.example:7003", ""); err != nil {
		t.Fatalf("no secret to protect: clear text is allowed: %v", err)
	}
	if _, err := (&tlsFlags{}).creds("router.feedloop.example:7003", "team token"); err == nil {
		t.Fatal("a secret in clear text to another machine must be refused")
	}
}

func TestIsLoopback(t *testing.T) {
	for target, want := range map[string]bool{
		"127.0.0.1:7003": true, "localhost:7003": true, "[::1]:7003": true, "dns:///localhost:7003": true,
		"unix:///run/router.sock": true, "router.feedloop.svc:7003": false, "10.0.0.7:7003": false, ":7003": true,
	} {
		if got := isLoopback(target); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", target, got, want)
		}
	}
}
