package email_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/feedloop/feedloop/pkg/testkit/smtptest"
	"github.com/feedloop/feedloop/services/notifier/internal/channel"
	"github.com/feedloop/feedloop/services/notifier/internal/channel/email"
	"github.com/feedloop/feedloop/services/notifier/internal/steps"
)

var date = time.Date(2025, 3, 14, 10, 0, 0, 0, time.UTC)

func newClient(t *testing.T, o email.Options) *email.Client {
	t.Helper()
	if o.From == "" {
		o.From = "Acme Support <support@acme.example>"
	}
	o.Now = func() time.Time { return date }
	c, err := email.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func message() channel.Message {
	return channel.Message{
		Key:     "0b8e7f0e-1d2c-5b3a-8f00-5a1e2d3c4b5a",
		To:      "ada@example.com",
		ToName:  "Ada Lovelace",
		Subject: "Wir haben Ihr Feedback erhalten: Doppelt belastet",
		Text:    "Guten Tag Ada,\n\nvielen Dank. Zeile mit Umlauten: äöü.\n.a line starting with a dot\n",
		HTML:    "<p>Guten Tag <b>Ada</b>, äöü</p>",
		Data:    steps.Sample("received"),
	}
}

// parsed is a received message taken apart.
type parsed struct {
	header mail.Header
	from   *mail.Address
	to     *mail.Address
	subj   string
	parts  map[string]string // media type → decoded body
}

func parse(t *testing.T, data []byte) parsed {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("received message does not parse: %v\n%s", err, data)
	}
	p := parsed{header: m.Header, parts: map[string]string{}}
	if p.from, err = mail.ParseAddress(m.Header.Get("From")); err != nil {
		t.Fatalf("From: %v", err)
	}
	if p.to, err = mail.ParseAddress(m.Header.Get("To")); err != nil {
		t.Fatalf("To: %v", err)
	}
	var dec mime.WordDecoder
	if p.subj, err = dec.DecodeHeader(m.Header.Get("Subject")); err != nil {
		t.Fatalf("Subject: %v", err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type = %q (%v), want multipart/alternative", m.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		part, err := mr.NextPart() // decodes quoted-printable
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("part: %v", err)
		}
		pt, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		b, err := io.ReadAll(part)
		if err != nil {
			t.Fatal(err)
		}
		p.parts[pt] = strings.ReplaceAll(string(b), "\r\n", "\n")
	}
	return p
}

func TestSendDeliversMultipartMessage(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	msg := message()
	if err := newClient(t, email.Options{Addr: srv.Addr}).Send(context.Background(), msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := srv.Messages()
	if len(got) != 1 {
		t.Fatalf("server got %d messages, want 1", len(got))
	}
	if got[0].From != "support@acme.example" || len(got[0].To) != 1 || got[0].To[0] != "ada@example.com" {
		t.Errorf("envelope = %s → %v", got[0].From, got[0].To)
	}
	p := parse(t, got[0].Data)
	if p.from.Address != "support@acme.example" || p.from.Name != "Acme Support" {
		t.Errorf("From = %v", p.from)
	}
	if p.to.Address != "ada@example.com" || p.to.Name != "Ada Lovelace" {
		t.Errorf("To = %v", p.to)
	}
	if p.subj != msg.Subject {
		t.Errorf("Subject = %q, want %q", p.subj, msg.Subject)
	}
	if p.parts["text/plain"] != msg.Text {
		t.Errorf("text part = %q, want %q", p.parts["text/plain"], msg.Text)
	}
	if p.parts["text/html"] != msg.HTML {
		t.Errorf("html part = %q, want %q", p.parts["text/html"], msg.HTML)
	}
	if got, want := p.header.Get("Message-ID"), "<"+msg.Key+"@acme.example>"; got != want {
		t.Errorf("Message-ID = %q, want %q", got, want)
	}
	if d, err := p.header.Date(); err != nil || !d.Equal(date) {
		t.Errorf("Date = %v (%v), want %v", d, err, date)
	}
	if p.header.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("Auto-Submitted = %q", p.header.Get("Auto-Submitted"))
	}
}

func TestSendUpgradesWithSTARTTLSAndAuthenticates(t *testing.T) {
	serverTLS, clientTLS := smtptest.TLSConfigs(t)
	srv := smtptest.Start(t, smtptest.Options{TLS: serverTLS, Auth: true})
	c := newClient(t, email.Options{Addr: srv.Addr, TLS: clientTLS, Username: "notifier", Password: "s3cret"})
	if err := c.Send(context.Background(), message()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := srv.Messages()
	if len(got) != 1 {
		t.Fatalf("server got %d messages, want 1", len(got))
	}
	if !got[0].TLS {
		t.Error("message was sent without STARTTLS although the server offered it")
	}
	if got[0].AuthUser != "notifier" || got[0].AuthPass != "s3cret" {
		t.Errorf("AUTH = %q/%q", got[0].AuthUser, got[0].AuthPass)
	}
}

func TestSendRejectsUntrustedCertificate(t *testing.T) {
	serverTLS, _ := smtptest.TLSConfigs(t)
	srv := smtptest.Start(t, smtptest.Options{TLS: serverTLS})
	err := newClient(t, email.Options{Addr: srv.Addr}).Send(context.Background(), message())
	if err == nil {
		t.Fatal("Send succeeded over STARTTLS with an untrusted certificate")
	}
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("server got %d messages", n)
	}
}

func TestHeaderInjectionIsRejected(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	c := newClient(t, email.Options{Addr: srv.Addr})
	cases := map[string]func(*channel.Message){
		"name with CRLF":    func(m *channel.Message) { m.ToName = "Ada\r\nBcc: victim@example.com" },
		"name with LF":      func(m *channel.Message) { m.ToName = "Ada\nBcc: victim@example.com" },
		"subject with CRLF": func(m *channel.Message) { m.Subject = "Hi\r\nBcc: victim@example.com" },
		"address with CRLF": func(m *channel.Message) { m.To = "ada@example.com\r\nBcc: victim@example.com" },
		"address with name": func(m *channel.Message) { m.To = "Eve <eve@example.com>" },
		"two addresses":     func(m *channel.Message) { m.To = "ada@example.com, victim@example.com" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			m := message()
			mutate(&m)
			err := c.Send(context.Background(), m)
			if !errors.Is(err, channel.ErrRejected) {
				t.Fatalf("Send error = %v, want ErrRejected", err)
			}
		})
	}
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("server got %d messages, want none", n)
	}
}

func TestNamesAndSubjectsAreEncoded(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	m := message()
	m.ToName = `Zoë "Z" O'Brien, Esq.`
	m.Subject = "Ça marche? =?utf-8?q?not-an-encoded-word?= Bcc: x@example.com"
	if err := newClient(t, email.Options{Addr: srv.Addr}).Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got := srv.Messages()
	if len(got) != 1 {
		t.Fatalf("got %d messages", len(got))
	}
	p := parse(t, got[0].Data)
	if p.to.Name != m.ToName || p.to.Address != m.To {
		t.Errorf("To = %q <%s>, want %q <%s>", p.to.Name, p.to.Address, m.ToName, m.To)
	}
	if p.subj != m.Subject {
		t.Errorf("Subject = %q, want %q", p.subj, m.Subject)
	}
	if len(p.header["Bcc"]) != 0 {
		t.Errorf("a Bcc header appeared: %v", p.header["Bcc"])
	}
}

func TestRecipientRefusal(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{RcptCode: func(addr string) int {
		if strings.HasPrefix(addr, "gone") {
			return 550
		}
		return 451
	}})
	c := newClient(t, email.Options{Addr: srv.Addr})

	m := message()
	m.To = "gone@example.com"
	if err := c.Send(context.Background(), m); !errors.Is(err, channel.ErrRejected) {
		t.Errorf("550: error = %v, want ErrRejected", err)
	}
	m.To = "busy@example.com"
	if err := c.Send(context.Background(), m); err == nil || errors.Is(err, channel.ErrRejected) {
		t.Errorf("451: error = %v, want a transient error", err)
	}
}

func TestUnreachableServerIsTransient(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	addr := srv.Addr
	srv.Close()
	err := newClient(t, email.Options{Addr: addr, Timeout: 2 * time.Second}).Send(context.Background(), message())
	if err == nil || errors.Is(err, channel.ErrRejected) {
		t.Fatalf("error = %v, want a transient error", err)
	}
}

func TestNewValidatesFrom(t *testing.T) {
	for _, from := range []string{"", "not an address", "Acme <a@b.example>\r\nBcc: x@y.example"} {
		if _, err := email.New(email.Options{Addr: "127.0.0.1:25", From: from}); err == nil {
			t.Errorf("New accepted From %q", from)
		}
	}
	if _, err := email.New(email.Options{Addr: "nohostport", From: "a@b.example"}); err == nil {
		t.Error("New accepted an address without port")
	}
}
