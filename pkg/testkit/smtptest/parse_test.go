package smtptest_test

import (
	"strings"
	"testing"

	"github.com/feedloop/feedloop/pkg/testkit/smtptest"
)

func TestSubjectAndText(t *testing.T) {
	raw := "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\n" +
		"MIME-Version: 1.0\n" +
		"Content-Type: multipart/alternative; boundary=XX\n\n" +
		"--XX\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n" +
		"Hallo Ada, sch=C3=B6n=\n dass du da bist.\n" +
		"--XX\nContent-Type: text/html; charset=utf-8\n\n<p>Hallo</p>\n--XX--\n"
	m := smtptest.Message{Data: []byte(raw)}
	if s := m.Subject(); s != "Grüße" {
		t.Errorf("subject = %q", s)
	}
	if txt := m.Text(); !strings.Contains(txt, "Hallo Ada, schön dass du da bist.") || strings.Contains(txt, "<p>") {
		t.Errorf("text = %q", txt)
	}
	plain := smtptest.Message{Data: []byte("Subject: hi\n\nplain body\n")}
	if plain.Subject() != "hi" || plain.Text() != "plain body\n" {
		t.Errorf("plain = %q %q", plain.Subject(), plain.Text())
	}
}
