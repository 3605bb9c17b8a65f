package cli

import (
	"fmt"
	"net"
	"strings"

	"github.com/spf13/pflag"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/feedloop/feedloop/pkg/tlsfiles"
)

// tlsFlags choose how a command's gRPC connection is secured.
type tlsFlags struct {
	tls                       bool
	caFile, certFile, keyFile string
	insecure                  bool
}

func (t *tlsFlags) register(f *pflag.FlagSet) {
	f.BoolVar(&t.tls, "tls", false, "connect with TLS, trusting the system's CAs (implied by --ca-file and --cert-file)")
	f.StringVar(&t.caFile, "ca-file", "", "connect with TLS, trusting the CAs in this PEM file")
	f.StringVar(&t.certFile, "cert-file", "", "client certificate (PEM) for a server that requires one (mTLS); with --key-file")
	f.StringVar(&t.keyFile, "key-file", "", "key of --cert-file (PEM)")
	f.BoolVar(&t.insecure, "insecure", false, "send the credentials in clear text to a server that is not on this machine")
}

func (t *tlsFlags) enabled() bool {
	return t.tls || t.caFile != "" || t.certFile != "" || t.keyFile != ""
}

// creds returns the transport credentials for server. A command whose
// calls carry a secret (what) refuses plain text to a server off this
// machine unless --insecure says so: the secret would cross the network
// readable by anyone on the path.
func (t *tlsFlags) creds(server, what string) (credentials.TransportCredentials, error) {
	if !t.enabled() {
		if what != "" && !t.insecure && !isLoopback(server) {
			return nil, &exitError{2, fmt.Errorf("--server %s is not on this machine and the connection is not encrypted: the %s would travel in clear text; use --tls or --ca-file (or --insecure to send it anyway)", server, what)}
		}
		return insecure.NewCredentials(), nil
	}
	cfg, err := tlsfiles.Client{CAFile: t.caFile, CertFile: t.certFile, KeyFile: t.keyFile}.Config()
	if err != nil {
		return nil, &exitError{2, fmt.Errorf("--ca-file, --cert-file, --key-file: %w", err)}
	}
	return credentials.NewTLS(cfg), nil
}

// isLoopback reports whether a gRPC target is on this machine: localhost,
// a loopback address, no host or a unix socket.
func isLoopback(target string) bool {
	if strings.HasPrefix(target, "unix:") {
		return true
	}
	target = strings.TrimPrefix(target, "dns:///")
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		host = target
	}
	if host == "" || host == "localhost" { // ":7003" dials this machine
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
