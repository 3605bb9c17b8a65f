// Package decode turns a protobuf-encoded Feedback (the NATS submission
// payload) into a message, and an undecodable payload into field violations
// that say what is wrong, in the same terms as the validator.
package decode

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/intake/validate"
)

// PayloadField names the whole message payload in a violation, when the bytes
// are not a Feedback at all.
const PayloadField = "payload"

// Feedback decodes data as a protobuf-encoded Feedback. When it does not
// decode, it returns the violations that explain why: invalid UTF-8 is
// pinned to the string field that carries it (the protobuf runtime rejects
// it without saying which), anything else is a violation on the payload.
func Feedback(data []byte) (*feedloopv1.Feedback, []validate.Violation) {
	fb := &feedloopv1.Feedback{}
	err := proto.Unmarshal(data, fb)
	if err == nil {
		return fb, nil
	}
	if path := invalidUTF8(fb.ProtoReflect().Descriptor(), data, validate.Prefix); path != "" {
		return nil, []validate.Violation{{Field: path, Description: "must be valid UTF-8"}}
	}
	return nil, []validate.Violation{{
		Field:       PayloadField,
		Description: fmt.Sprintf("must be a protobuf-encoded feedloop.v1.Feedback (%d bytes did not decode: %v)", len(data), err),
	}}
}

// Request explains why data did not decode as a gRPC request of type md
// (err is the decoder's error), in the terms of Feedback: invalid UTF-8 is
// pinned to its field, named from the request ("feedback.text"); anything
// else is a violation on the payload.
func Request(md protoreflect.MessageDescriptor, data []byte, err error) []validate.Violation {
	if path := invalidUTF8(md, data, ""); path != "" {
		return []validate.Violation{{Field: strings.TrimPrefix(path, "."), Description: "must be valid UTF-8"}}
	}
	return []validate.Violation{{
		Field:       PayloadField,
		Description: fmt.Sprintf("must be a protobuf-encoded %s (%d bytes did not decode: %v)", md.FullName(), len(data), err),
	}}
}

// invalidUTF8 walks the wire form of a message of type md and returns the
// path of the first string field holding invalid UTF-8, or "" if none does
// (or the bytes are malformed before one is found).
func invalidUTF8(md protoreflect.MessageDescriptor, b []byte, path string) string {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return ""
		}
		b = b[n:]
		fd := md.Fields().ByNumber(num)
		if typ != protowire.BytesType || fd == nil {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return ""
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return ""
		}
		b = b[n:]
		field := path + "." + string(fd.Name())
		switch {
		case fd.IsMap():
			// A map entry is a message {key=1, value=2}; name the map.
			if p := invalidUTF8(fd.Message(), v, field); p != "" {
				return field
			}
		case fd.Kind() == protoreflect.MessageKind:
			if p := invalidUTF8(fd.Message(), v, field); p != "" {
				return p
			}
		case fd.Kind() == protoreflect.StringKind:
			if !utf8.Valid(v) {
				return field
			}
		}
	}
	return ""
}
