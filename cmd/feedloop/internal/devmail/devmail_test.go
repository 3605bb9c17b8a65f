package devmail_test

import (
	"context"
	"fmt"
	"net/smtp"
	"strings"
	"testing"

	"github.com/feedloop/feedloop/cmd/feedloop/internal/devmail"
)

// start runs a mailbox on a free loopback port until the test ends.
func start(t *testing.T, limit int) *devmail.Server {
	t.Helper()
	s, err := devmail.Listen(devmail.Options{Addr: "127.0.0.1:0", Limit: limit})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run after cancel: %v", err)
		}
	})
	return s
}

func send(t *testing.T, addr, from string, to []string, msg string) {
	t.Helper()
	// net/smtp is the client the notifier's email channel uses.
	if err := smtp.SendMail(addr, nil, from, to, []byte(strings.ReplaceAll(msg, "\n", "\r\n"))); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// A message as the notifier builds it (multipart/alternative, both parts
// quoted-printable, a Q-encoded subject) arrives parsed as a mail client
// shows it.
func TestNotifierStyleMessage(t *testing.T) {
	s := start(t, 0)
	send(t, s.Addr(), "support@acme.example", []string{"ada@example.com"}, `From: Acme Support <support@acme.example>
To: Ada <ada@example.com>
Subject: =?utf-8?q?We_have_a_plan:_Gr=C3=BC=C3=9Fe?=
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="feedloop-x"

--feedloop-x
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Hello Ada, we plan to fix it by 2031-05-01. A long line that is soft-wrap=
ped by quoted-printable: =C3=BC.
Status: http://127.0.0.1:7004/status/tok
--feedloop-x
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

<p>Hello Ada, <a href=3D"http://127.0.0.1:7004/status/tok">status</a></p>
--feedloop-x--
`)
	msgs := s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.Subject != "We have a plan: Grüße" {
		t.Errorf("subject %q", m.Subject)
	}
	if m.From != "Acme Support <support@acme.example>" {
		t.Errorf("from %q", m.From)
	}
	if len(m.To) != 1 || m.To[0] != "ada@example.com" {
		t.Errorf("to %q", m.To)
	}
	if !strings.Contains(m.Text, "soft-wrapped by quoted-printable: ü.") || !strings.Contains(m.Text, "http://127.0.0.1:7004/status/tok") {
		t.Errorf("text %q", m.Text)
	}
	if m.HTML != "<p>Hello Ada, <a href=\"http://127.0.0.1:7004/status/tok\">status</a></p>" {
		t.Errorf("html %q", m.HTML)
	}
	if m.ID == "" || m.At.IsZero() {
		t.Errorf("id %q at %v", m.ID, m.At)
	}
	if got, ok := s.Message(m.ID); !ok || got.Subject != m.Subject {
		t.Errorf("Message(%q) = %v, %v", m.ID, got, ok)
	}
}

// Other shapes mail clients meet: a base64 HTML body in ISO-8859-1 inside
// multipart/mixed with an attachment (skipped), and a bare text body.
func TestOtherShapes(t *testing.T) {
	s := start(t, 0)
	send(t, s.Addr(), "a@example.com", []string{"b@example.com", "c@example.com"}, `From: =?iso-8859-1?q?Ren=E9?= <a@example.com>
Subject: mixed
Content-Type: multipart/mixed; boundary=outer

--outer
Content-Type: text/html; charset=iso-8859-1
Content-Transfer-Encoding: base64

PHA+Q2Fm6SBzdXLyPC9w
Pg==
--outer
Content-Type: text/plain
Content-Disposition: attachment; filename=notes.txt

not a body
--outer--
`)
	send(t, s.Addr(), "a@example.com", []string{"b@example.com"}, "Subject: plain\n\njust text\n")

	msgs := s.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want 2", len(msgs))
	}
	plain, mixed := msgs[0], msgs[1] // newest first
	if mixed.From != "René <a@example.com>" || mixed.HTML != "<p>Café surò</p>" || mixed.Text != "" {
		t.Errorf("mixed: from %q html %q text %q", mixed.From, mixed.HTML, mixed.Text)
	}
	if len(mixed.To) != 2 {
		t.Errorf("mixed to %q", mixed.To)
	}
	if plain.Subject != "plain" || plain.Text != "just text\r\n" && plain.Text != "just text\n" || plain.From != "a@example.com" {
		t.Errorf("plain: subject %q text %q from %q", plain.Subject, plain.Text, plain.From)
	}
}

// The mailbox keeps only the latest Limit messages, newest first.
func TestKeepsTheLatest(t *testing.T) {
	s := start(t, 3)
	for i := 1; i <= 5; i++ {
		send(t, s.Addr(), "a@example.com", []string{"b@example.com"}, fmt.Sprintf("Subject: m%d\n\nbody\n", i))
	}
	var got []string
	for _, m := range s.Messages() {
		got = append(got, m.Subject+"#"+m.ID)
	}
	if strings.Join(got, " ") != "m5#5 m4#4 m3#3" {
		t.Errorf("kept %q, want m5 m4 m3", got)
	}
	if _, ok := s.Message("1"); ok {
		t.Error("message 1 is still there after being dropped")
	}
}

// An open sink must never listen beyond this machine.
func TestLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:25"} {
		if _, err := devmail.Listen(devmail.Options{Addr: addr}); err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("Listen(%q) = %v, want a loopback error", addr, err)
		}
	}
}
