package mailparse_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/feedloop/feedloop/pkg/mailparse"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		name string
		raw  string
		want mailparse.Content
	}{
		{
			name: "alternative, quoted-printable, encoded subject",
			raw: "From: Acme <support@acme.example>\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\nMIME-Version: 1.0\n" +
				"Content-Type: multipart/alternative; boundary=XX\n\n" +
				"--XX\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n" +
				"Hallo Ada, sch=C3=B6n=\n dass du da bist.\n" +
				"--XX\nContent-Type: text/html; charset=utf-8\n\n<p>Hallo</p>\n--XX--\n",
			want: mailparse.Content{From: "Acme <support@acme.example>", Subject: "Grüße", Text: "Hallo Ada, schön dass du da bist.", HTML: "<p>Hallo</p>"},
		},
		{
			name: "mixed, base64 latin-1 html, attachment skipped",
			raw: "From: =?iso-8859-1?q?Ren=E9?= <a@example.com>\nSubject: mixed\nContent-Type: multipart/mixed; boundary=outer\n\n" +
				"--outer\nContent-Type: text/html; charset=iso-8859-1\nContent-Transfer-Encoding: base64\n\nPHA+Q2Fm6SBzdXLyPC9w\nPg==\n" +
				"--outer\nContent-Type: text/plain\nContent-Disposition: attachment; filename=notes.txt\n\nnot a body\n--outer--\n",
			want: mailparse.Content{From: "René <a@example.com>", Subject: "mixed", HTML: "<p>Café surò</p>"},
		},
		{
			name: "no content type is plain text",
			raw:  "Subject: hi\n\nplain body\n",
			want: mailparse.Content{Subject: "hi", Text: "plain body"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := mailparse.Parse([]byte(c.raw))
			if err != nil {
				t.Fatal(err)
			}
			got.Text, got.HTML = strings.TrimSpace(got.Text), strings.TrimSpace(got.HTML)
			if got != c.want {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

// Nesting is bounded, so a hostile message cannot recurse without end.
func TestParseRefusesDeepNesting(t *testing.T) {
	raw := "Content-Type: multipart/mixed; boundary=b0\n\n"
	for i := 1; i <= 12; i++ {
		raw += "--b" + strconv.Itoa(i-1) + "\nContent-Type: multipart/mixed; boundary=b" + strconv.Itoa(i) + "\n\n"
	}
	if _, err := mailparse.Parse([]byte(raw)); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Fatalf("err = %v, want a nesting error", err)
	}
}
