// Package protodecode explains why bytes did not decode as a protobuf
// message, in terms a client can act on: invalid UTF-8 is pinned to the
// string field that carries it (the protobuf runtime rejects it without
// saying which), anything else is a violation on the whole payload.
//
// Intake uses it for submissions on NATS, and pkg/grpcserver for every
// gRPC request, so both edges word a malformed message the same way.
package protodecode

import (
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// PayloadField names the whole message in a Violation, when the bytes are
// not a message of the type at all.
const PayloadField = "payload"

// Violation is what is wrong with one field, as errdetails.BadRequest and
// intake's validator say it.
type Violation struct {
	Field       string
	Description string
}

// Explain says why data did not decode as a message of type md (err is
// the decoder's error). A field path starts with prefix when it is not
// empty ("feedback" gives "feedback.text"); with "" it is the path from md
// ("feedback.text" for a SubmitRequest).
func Explain(md protoreflect.MessageDescriptor, data []byte, err error, prefix string) Violation {
	if path := InvalidUTF8(md, data); path != "" {
		if prefix != "" {
			path = prefix + "." + path
		}
		return Violation{Field: path, Description: "must be valid UTF-8"}
	}
	return Violation{
		Field:       PayloadField,
		Description: fmt.Sprintf("must be a protobuf-encoded %s (%d bytes did not decode: %v)", md.FullName(), len(data), err),
	}
}

// InvalidUTF8 walks the wire form of a message of type md and returns the
// dotted path of the first string field holding invalid UTF-8 (a map is
// named, not its entry), or "" if none does or the bytes are malformed
// before one is found.
func InvalidUTF8(md protoreflect.MessageDescriptor, b []byte) string {
	return invalidUTF8(md, b, "")
}

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
		field := string(fd.Name())
		if path != "" {
			field = path + "." + field
		}
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
