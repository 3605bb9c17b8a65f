// Package smtptest runs a small but real SMTP server on 127.0.0.1 for
// tests: EHLO/HELO, STARTTLS (optional), AUTH PLAIN (optional), MAIL, RCPT,
// DATA, RSET, NOOP, QUIT. It records every accepted message.
package smtptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

// Message is one message the server accepted.
type Message struct {
	From string
	To   []string
	// Data is the message as received, with dot-stuffing undone and CRLF
	// line ends turned into LF.
	Data []byte
	// TLS tells whether the conversation had been upgraded by STARTTLS.
	TLS bool
	// AuthUser and AuthPass are the AUTH PLAIN credentials, if any.
	AuthUser string
	AuthPass string
}

// Options configure a Server.
type Options struct {
	// TLS, when set, makes the server offer STARTTLS with this config.
	TLS *tls.Config
	// Auth makes the server offer AUTH PLAIN and accept any credentials,
	// or those CheckAuth accepts when set (others get 535).
	Auth      bool
	CheckAuth func(user, pass string) bool
	// RcptCode, when set, may refuse a recipient with an SMTP code (e.g.
	// 550 or 451) by returning a non-zero code.
	RcptCode func(addr string) int
}

// Server is a running test SMTP server.
type Server struct {
	// Addr is host:port of the listener.
	Addr string

	o     Options
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	msgs  []Message
	conns map[net.Conn]bool
}

// Start starts a server on a free port of 127.0.0.1, stopped at cleanup.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: listen: %v", err)
	}
	s := &Server{Addr: ln.Addr().String(), o: o, ln: ln, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.Close)
	return s
}

// Close stops the server and waits for its connections to end.
func (s *Server) Close() {
	_ = s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// Messages returns a copy of the messages accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// To returns the messages accepted for recipient addr.
func (s *Server) To(addr string) []Message {
	var out []Message
	for _, m := range s.Messages() {
		for _, r := range m.To {
			if strings.EqualFold(r, addr) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.session(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

type session struct {
	conn net.Conn
	tp   *textproto.Conn
	tls  bool
	user string
	pass string
	from string
	to   []string
	seen bool // MAIL given
}

func (s *Server) session(c net.Conn) {
	ss := &session{conn: c, tp: textproto.NewConn(c)}
	defer func() { _ = ss.conn.Close() }()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	reply := func(format string, args ...any) bool { return ss.tp.PrintfLine(format, args...) == nil }
	if !reply("220 smtptest ESMTP ready") {
		return
	}
	for {
		line, err := ss.tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			ext := []string{"smtptest", "8BITMIME", "PIPELINING"}
			if s.o.TLS != nil && !ss.tls {
				ext = append(ext, "STARTTLS")
			}
			if s.o.Auth {
				ext = append(ext, "AUTH PLAIN")
			}
			for i, e := range ext {
				sep := "-"
				if i == len(ext)-1 {
					sep = " "
				}
				if !reply("250%s%s", sep, e) {
					return
				}
			}
		case "HELO":
			reply("250 smtptest")
		case "STARTTLS":
			if s.o.TLS == nil || ss.tls {
				reply("502 5.5.1 STARTTLS not available")
				continue
			}
			if !reply("220 2.0.0 ready to start TLS") {
				return
			}
			tc := tls.Server(ss.conn, s.o.TLS)
			if err := tc.Handshake(); err != nil {
				return
			}
			ss.conn, ss.tp, ss.tls = tc, textproto.NewConn(tc), true
			ss.from, ss.to, ss.seen = "", nil, false
		case "AUTH":
			if !s.o.Auth {
				reply("502 5.5.1 AUTH not available")
				continue
			}
			mech, resp, _ := strings.Cut(arg, " ")
			if !strings.EqualFold(mech, "PLAIN") {
				reply("504 5.5.4 unrecognised mechanism")
				continue
			}
			if resp == "" {
				if !reply("334 ") {
					return
				}
				if resp, err = ss.tp.ReadLine(); err != nil {
					return
				}
			}
			raw, err := base64.StdEncoding.DecodeString(resp)
			parts := strings.Split(string(raw), "\x00")
			if err != nil || len(parts) != 3 {
				reply("501 5.5.2 malformed AUTH PLAIN")
				continue
			}
			if s.o.CheckAuth != nil && !s.o.CheckAuth(parts[1], parts[2]) {
				reply("535 5.7.8 authentication credentials invalid")
				continue
			}
			ss.user, ss.pass = parts[1], parts[2]
			reply("235 2.7.0 authenticated")
		case "MAIL":
			addr, ok := path(arg, "FROM:")
			if !ok {
				reply("501 5.5.4 syntax: MAIL FROM:<address>")
				continue
			}
			ss.from, ss.to, ss.seen = addr, nil, true
			reply("250 2.1.0 ok")
		case "RCPT":
			addr, ok := path(arg, "TO:")
			if !ok || !ss.seen {
				reply("503 5.5.1 need MAIL before RCPT")
				continue
			}
			if s.o.RcptCode != nil {
				if code := s.o.RcptCode(addr); code != 0 {
					reply("%d recipient refused by test", code)
					continue
				}
			}
			ss.to = append(ss.to, addr)
			reply("250 2.1.5 ok")
		case "DATA":
			if len(ss.to) == 0 {
				reply("503 5.5.1 need RCPT before DATA")
				continue
			}
			if !reply("354 end data with <CR><LF>.<CR><LF>") {
				return
			}
			data, err := ss.tp.ReadDotBytes()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, Message{From: ss.from, To: ss.to, Data: data, TLS: ss.tls, AuthUser: ss.user, AuthPass: ss.pass})
			s.mu.Unlock()
			ss.from, ss.to, ss.seen = "", nil, false
			reply("250 2.0.0 queued")
		case "RSET":
			ss.from, ss.to, ss.seen = "", nil, false
			reply("250 2.0.0 ok")
		case "NOOP":
			reply("250 2.0.0 ok")
		case "QUIT":
			reply("221 2.0.0 bye")
			return
		default:
			reply("502 5.5.2 command not recognised")
		}
	}
}

// path reads "FROM:<a@b> PARAMS" after prefix and returns a@b.
func path(arg, prefix string) (string, bool) {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return "", false
	}
	rest := strings.TrimSpace(arg[len(prefix):])
	if !strings.HasPrefix(rest, "<") {
		return "", false
	}
	end := strings.IndexByte(rest, '>')
	if end < 0 {
		return "", false
	}
	return rest[1:end], true
}

// TLSConfigs returns a server config with a fresh self-signed certificate
// for 127.0.0.1 and localhost, and a client config that trusts it.
func TLSConfigs(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("smtptest: key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "smtptest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("smtptest: certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("smtptest: parse certificate: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
	client = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return server, client
}
