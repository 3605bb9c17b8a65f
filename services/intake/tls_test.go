package intake_test

import (
	"crypto/tls"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/pkg/testkit"
	"github.com/feedloop/feedloop/pkg/tlsfiles"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/intake"
)

// With TLS_CERT_FILE and a client CA, intake's gRPC and HTTP ports speak
// mTLS only.
func TestSubmitOverMutualTLS(t *testing.T) {
	certs := testkit.NewCerts(t)
	cfg := testConfig()
	cfg.TLSCertFile, cfg.TLSKeyFile, cfg.TLSClientCAFile = certs.ServerCert, certs.ServerKey, certs.CA
	b := testkit.Bus(t)
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
	svc, err := intake.New(cfg, &lifecycle.Infra{Bus: b, Redis: testkit.RedisClient(t), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, svc.Run)

	clientTLS := func(f tlsfiles.Client) *tls.Config {
		c, err := f.Config()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	withCert := clientTLS(tlsfiles.Client{CAFile: certs.CA, CertFile: certs.ClientCert, KeyFile: certs.ClientKey})
	submit := func(creds credentials.TransportCredentials, ext string) error {
		conn, err := grpc.NewClient(svc.GRPCAddr(), grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, err = feedloopv1.NewIntakeServiceClient(conn).Submit(ctxT(t), &feedloopv1.SubmitRequest{Feedback: feedback("helpdesk", ext)})
		return err
	}
	if err := submit(credentials.NewTLS(withCert), "T-1"); err != nil {
		t.Fatalf("Submit over mTLS: %v", err)
	}
	if err := submit(insecure.NewCredentials(), "T-2"); err == nil {
		t.Fatal("plaintext Submit accepted")
	}
	if err := submit(credentials.NewTLS(clientTLS(tlsfiles.Client{CAFile: certs.CA})), "T-3"); err == nil {
		t.Fatal("Submit without a client certificate accepted")
	}

	e := &env{bus: b, base: "https://" + svc.HTTPAddr(),
		http: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: withCert}}}
	code, body, _ := e.post(t, "application/json", []byte(`{"source":"helpdesk","external_id":"T-4","channel":"CHANNEL_EMAIL","text":"Charged twice."}`))
	if code/100 != 2 {
		t.Fatalf("HTTPS POST /v1/feedback: %d %s", code, body)
	}
	// Go's TLS server answers plain HTTP with a 400.
	if res, err := http.Post("http://"+svc.HTTPAddr()+"/v1/feedback", "application/json", strings.NewReader(`{}`)); err == nil {
		res.Body.Close()
		if res.StatusCode/100 == 2 {
			t.Fatalf("plain HTTP POST: %s", res.Status)
		}
	}
	e.waitReceived(t, 2) // T-1 and T-4
}
