// Package natsembed runs a real nats-server with JetStream inside the
// process: `feedloop dev` uses it so a newcomer needs no set-up, and tests
// use it through testkit.
package natsembed

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configure the embedded server.
type Options struct {
	// Host to listen on (default 127.0.0.1).
	Host string
	// Port to listen on; 0 or -1 picks a free port.
	Port int
	// StoreDir is where JetStream keeps its files.
	StoreDir string
	// ServerName names the server (default "feedloop").
	ServerName string
	// Users, when given, are the only clients allowed in, each with its
	// NKey and permissions (natsauth.Users.NkeyUsers); none: no
	// authentication.
	Users []*server.NkeyUser
	// TLS, when set, makes clients connect over TLS; with TLSVerify they
	// must present a certificate signed by TLS.ClientCAs.
	TLS       *tls.Config
	TLSVerify bool
}

// Start starts the server and waits until it accepts connections.
func Start(o Options) (*server.Server, error) {
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Port == 0 {
		o.Port = -1
	}
	if o.ServerName == "" {
		o.ServerName = "feedloop"
	}
	opts := &server.Options{
		ServerName: o.ServerName,
		Host:       o.Host,
		Port:       o.Port,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		NoSigs:     true,
		NoLog:      true,
		Nkeys:      o.Users,
	}
	if o.TLS != nil {
		opts.TLS, opts.TLSConfig, opts.TLSVerify = true, o.TLS, o.TLSVerify
		opts.TLSTimeout = 2 // seconds
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("natsembed: server not ready after 10s")
	}
	return ns, nil
}
