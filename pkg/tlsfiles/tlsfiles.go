// Package tlsfiles builds tls.Configs from PEM files, for servers (TLS, and
// mTLS with a client CA) and clients (a CA to trust, a client certificate).
// Certificates are read again when their files change, so a rotated
// certificate (cert-manager renewing a Secret) is served without a restart.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// Server names the files of a server's TLS set-up. The zero value is plain
// TCP.
type Server struct {
	// CertFile and KeyFile are the server's certificate (chain) and key.
	CertFile, KeyFile string
	// ClientCAFile, when set, makes clients present a certificate signed by
	// one of its CAs (mTLS).
	ClientCAFile string
}

// Enabled reports whether TLS is configured.
func (s Server) Enabled() bool { return s.CertFile != "" || s.KeyFile != "" || s.ClientCAFile != "" }

// Check validates the set-up: the certificate and key load and match, the
// client CA holds a certificate. Errors name the file's role (cert, key,
// client CA) so the caller can prefix the variable.
func (s Server) Check() error {
	if !s.Enabled() {
		return nil
	}
	if s.CertFile == "" || s.KeyFile == "" {
		return errors.New("cert and key must be set together")
	}
	if _, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile); err != nil {
		return fmt.Errorf("cert %s / key %s: %w", s.CertFile, s.KeyFile, err)
	}
	if s.ClientCAFile != "" {
		if _, err := LoadPool(s.ClientCAFile); err != nil {
			return err
		}
	}
	return nil
}

// Config returns the server tls.Config, or nil when TLS is not enabled.
// The certificate is re-read on a handshake after its files changed; a
// broken new pair keeps the last good one serving.
func (s Server) Config() (*tls.Config, error) {
	if !s.Enabled() {
		return nil, nil
	}
	if err := s.Check(); err != nil {
		return nil, err
	}
	kp, err := newKeyPair(s.CertFile, s.KeyFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return kp.get() },
		// h2 first: gRPC requires it by ALPN; HTTP servers speak both.
		NextProtos: []string{"h2", "http/1.1"},
	}
	if s.ClientCAFile != "" {
		pool, err := LoadPool(s.ClientCAFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// Listen opens a TCP listener on addr that serves TLS when s is enabled.
// gRPC and HTTP servers take it as it is: the handshake happens below them.
func (s Server) Listen(addr string) (net.Listener, error) {
	cfg, err := s.Config()
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil || cfg == nil {
		return lis, err
	}
	return tls.NewListener(lis, cfg), nil
}

// Client names the files of a client's TLS set-up.
type Client struct {
	// CAFile is the CAs the server's certificate must chain to; empty
	// trusts the system roots.
	CAFile string
	// CertFile and KeyFile are the client certificate for mTLS; optional.
	CertFile, KeyFile string
}

// Enabled reports whether any file is configured.
func (c Client) Enabled() bool { return c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" }

// Check validates the files, like Server.Check.
func (c Client) Check() error {
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("cert and key must be set together")
	}
	if c.CertFile != "" {
		if _, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile); err != nil {
			return fmt.Errorf("cert %s / key %s: %w", c.CertFile, c.KeyFile, err)
		}
	}
	if c.CAFile != "" {
		if _, err := LoadPool(c.CAFile); err != nil {
			return err
		}
	}
	return nil
}

// Config returns the client tls.Config (system roots when CAFile is
// empty). The client certificate is re-read when its files change.
func (c Client) Config() (*tls.Config, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pool, err := LoadPool(c.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if c.CertFile != "" {
		kp, err := newKeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.get() }
	}
	return cfg, nil
}

// LoadPool reads a PEM file of CA certificates.
func LoadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("CA %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA %s: no PEM certificate in it", file)
	}
	return pool, nil
}

// keyPair is a certificate and key re-read when either file's size or
// modification time changes (a Kubernetes Secret update swaps both).
type keyPair struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]fileStamp
	checked time.Time
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// recheck bounds how often a busy server stats the files (a variable for
// the tests).
var recheck = time.Second

func newKeyPair(certFile, keyFile string) (*keyPair, error) {
	kp := &keyPair{certFile: certFile, keyFile: keyFile}
	if _, err := kp.get(); err != nil {
		return nil, err
	}
	return kp, nil
}

func (kp *keyPair) get() (*tls.Certificate, error) {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	now := time.Now()
	if kp.cert != nil && now.Sub(kp.checked) < recheck {
		return kp.cert, nil
	}
	kp.checked = now
	stamp := [2]fileStamp{stampOf(kp.certFile), stampOf(kp.keyFile)}
	if kp.cert != nil && stamp == kp.stamp {
		return kp.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(kp.certFile, kp.keyFile)
	if err != nil {
		if kp.cert != nil {
			// Half-written rotation: keep serving the last good pair,
			// try again on a later handshake.
			return kp.cert, nil
		}
		return nil, fmt.Errorf("cert %s / key %s: %w", kp.certFile, kp.keyFile, err)
	}
	kp.cert, kp.stamp = &cert, stamp
	return kp.cert, nil
}

func stampOf(file string) fileStamp {
	fi, err := os.Stat(file)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size()}
}
