package tlsfiles_test

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/feedloop/feedloop/pkg/testkit"
	"github.com/feedloop/feedloop/pkg/tlsfiles"
)

// serveGRPC serves the gRPC health service on a listener from s.
func serveGRPC(t *testing.T, s tlsfiles.Server) string {
	t.Helper()
	lis, err := s.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func check(t *testing.T, addr string, creds credentials.TransportCredentials) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

func clientTLS(t *testing.T, c tlsfiles.Client) *tls.Config {
	t.Helper()
	cfg, err := c.Config()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestGRPCOverTLS(t *testing.T) {
	certs := testkit.NewCerts(t)
	addr := serveGRPC(t, tlsfiles.Server{CertFile: certs.ServerCert, KeyFile: certs.ServerKey})

	if err := check(t, addr, credentials.NewTLS(clientTLS(t, tlsfiles.Client{CAFile: certs.CA}))); err != nil {
		t.Fatalf("TLS call: %v", err)
	}
	if err := check(t, addr, insecure.NewCredentials()); err == nil {
		t.Fatal("plaintext call to a TLS server succeeded")
	}
	if err := check(t, addr, credentials.NewTLS(clientTLS(t, tlsfiles.Client{CAFile: certs.OtherCA}))); err == nil {
		t.Fatal("call trusting another CA succeeded")
	}
}

func TestGRPCMutualTLS(t *testing.T) {
	certs := testkit.NewCerts(t)
	addr := serveGRPC(t, tlsfiles.Server{CertFile: certs.ServerCert, KeyFile: certs.ServerKey, ClientCAFile: certs.CA})

	withCert := tlsfiles.Client{CAFile: certs.CA, CertFile: certs.ClientCert, KeyFile: certs.ClientKey}
	if err := check(t, addr, credentials.NewTLS(clientTLS(t, withCert))); err != nil {
		t.Fatalf("mTLS call: %v", err)
	}
	if err := check(t, addr, credentials.NewTLS(clientTLS(t, tlsfiles.Client{CAFile: certs.CA}))); err == nil {
		t.Fatal("call without a client certificate succeeded")
	}
}

func TestHTTPSPostAndRotation(t *testing.T) {
	certs := testkit.NewCerts(t)
	lis, err := tlsfiles.Server{CertFile: certs.ServerCert, KeyFile: certs.ServerKey}.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ErrorLog: log.New(io.Discard, "", 0), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, r.Method+" "+string(b))
	})}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	url := "https://" + lis.Addr().String() + "/v1/feedback"

	// A fresh transport per request: a new handshake, no reused connection.
	post := func() (string, int64) {
		t.Helper()
		var served int64
		cfg := clientTLS(t, tlsfiles.Client{CAFile: certs.CA})
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			served = cs.PeerCertificates[0].SerialNumber.Int64()
			return nil
		}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
		defer c.CloseIdleConnections()
		resp, err := c.Post(url, "application/json", strings.NewReader(`{"text":"hi"}`))
		if err != nil {
			t.Fatalf("HTTPS POST: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b), served
	}
	body, first := post()
	if body != `POST {"text":"hi"}` {
		t.Fatalf("body = %q", body)
	}
	// Go's TLS server answers plain HTTP with a 400 and handles nothing.
	if resp, err := http.Post("http://"+lis.Addr().String()+"/v1/feedback", "application/json", strings.NewReader("{}")); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(b), "POST") {
			t.Fatalf("plain HTTP POST to the TLS port: %s %q", resp.Status, b)
		}
	}

	tlsfiles.SetRecheck(t, 0)
	certs.Issue(t, "server", true) // rotate the files in place
	if _, now := post(); now == first || now != testkit.Serial(t, certs.ServerCert) {
		t.Fatalf("after rotation the server presents serial %d, want the new %d (old %d)", now, testkit.Serial(t, certs.ServerCert), first)
	}
}

func TestCheckNamesTheProblem(t *testing.T) {
	certs := testkit.NewCerts(t)
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"cert without key", tlsfiles.Server{CertFile: certs.ServerCert}.Check(), "cert and key must be set together"},
		{"key of another cert", tlsfiles.Server{CertFile: certs.ServerCert, KeyFile: certs.ClientKey}.Check(), "private key does not match"},
		{"CA not PEM", tlsfiles.Client{CAFile: certs.ServerKey}.Check(), "no PEM certificate"},
		{"missing CA", tlsfiles.Server{CertFile: certs.ServerCert, KeyFile: certs.ServerKey, ClientCAFile: "/nonexistent/ca.pem"}.Check(), "no such file"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to say %q", tc.name, tc.err, tc.want)
		}
	}
	if err := (tlsfiles.Server{}).Check(); err != nil {
		t.Errorf("zero Server: %v", err)
	}
}
