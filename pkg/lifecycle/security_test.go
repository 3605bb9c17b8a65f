package lifecycle_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/pkg/natsauth"
	"github.com/feedloop/feedloop/pkg/natsembed"
	"github.com/feedloop/feedloop/pkg/testkit"
	"github.com/feedloop/feedloop/pkg/tlsfiles"
)

func common(t *testing.T, natsURL string) lifecycle.Common {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	return lifecycle.Common{
		NATSURL: natsURL, RedisURL: testkit.Redis(t), StreamReplicas: 1,
		DuplicateWindow: time.Minute, LogLevel: "error",
	}
}

func connect(t *testing.T, c lifecycle.Common, opts ...lifecycle.ConnectOption) (*lifecycle.Infra, error) {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	infra, cleanup, err := lifecycle.Connect(ctx, "intake", c, opts...)
	t.Cleanup(cleanup)
	return infra, err
}

// NATS over TLS with client certificates required (verify): the service
// connects with its certificate, and a client without one is refused.
func TestNATSMutualTLS(t *testing.T) {
	certs := testkit.NewCerts(t)
	srvTLS, err := tlsfiles.Server{CertFile: certs.ServerCert, KeyFile: certs.ServerKey, ClientCAFile: certs.CA}.Config()
	if err != nil {
		t.Fatal(err)
	}
	ns, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir(), TLS: srvTLS, TLSVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	url := strings.Replace(ns.ClientURL(), "nats://", "tls://", 1)

	c := common(t, url)
	c.NATSTLSCAFile, c.NATSTLSCertFile, c.NATSTLSKeyFile = certs.CA, certs.ClientCert, certs.ClientKey
	infra, err := connect(t, c)
	if err != nil {
		t.Fatalf("connect over mTLS: %v", err)
	}
	if st := infra.Bus.Conn().ConnectedUrl(); st == "" || !infra.Bus.Conn().TLSRequired() {
		t.Fatalf("connected to %q, TLS required %v", st, infra.Bus.Conn().TLSRequired())
	}

	noCert := c
	noCert.NATSTLSCertFile, noCert.NATSTLSKeyFile = "", ""
	opts, err := noCert.NATSOptions("intake")
	if err != nil {
		t.Fatal(err)
	}
	if nc, err := nats.Connect(url, opts...); err == nil {
		nc.Close()
		t.Fatal("connected without a client certificate")
	}
	if nc, err := nats.Connect(ns.ClientURL()); err == nil {
		nc.Close()
		t.Fatal("connected in plain text")
	}
}

// A service connects with its own NKey; NATS_STREAMS=check and the
// commands' CheckStreamsOnly require the streams without creating them.
func TestConnectWithNKeyAndStreamModes(t *testing.T) {
	url, users := testkit.SecureNATS(t, natsauth.Spec{ManageStreams: true})
	intake, _ := users.Get(natsauth.Intake)
	c := common(t, url)
	c.NATSNKeySeedFile = intake.SeedFile

	if _, err := connect(t, c, lifecycle.CheckStreamsOnly()); err == nil || !strings.Contains(err.Error(), "stream FEEDBACK does not exist") {
		t.Fatalf("check-only connect before any stream exists: err = %v", err)
	}
	check := c
	check.NATSStreams = lifecycle.StreamsCheck
	if _, err := connect(t, check); err == nil {
		t.Fatal("NATS_STREAMS=check created or found streams that do not exist")
	}
	if _, err := connect(t, c); err != nil {
		t.Fatalf("ensure as intake: %v", err)
	}
	if _, err := connect(t, check); err != nil {
		t.Fatalf("check once the streams exist: %v", err)
	}
}

func TestSecurityVariablesAreValidated(t *testing.T) {
	certs := testkit.NewCerts(t)
	c := lifecycle.Common{
		NATSURL: "nats://x:4222", RedisURL: "redis://x:6379", StreamReplicas: 1, DuplicateWindow: time.Minute, LogLevel: "info",
		NATSStreams:     "sometimes",
		NATSTLSCertFile: certs.ClientCert,
		TLSClientCAFile: certs.CA,
	}
	err := c.Validate()
	for _, want := range []string{
		"NATS_STREAMS: must be ensure or check",
		"NATS_TLS_CERT_FILE, NATS_TLS_KEY_FILE: must be set together",
		"TLS_CLIENT_CA_FILE: needs TLS_CERT_FILE",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v\nwant it to say %q", err, want)
		}
	}

	// Files are read where they are used; their errors name the variable.
	notSeed := filepath.Join(t.TempDir(), "seed")
	if err := os.WriteFile(notSeed, []byte("not a seed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c = lifecycle.Common{NATSNKeySeedFile: notSeed}
	if _, err := c.NATSOptions("intake"); err == nil || !strings.Contains(err.Error(), "NATS_NKEY_SEED_FILE: "+notSeed+": not an NKey seed") {
		t.Errorf("bad seed: err = %v", err)
	}
	c = lifecycle.Common{TLSCertFile: certs.ServerCert, TLSKeyFile: certs.ClientKey}
	if _, err := c.Listen("127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), "TLS_CERT_FILE, TLS_KEY_FILE, TLS_CLIENT_CA_FILE: cert") {
		t.Errorf("mismatched key: err = %v", err)
	}
}
