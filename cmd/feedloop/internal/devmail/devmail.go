// Package devmail is the dev mailbox: a real SMTP server on loopback that
// accepts every message, keeps the latest ones in memory, parsed into what
// a mail client shows (subject, sender, recipients, text and HTML bodies),
// so `feedloop dev` can show everything customers and teams were sent
// without a mail provider.
//
// It is a development sink, never a relay: it accepts any sender and any
// recipient without TLS or authentication, which is why it listens on
// loopback only.
package devmail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/feedloop/feedloop/pkg/mailparse"
)

// Defaults for Options left zero.
const (
	DefaultLimit = 1000
	// MaxMessageBytes bounds one message; the notifier's are a few KiB.
	MaxMessageBytes = 10 << 20
	// DefaultDomain is the name the server greets with.
	DefaultDomain = "mailbox.feedloop.test"
)

// Message is one received message, as a mail client would show it.
type Message struct {
	// ID is unique within the server's life: "1", "2"… in arrival order.
	ID string
	// At is when the message was received.
	At time.Time
	// From is the From header, decoded ("Acme Support <support@acme.example>").
	From string
	// To are the envelope recipients: who the message was delivered to.
	To []string
	// Subject is the decoded Subject header.
	Subject string
	// Text and HTML are the plain-text and HTML bodies, transfer-decoded
	// and converted to UTF-8; either may be empty.
	Text, HTML string
}

// Options configure a Server.
type Options struct {
	// Addr is the listen address; it must be on loopback ("127.0.0.1:0"
	// picks a free port).
	Addr string
	// Limit is how many messages are kept, the oldest dropped first
	// (default DefaultLimit).
	Limit int
	// Log receives messages that could not be parsed and connection errors
	// (default slog.Default()).
	Log *slog.Logger
}

// Server is a listening dev mailbox.
type Server struct {
	srv   *smtp.Server
	ln    net.Listener
	limit int
	log   *slog.Logger

	mu   sync.Mutex
	seq  int
	msgs []Message // oldest first, at most limit
}

// Listen binds o.Addr, so the address is known (and taken) before Run.
func Listen(o Options) (*Server, error) {
	host, _, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return nil, fmt.Errorf("devmail: address %q: %w", o.Addr, err)
	}
	// An open relay off loopback would take anyone's mail: refuse it.
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("devmail: address %q: must be on loopback (127.0.0.1, ::1 or localhost)", o.Addr)
	}
	if o.Limit <= 0 {
		o.Limit = DefaultLimit
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("devmail: %w", err)
	}
	s := &Server{ln: ln, limit: o.Limit, log: o.Log}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{s: s}, nil }))
	s.srv.Domain = DefaultDomain
	s.srv.MaxMessageBytes = MaxMessageBytes
	s.srv.MaxRecipients = 100
	s.srv.ReadTimeout = time.Minute
	s.srv.WriteTimeout = time.Minute
	s.srv.ErrorLog = log.New(logWriter{o.Log}, "", 0)
	return s, nil
}

// Addr is the address the server listens on, port chosen.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx is cancelled, then closes the listener and every
// connection. It returns nil after a cancellation.
func (s *Server) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = s.srv.Close() })
	defer stop()
	if err := s.srv.Serve(s.ln); err != nil {
		return fmt.Errorf("devmail: %w", err)
	}
	return nil
}

// Close stops a server that is not running (Run closes it otherwise).
func (s *Server) Close() error {
	if err := s.srv.Close(); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
		return fmt.Errorf("devmail: %w", err)
	}
	return nil
}

// Messages returns the kept messages, newest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.msgs))
	for i, m := range s.msgs {
		m.To = append([]string(nil), m.To...)
		out[len(s.msgs)-1-i] = m
	}
	return out
}

// Message returns the kept message with id id.
func (s *Server) Message(id string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.msgs {
		if m.ID == id {
			m.To = append([]string(nil), m.To...)
			return m, true
		}
	}
	return Message{}, false
}

func (s *Server) add(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	m.ID = strconv.Itoa(s.seq)
	if len(s.msgs) == s.limit {
		// Shift rather than reslice, so the dropped messages are freed.
		copy(s.msgs, s.msgs[1:])
		s.msgs = s.msgs[:len(s.msgs)-1]
	}
	s.msgs = append(s.msgs, m)
}

// session is one SMTP conversation; it accepts any sender and recipient.
type session struct {
	s    *Server
	from string
	to   []string
}

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("devmail: read message: %w", err)
	}
	var m Message
	if c, err := mailparse.Parse(raw); err == nil {
		m = Message{From: c.From, Subject: c.Subject, Text: c.Text, HTML: c.HTML}
	} else {
		// Kept anyway, raw, so a malformed message is seen rather than lost.
		ss.s.log.Warn("devmail: message does not parse; kept as raw text", "from", ss.from, "err", err)
		m = Message{From: ss.from, Subject: "(unparseable message: " + err.Error() + ")", Text: string(raw)}
	}
	if m.From == "" {
		m.From = ss.from
	}
	m.To = append([]string(nil), ss.to...)
	m.At = time.Now()
	ss.s.add(m)
	return nil
}

// logWriter sends go-smtp's log lines (connection errors) to slog.
type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Warn("devmail: " + string(bytes.TrimSpace(p)))
	return len(p), nil
}
