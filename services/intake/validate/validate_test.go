package validate_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/intake/validate"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// valid is a complete item that breaks no rule; each case changes one thing.
func valid() *feedloopv1.Feedback {
	return &feedloopv1.Feedback{
		Source:     "helpdesk",
		ExternalId: "TICKET-42",
		Channel:    feedloopv1.Channel_CHANNEL_EMAIL,
		Customer: &feedloopv1.Customer{
			Id: "c-1", Email: "ada@example.com", Name: "Ada", Locale: "de-CH",
			Consent: &feedloopv1.Consent{Contact: true},
		},
		Subject:    "Invoice",
		Text:       "I was billed twice.",
		Nps:        proto.Int32(3),
		Csat:       proto.Int32(2),
		Ces:        proto.Int32(6),
		Product:    "billing",
		Area:       "invoices",
		Attributes: map[string]string{"plan": "pro"},
		OccurredAt: timestamppb.New(now.Add(-time.Hour)),
		InReplyTo:  "123e4567-e89b-12d3-a456-426614174000",
	}
}

func attrs(n int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m[fmt.Sprintf("k%d", i)] = "v"
	}
	return m
}

func TestFeedback(t *testing.T) {
	tests := []struct {
		name   string
		change func(fb *feedloopv1.Feedback)
		// field is the one violation expected; "" means valid.
		field string
		// desc is a fragment of its description.
		desc string
	}{
		{"complete item", func(*feedloopv1.Feedback) {}, "", ""},
		{"minimal item", func(fb *feedloopv1.Feedback) {
			*fb = feedloopv1.Feedback{Source: "s", ExternalId: "1", Text: "t"}
		}, "", ""},
		{"client id and received_at are ignored", func(fb *feedloopv1.Feedback) {
			fb.Id, fb.ReceivedAt = "not-a-uuid", timestamppb.New(now.Add(48*time.Hour))
		}, "", ""},
		{"missing source", func(fb *feedloopv1.Feedback) { fb.Source = "" }, "feedback.source", "is required"},
		{"source with upper case", func(fb *feedloopv1.Feedback) { fb.Source = "HelpDesk" }, "feedback.source", "a-z"},
		{"source with a dot", func(fb *feedloopv1.Feedback) { fb.Source = "help.desk" }, "feedback.source", "a-z"},
		{"source of 65 bytes", func(fb *feedloopv1.Feedback) { fb.Source = strings.Repeat("a", 65) }, "feedback.source", "64"},
		{"source of 64 bytes", func(fb *feedloopv1.Feedback) { fb.Source = strings.Repeat("a", 64) }, "", ""},
		{"missing external_id", func(fb *feedloopv1.Feedback) { fb.ExternalId = "" }, "feedback.external_id", "is required"},
		{"external_id of 257 bytes", func(fb *feedloopv1.Feedback) { fb.ExternalId = strings.Repeat("x", 257) }, "feedback.external_id", "at most 256 bytes, got 257"},
		{"external_id of 256 bytes", func(fb *feedloopv1.Feedback) { fb.ExternalId = strings.Repeat("x", 256) }, "", ""},
		{"external_id with a newline", func(fb *feedloopv1.Feedback) { fb.ExternalId = "a\nb" }, "feedback.external_id", "printable"},
		{"external_id with a space and unicode", func(fb *feedloopv1.Feedback) { fb.ExternalId = "Bestellung Nr. 7 – ä" }, "", ""},
		{"missing text", func(fb *feedloopv1.Feedback) { fb.Text = ""; fb.Nps, fb.Csat, fb.Ces = nil, nil, nil }, "feedback.text", "is required"},
		{"blank text", func(fb *feedloopv1.Feedback) { fb.Text = " \n\t"; fb.Nps, fb.Csat, fb.Ces = nil, nil, nil }, "feedback.text", "is required unless"},
		{"text of 32769 bytes", func(fb *feedloopv1.Feedback) { fb.Text = strings.Repeat("x", 32769) }, "feedback.text", "at most 32768 bytes, got 32769"},
		{"text of 32768 bytes", func(fb *feedloopv1.Feedback) { fb.Text = strings.Repeat("x", 32768) }, "", ""},
		{"text with invalid UTF-8", func(fb *feedloopv1.Feedback) { fb.Text = "ok \xff\xfe" }, "feedback.text", "UTF-8"},
		{"subject of 513 bytes", func(fb *feedloopv1.Feedback) { fb.Subject = strings.Repeat("s", 513) }, "feedback.subject", "at most 512"},
		{"nps 11", func(fb *feedloopv1.Feedback) { fb.Nps = proto.Int32(11) }, "feedback.nps", "between 0 and 10, got 11"},
		{"nps -1", func(fb *feedloopv1.Feedback) { fb.Nps = proto.Int32(-1) }, "feedback.nps", "got -1"},
		{"nps 0", func(fb *feedloopv1.Feedback) { fb.Nps = proto.Int32(0) }, "", ""},
		{"nps 10", func(fb *feedloopv1.Feedback) { fb.Nps = proto.Int32(10) }, "", ""},
		{"csat 0", func(fb *feedloopv1.Feedback) { fb.Csat = proto.Int32(0) }, "feedback.csat", "between 1 and 5"},
		{"csat 6", func(fb *feedloopv1.Feedback) { fb.Csat = proto.Int32(6) }, "feedback.csat", "got 6"},
		{"ces 8", func(fb *feedloopv1.Feedback) { fb.Ces = proto.Int32(8) }, "feedback.ces", "between 1 and 7"},
		{"ces 0", func(fb *feedloopv1.Feedback) { fb.Ces = proto.Int32(0) }, "feedback.ces", "got 0"},
		{"scores absent", func(fb *feedloopv1.Feedback) { fb.Nps, fb.Csat, fb.Ces = nil, nil, nil }, "", ""},
		{"channel unspecified", func(fb *feedloopv1.Feedback) { fb.Channel = feedloopv1.Channel_CHANNEL_UNSPECIFIED }, "", ""},
		{"channel other", func(fb *feedloopv1.Feedback) { fb.Channel = feedloopv1.Channel_CHANNEL_OTHER }, "", ""},
		{"unknown channel number", func(fb *feedloopv1.Feedback) { fb.Channel = 42 }, "feedback.channel", "got 42"},
		{"negative channel number", func(fb *feedloopv1.Feedback) { fb.Channel = -1 }, "feedback.channel", "got -1"},
		{"bad email", func(fb *feedloopv1.Feedback) { fb.Customer.Email = "ada-at-example" }, "feedback.customer.email", "email address"},
		{"email with CRLF", func(fb *feedloopv1.Feedback) { fb.Customer.Email = "ada@example.com\r\nBcc: eve@example.com" }, "feedback.customer.email", "CR, LF"},
		{"email with LF only", func(fb *feedloopv1.Feedback) { fb.Customer.Email = "ada@example.com\n" }, "feedback.customer.email", "CR, LF"},
		{"email with display name", func(fb *feedloopv1.Feedback) { fb.Customer.Email = "Ada <ada@example.com>" }, "feedback.customer.email", "email address"},
		{"no email", func(fb *feedloopv1.Feedback) { fb.Customer.Email = "" }, "", ""},
		{"bad locale", func(fb *feedloopv1.Feedback) { fb.Customer.Locale = "not a locale!" }, "feedback.customer.locale", "BCP 47"},
		{"locale with region", func(fb *feedloopv1.Feedback) { fb.Customer.Locale = "pt-BR" }, "", ""},
		{"customer name too long", func(fb *feedloopv1.Feedback) { fb.Customer.Name = strings.Repeat("n", 257) }, "feedback.customer.name", "at most 256"},
		{"65 attributes", func(fb *feedloopv1.Feedback) { fb.Attributes = attrs(65) }, "feedback.attributes", "at most 64 entries, got 65"},
		{"64 attributes", func(fb *feedloopv1.Feedback) { fb.Attributes = attrs(64) }, "", ""},
		{"attribute key of 65 bytes", func(fb *feedloopv1.Feedback) {
			fb.Attributes = map[string]string{strings.Repeat("k", 65): "v"}
		}, "feedback.attributes", "keys must be at most 64 bytes"},
		{"empty attribute key", func(fb *feedloopv1.Feedback) { fb.Attributes = map[string]string{"": "v"} }, "feedback.attributes", "not be empty"},
		{"attribute value of 1025 bytes", func(fb *feedloopv1.Feedback) {
			fb.Attributes = map[string]string{"plan": strings.Repeat("v", 1025)}
		}, `feedback.attributes["plan"]`, "at most 1024 bytes"},
		{"attribute value of 1024 bytes", func(fb *feedloopv1.Feedback) {
			fb.Attributes = map[string]string{"plan": strings.Repeat("v", 1024)}
		}, "", ""},
		{"customer name with CRLF", func(fb *feedloopv1.Feedback) { fb.Customer.Name = "Ada\r\nBcc: eve@example.com" }, "feedback.customer.name", "one line: no CR, LF"},
		{"customer name with a tab", func(fb *feedloopv1.Feedback) { fb.Customer.Name = "Ada\tL" }, "feedback.customer.name", "got U+0009 at byte 3"},
		{"customer name with NUL", func(fb *feedloopv1.Feedback) { fb.Customer.Name = "Ada\x00" }, "feedback.customer.name", "U+0000"},
		{"customer name with U+2028", func(fb *feedloopv1.Feedback) { fb.Customer.Name = "Ada\u2028Bcc" }, "feedback.customer.name", "U+2028"},
		{"customer name with unicode and markup", func(fb *feedloopv1.Feedback) { fb.Customer.Name = "Zoë <b>O'Neil</b>" }, "", ""},
		{"email with NUL", func(fb *feedloopv1.Feedback) { fb.Customer.Email = "ada@exa\x00mple.com" }, "feedback.customer.email", "control characters"},
		{"subject with LF", func(fb *feedloopv1.Feedback) { fb.Subject = "Invoice\nX-Header: 1" }, "feedback.subject", "one line"},
		{"text with newlines and tabs", func(fb *feedloopv1.Feedback) { fb.Text = "line 1\r\n\tline 2\u2028" }, "", ""},
		{"text with an escape sequence", func(fb *feedloopv1.Feedback) { fb.Text = "red \x1b[31m alert" }, "feedback.text", "control characters other than tab, CR and LF, got U+001B at byte 4"},
		{"text with DEL", func(fb *feedloopv1.Feedback) { fb.Text = "x\x7f" }, "feedback.text", "U+007F"},
		{"text with a script tag", func(fb *feedloopv1.Feedback) { fb.Text = `<script>alert("x")</script>` }, "", ""},
		{"product with a control character", func(fb *feedloopv1.Feedback) { fb.Product = "bill\x07ing" }, "feedback.product", "one line"},
		{"customer id with LF", func(fb *feedloopv1.Feedback) { fb.Customer.Id = "c\n1" }, "feedback.customer.id", "one line"},
		{"attribute key with LF", func(fb *feedloopv1.Feedback) { fb.Attributes = map[string]string{"a\nb": "v"} }, "feedback.attributes", "printable"},
		{"attribute value with ESC", func(fb *feedloopv1.Feedback) { fb.Attributes = map[string]string{"plan": "\x1b"} }, `feedback.attributes["plan"]`, "control"},
		{"external_id with ..", func(fb *feedloopv1.Feedback) { fb.ExternalId = "../../etc/passwd" }, "feedback.external_id", "not a path"},
		{"external_id with a . segment", func(fb *feedloopv1.Feedback) { fb.ExternalId = "a/./b" }, "feedback.external_id", "not a path"},
		{"external_id with a leading /", func(fb *feedloopv1.Feedback) { fb.ExternalId = "/etc/passwd" }, "feedback.external_id", "no leading '/'"},
		{"external_id with a backslash", func(fb *feedloopv1.Feedback) { fb.ExternalId = `..\windows` }, "feedback.external_id", `no '\'`},
		{"external_id with slashes", func(fb *feedloopv1.Feedback) { fb.ExternalId = "projects/7/issues/42..43" }, "", ""},
		{"source with a path separator", func(fb *feedloopv1.Feedback) { fb.Source = "../helpdesk" }, "feedback.source", "a-z"},
		{"survey answer: a score and no text", func(fb *feedloopv1.Feedback) { fb.Text = ""; fb.Nps, fb.Ces = nil, nil }, "", ""},
		{"in_reply_to not a UUID", func(fb *feedloopv1.Feedback) { fb.InReplyTo = "ticket-41" }, "feedback.in_reply_to", "UUID"},
		{"in_reply_to as URN", func(fb *feedloopv1.Feedback) { fb.InReplyTo = "urn:uuid:123e4567-e89b-12d3-a456-426614174000" }, "feedback.in_reply_to", "UUID"},
		{"occurred_at 24h ahead", func(fb *feedloopv1.Feedback) { fb.OccurredAt = timestamppb.New(now.Add(24 * time.Hour)) }, "", ""},
		{"occurred_at 24h1s ahead", func(fb *feedloopv1.Feedback) {
			fb.OccurredAt = timestamppb.New(now.Add(24*time.Hour + time.Second))
		}, "feedback.occurred_at", "not be more than 24h0m0s after reception"},
		{"occurred_at invalid", func(fb *feedloopv1.Feedback) { fb.OccurredAt = &timestamppb.Timestamp{Nanos: -1} }, "feedback.occurred_at", "valid timestamp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fb := valid()
			tt.change(fb)
			got := validate.Feedback(fb, now)
			if tt.field == "" {
				if len(got) != 0 {
					t.Fatalf("want valid, got %v", validate.Join(got))
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("want one violation on %s, got %d: %v", tt.field, len(got), validate.Join(got))
			}
			if got[0].Field != tt.field || !strings.Contains(got[0].Description, tt.desc) {
				t.Fatalf("want %s: …%s…, got %s", tt.field, tt.desc, got[0])
			}
		})
	}
}

func TestFeedbackReportsEveryViolationInFieldOrder(t *testing.T) {
	fb := &feedloopv1.Feedback{Ces: proto.Int32(8), Customer: &feedloopv1.Customer{Email: "x"}, Text: " "}
	got := validate.Feedback(fb, now)
	var fields []string
	for _, v := range got {
		fields = append(fields, v.Field)
	}
	want := "feedback.source feedback.external_id feedback.customer.email feedback.ces"
	if strings.Join(fields, " ") != want {
		t.Fatalf("fields = %q, want %q", strings.Join(fields, " "), want)
	}
}

func TestFeedbackNil(t *testing.T) {
	got := validate.Feedback(nil, now)
	if len(got) != 1 || got[0].Field != "feedback" || got[0].Description != "is required" {
		t.Fatalf("got %v", got)
	}
}

func TestJoin(t *testing.T) {
	got := validate.Join([]validate.Violation{{Field: "feedback.nps", Description: "bad"}, {Field: "feedback.text", Description: "worse"}})
	if got != "feedback.nps: bad; feedback.text: worse" {
		t.Fatalf("got %q", got)
	}
}

func TestStripText(t *testing.T) {
	for in, want := range map[string]string{
		"gut\x00schlecht":          "gutschlecht",
		"a\vb\fc\x1b[31md":         "abc[31md",
		"line\r\nnext\ttab":        "line\r\nnext\ttab",
		"bad\xffbyte":              "badbyte",
		"Grüße\u0085 \u2028Absatz": "Grüße \u2028Absatz",
	} {
		if got := validate.StripText(in); got != want {
			t.Errorf("StripText(%q) = %q, want %q", in, got, want)
		}
	}
}
