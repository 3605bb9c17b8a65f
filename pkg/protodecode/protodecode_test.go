package protodecode_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/feedloop/feedloop/pkg/protodecode"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
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

func TestExplain(t *testing.T) {
	req := (&feedloopv1.SubmitRequest{}).ProtoReflect().Descriptor()
	fb := (&feedloopv1.Feedback{}).ProtoReflect().Descriptor()
	strct := (&structpb.Struct{}).ProtoReflect().Descriptor()
	valid, err := proto.Marshal(&feedloopv1.Feedback{Source: "s", ExternalId: "1", Text: strings.Repeat("x", 100)})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		md     protoreflect.MessageDescriptor
		data   []byte
		prefix string
		field  string
		desc   string
	}{
		{"invalid UTF-8 in a top-level string", fb, str(str(nil, 2, "s"), 7, "bad \xff"), "", "text", "must be valid UTF-8"},
		{"after a prefix", fb, str(str(nil, 2, "s"), 7, "bad \xff"), "feedback", "feedback.text", "must be valid UTF-8"},
		{"in a nested message", fb, msg(str(nil, 7, "ok"), 5, str(nil, 2, "\xc3\x28@x.io")), "feedback", "feedback.customer.email", "must be valid UTF-8"},
		{"named from a request", req, msg(nil, 1, str(nil, 7, "\xff")), "", "feedback.text", "must be valid UTF-8"},
		{"in a map value: the map is named", fb, msg(nil, 13, str(str(nil, 1, "plan"), 2, "\xff")), "", "attributes", "must be valid UTF-8"},
		{"in a map of messages", strct, msg(nil, 1, msg(str(nil, 1, "k"), 2, str(nil, 3, "\xff"))), "", "fields", "must be valid UTF-8"},
		{"garbage bytes", fb, []byte("not protobuf \x00\xff\xff\xff"), "", protodecode.PayloadField, "must be a protobuf-encoded feedloop.v1.Feedback"},
		{"truncated", fb, valid[:len(valid)-10], "feedback", protodecode.PayloadField, "did not decode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			decodeErr := proto.Unmarshal(tt.data, newOf(tt.md))
			if decodeErr == nil {
				t.Fatalf("the case decodes; it must not")
			}
			v := protodecode.Explain(tt.md, tt.data, decodeErr, tt.prefix)
			if v.Field != tt.field || !strings.Contains(v.Description, tt.desc) {
				t.Fatalf("Explain = %+v, want %s: …%s…", v, tt.field, tt.desc)
			}
		})
	}
}

func newOf(md protoreflect.MessageDescriptor) proto.Message {
	switch md.FullName() {
	case "google.protobuf.Struct":
		return &structpb.Struct{}
	case "feedloop.v1.SubmitRequest":
		return &feedloopv1.SubmitRequest{}
	default:
		return &feedloopv1.Feedback{}
	}
}

func TestInvalidUTF8FindsNothingInValidOrMalformedBytes(t *testing.T) {
	fb := (&feedloopv1.Feedback{}).ProtoReflect().Descriptor()
	valid, _ := proto.Marshal(&feedloopv1.Feedback{Text: "héllo", Customer: &feedloopv1.Customer{Email: "a@b.c"}})
	for name, b := range map[string][]byte{
		"valid":               valid,
		"bad wire type first": protowire.AppendTag(nil, 1, 7),
		"length past the end": protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.BytesType), 1<<20),
	} {
		if p := protodecode.InvalidUTF8(fb, b); p != "" {
			t.Errorf("%s: InvalidUTF8 = %q, want none", name, p)
		}
	}
}
