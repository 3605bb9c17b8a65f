package decode_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/intake/internal/decode"
)

// str appends string field num with raw bytes (which proto.Marshal would
// refuse when they are not UTF-8).
func str(b []byte, num protowire.Number, v string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, v)
}

func msg(b []byte, num protowire.Number, inner []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, inner)
}

func TestFeedbackDecodes(t *testing.T) {
	in := &feedloopv1.Feedback{Source: "s", ExternalId: "1", Text: "héllo", Nps: proto.Int32(0)}
	data, err := proto.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	fb, vs := decode.Feedback(data)
	if len(vs) != 0 {
		t.Fatalf("violations: %v", vs)
	}
	if !proto.Equal(fb, in) {
		t.Fatalf("got %v, want %v", fb, in)
	}
}

func TestFeedbackViolations(t *testing.T) {
	valid, _ := proto.Marshal(&feedloopv1.Feedback{Source: "s", ExternalId: "1", Text: strings.Repeat("x", 100)})
	tests := []struct {
		name  string
		data  []byte
		field string
		desc  string
	}{
		{"invalid UTF-8 in text", str(str(nil, 2, "s"), 7, "bad \xff"), "feedback.text", "must be valid UTF-8"},
		{"invalid UTF-8 in customer email", msg(str(nil, 7, "ok"), 5, str(nil, 2, "\xc3\x28@x.io")), "feedback.customer.email", "must be valid UTF-8"},
		{"invalid UTF-8 in attribute value", msg(nil, 13, str(str(nil, 1, "plan"), 2, "\xff")), "feedback.attributes", "must be valid UTF-8"},
		{"garbage bytes", []byte("this is not protobuf \x00\xff\xff\xff"), "payload", "must be a protobuf-encoded feedloop.v1.Feedback"},
		{"truncated message", valid[:len(valid)-10], "payload", "did not decode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fb, vs := decode.Feedback(tt.data)
			if fb != nil {
				t.Fatalf("decoded %v, want violations", fb)
			}
			if len(vs) != 1 || vs[0].Field != tt.field || !strings.Contains(vs[0].Description, tt.desc) {
				t.Fatalf("got %v, want %s: …%s…", vs, tt.field, tt.desc)
			}
		})
	}
}
