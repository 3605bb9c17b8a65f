package validate_test

import (
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/intake/validate"
)

// fields are every path a violation may name (attributes values by key).
var fields = map[string]bool{
	"feedback.source": true, "feedback.external_id": true, "feedback.channel": true,
	"feedback.customer.id": true, "feedback.customer.name": true, "feedback.customer.email": true,
	"feedback.customer.locale": true, "feedback.subject": true, "feedback.text": true,
	"feedback.nps": true, "feedback.csat": true, "feedback.ces": true, "feedback.product": true,
	"feedback.area": true, "feedback.attributes": true, "feedback.occurred_at": true, "feedback.in_reply_to": true,
}

// FuzzValidate: validation never panics, is deterministic, names a known
// field with a description in every violation, and what it accepts keeps
// the promises the notifier relies on (one-line names and addresses).
// Seeds: testdata/fuzz/FuzzValidate.
func FuzzValidate(f *testing.F) {
	f.Add("helpdesk", "T-1", "text", "subject", "Ada", "ada@example.com", "de-CH", "plan", "pro", int32(1), int32(9), int32(3), int32(4), int64(1_700_000_000), int32(0), "")
	f.Add("", "../x", "\x1b[31m", "a\nb", "Ada\r\nBcc: x", "a@b.c\n", "!!", "", "v", int32(99), int32(-1), int32(0), int32(8), int64(-1), int32(-1), "nope")
	f.Fuzz(func(t *testing.T, source, ext, text, subject, name, email, locale, attrKey, attrVal string,
		channel, nps, csat, ces int32, secs int64, nanos int32, inReplyTo string) {
		fb := &feedloopv1.Feedback{
			Source: source, ExternalId: ext, Channel: feedloopv1.Channel(channel), Text: text, Subject: subject,
			Customer: &feedloopv1.Customer{Name: name, Email: email, Locale: locale},
			Nps:      proto.Int32(nps), Csat: proto.Int32(csat), Ces: proto.Int32(ces),
			Attributes: map[string]string{attrKey: attrVal},
			OccurredAt: &timestamppb.Timestamp{Seconds: secs, Nanos: nanos},
			InReplyTo:  inReplyTo,
		}
		vs := validate.Feedback(fb, now)
		if again := validate.Feedback(fb, now); !reflect.DeepEqual(vs, again) {
			t.Fatalf("not deterministic: %v then %v", vs, again)
		}
		bad := map[string]bool{}
		for _, v := range vs {
			if !fields[v.Field] && !strings.HasPrefix(v.Field, "feedback.attributes[") {
				t.Fatalf("violation names unknown field %q: %v", v.Field, v)
			}
			if v.Description == "" {
				t.Fatalf("violation on %s has no description", v.Field)
			}
			bad[v.Field] = true
		}
		oneLine := func(s string) bool {
			return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' })
		}
		if !bad["feedback.customer.name"] && !oneLine(name) {
			t.Fatalf("accepted customer name %q", name)
		}
		if !bad["feedback.customer.email"] && !oneLine(email) {
			t.Fatalf("accepted email %q", email)
		}
		if !bad["feedback.subject"] && !oneLine(subject) {
			t.Fatalf("accepted subject %q", subject)
		}
		if !bad["feedback.text"] && !utf8.ValidString(text) {
			t.Fatalf("accepted text that is not UTF-8: %q", text)
		}
	})
}

// FuzzStripText: what StripText leaves passes Text, it changes nothing
// Text accepts (a valid comment is offered back as it was), and it keeps
// every character Text allows (only refused ones go).
func FuzzStripText(f *testing.F) {
	for _, s := range []string{"", "plain", "gut\x00schlecht", "tab\tCR\rLF\n ok", "vt\vff\fesc\x1b[31m", "bad\xffutf8\xc3", "del\u007fc1\u0085", "sep\u2028para\u2029", "Grüße 👋"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := validate.StripText(s)
		if vs := validate.Text("comment", got, len(got)+1); len(vs) > 0 {
			t.Fatalf("StripText(%q) = %q, which Text refuses: %v", s, got, vs)
		}
		if len(validate.Text("comment", s, len(s)+1)) == 0 && got != s {
			t.Fatalf("StripText(%q) = %q: changed a text Text accepts", s, got)
		}
		if again := validate.StripText(got); again != got {
			t.Fatalf("not idempotent: %q then %q", got, again)
		}
		// Every kept rune is in s, in order: nothing is replaced or added.
		rest := s
		for _, r := range got {
			i := strings.IndexRune(rest, r)
			if i < 0 {
				t.Fatalf("StripText(%q) = %q: %q is not from the input", s, got, r)
			}
			rest = rest[i+utf8.RuneLen(r):]
		}
	})
}
