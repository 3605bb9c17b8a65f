// Package email delivers notifications over SMTP as multipart/alternative
// messages (plain text and HTML).
//
// The client upgrades to TLS with STARTTLS whenever the server offers it and
// authenticates (AUTH PLAIN) when credentials are configured. Headers are
// built so a recipient name or subject cannot inject headers: CR/LF in any
// of them rejects the message, and names and subjects are MIME-encoded.
// The Message-ID is derived from the delivery's idempotency key, so a
// message sent twice by accident is recognisably the same message.
package email

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/feedloop/feedloop/services/notifier/internal/channel"
)

// ErrUnsafeHeader marks a name, address or subject that would break out of
// its header.
var ErrUnsafeHeader = errors.New("unsafe header value")

// Options configure a Client.
type Options struct {
	// Addr is the SMTP server, host:port.
	Addr string
	// From is the sender, e.g. "Acme Support <support@acme.example>".
	From string
	// Username and Password enable AUTH PLAIN when Username is set.
	Username string
	Password string
	// TLS is the base configuration for STARTTLS (default: system roots,
	// ServerName = the host of Addr).
	TLS *tls.Config
	// Timeout bounds one SMTP conversation (default 30s).
	Timeout time.Duration
	// LocalName is sent in EHLO (default "localhost").
	LocalName string
	// Now stamps the Date header (default time.Now).
	Now func() time.Time
	// TracerProvider receives the smtp send spans (default: the global one).
	TracerProvider trace.TracerProvider
}

// Client sends messages through one SMTP server.
type Client struct {
	o    Options
	host string
	from *mail.Address
}

// New validates o and returns a Client. It does not connect.
func New(o Options) (*Client, error) {
	host, _, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return nil, fmt.Errorf("email: address %q: must be host:port", o.Addr)
	}
	from, err := ParseFrom(o.From)
	if err != nil {
		return nil, err
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.LocalName == "" {
		o.LocalName = "localhost"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	tc := &tls.Config{}
	if o.TLS != nil {
		tc = o.TLS.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	o.TLS = tc
	return &Client{o: o, host: host, from: from}, nil
}

// ParseFrom parses a sender address like "Acme <support@acme.example>".
func ParseFrom(s string) (*mail.Address, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, fmt.Errorf("email: from %q: %w: line break", s, ErrUnsafeHeader)
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("email: from %q: %w", s, err)
	}
	return a, nil
}

// Send delivers m to m.To, in a client span of the caller's trace.
func (c *Client) Send(ctx context.Context, m channel.Message) (err error) {
	host, port, _ := net.SplitHostPort(c.o.Addr)
	p, _ := strconv.Atoi(port)
	tp := c.o.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	ctx, span := tp.Tracer("github.com/feedloop/feedloop/services/notifier/email").Start(ctx, "smtp send",
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			semconv.ServerAddress(host), semconv.ServerPort(p),
			semconv.NetworkProtocolName("smtp")))
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	msg, err := Build(c.from, m, c.o.Now())
	if err != nil {
		return err
	}
	if err := c.send(ctx, m.To, msg); err != nil {
		return classify(err)
	}
	return nil
}

func (c *Client) send(ctx context.Context, to string, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.o.Addr)
	if err != nil {
		return fmt.Errorf("email: dial %s: %w", c.o.Addr, err)
	}
	// The SMTP conversation blocks on the socket: bound it by ctx.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()

	sc, err := smtp.NewClient(conn, c.host)
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("email: greeting from %s: %w", c.o.Addr, err)
	}
	defer sc.Close()
	if err := sc.Hello(c.o.LocalName); err != nil {
		return fmt.Errorf("email: EHLO: %w", err)
	}
	if ok, _ := sc.Extension("STARTTLS"); ok {
		if err := sc.StartTLS(c.o.TLS); err != nil {
			return fmt.Errorf("email: STARTTLS: %w", err)
		}
	}
	if c.o.Username != "" {
		if ok, _ := sc.Extension("AUTH"); !ok {
			return fmt.Errorf("email: credentials configured but %s offers no AUTH", c.o.Addr)
		}
		if err := sc.Auth(smtp.PlainAuth("", c.o.Username, c.o.Password, c.host)); err != nil {
			return fmt.Errorf("email: AUTH: %w", err)
		}
	}
	if err := sc.Mail(c.from.Address); err != nil {
		return fmt.Errorf("email: MAIL FROM: %w", err)
	}
	if err := sc.Rcpt(to); err != nil {
		return fmt.Errorf("email: RCPT TO: %w", err)
	}
	w, err := sc.Data()
	if err != nil {
		return fmt.Errorf("email: DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("email: write message: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("email: end of message: %w", err)
	}
	if err := sc.Quit(); err != nil {
		// The server has accepted the message once DATA ended: a failed QUIT
		// must not cause a resend.
		return nil
	}
	return nil
}

// classify marks SMTP 5xx answers as rejections: a permanent failure.
func classify(err error) error {
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 {
		return fmt.Errorf("%w: %w", channel.ErrRejected, err)
	}
	return err
}

// Build renders the RFC 5322 message for m from from at date.
func Build(from *mail.Address, m channel.Message, date time.Time) ([]byte, error) {
	for _, f := range []struct{ what, v string }{
		{"recipient address", m.To}, {"recipient name", m.ToName}, {"subject", m.Subject}, {"idempotency key", m.Key},
	} {
		if strings.ContainsAny(f.v, "\r\n\x00") {
			return nil, fmt.Errorf("email: %w: %w: %s %q contains a line break", channel.ErrRejected, ErrUnsafeHeader, f.what, f.v)
		}
	}
	to, err := mail.ParseAddress(m.To)
	if err != nil || to.Address != m.To {
		return nil, fmt.Errorf("email: %w: recipient %q is not a bare email address", channel.ErrRejected, m.To)
	}
	to.Name = m.ToName

	var b bytes.Buffer
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("From", from.String())
	header("To", to.String())
	header("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	header("Date", date.UTC().Format(time.RFC1123Z))
	header("Message-ID", MessageID(m.Key, from.Address))
	header("MIME-Version", "1.0")
	// Auto-Submitted keeps out-of-office replies and loops away (RFC 3834).
	header("Auto-Submitted", "auto-generated")

	mw := multipart.NewWriter(&b)
	if m.Key != "" {
		sum := sha256.Sum256([]byte(m.Key))
		if err := mw.SetBoundary("feedloop-" + hex.EncodeToString(sum[:12])); err != nil {
			return nil, fmt.Errorf("email: boundary: %w", err)
		}
	}
	header("Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": mw.Boundary()}))
	b.WriteString("\r\n")
	for _, p := range []struct{ typ, body string }{{"text/plain", m.Text}, {"text/html", m.HTML}} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {p.typ + "; charset=utf-8"},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, fmt.Errorf("email: part: %w", err)
		}
		qp := quotedprintable.NewWriter(pw)
		if _, err := qp.Write([]byte(p.body)); err != nil {
			return nil, fmt.Errorf("email: encode part: %w", err)
		}
		if err := qp.Close(); err != nil {
			return nil, fmt.Errorf("email: encode part: %w", err)
		}
	}
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("email: close multipart: %w", err)
	}
	return b.Bytes(), nil
}

// MessageID is the Message-ID for idempotency key key from sender address
// from: <key@domain-of-from>.
func MessageID(key, from string) string {
	domain := "feedloop.invalid"
	if i := strings.LastIndexByte(from, '@'); i >= 0 && i < len(from)-1 {
		domain = from[i+1:]
	}
	if key == "" {
		key = "no-key"
	}
	return "<" + key + "@" + domain + ">"
}

var _ channel.Sender = (*Client)(nil)
