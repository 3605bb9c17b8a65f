package httpport

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// posRE finds the position protojson puts in its errors: "(line 3:14)".
var posRE = regexp.MustCompile(`\(line (\d+):(\d+)\)`)

// fieldAt returns the path, in proto field names under root (e.g.
// "feedback.customer.email"), of the JSON member where protojson reported
// decodeErr in body. protojson names only the leaf (in its JSON name), so
// the position is used to find the whole path. It returns root when the
// error has no position or the position is not inside a member.
func fieldAt(body []byte, decodeErr error, md protoreflect.MessageDescriptor, root string) string {
	m := posRE.FindStringSubmatch(decodeErr.Error())
	if m == nil {
		return root
	}
	line, _ := strconv.Atoi(m[1])
	col, _ := strconv.Atoi(m[2])
	off, ok := offset(body, line, col)
	if !ok {
		return root
	}
	return protoPath(md, root, jsonKeysAt(body, off))
}

// offset converts protojson's 1-based line and rune column to a byte offset.
func offset(body []byte, line, col int) (int, bool) {
	start := 0
	for l := 1; l < line; l++ {
		i := bytes.IndexByte(body[start:], '\n')
		if i < 0 {
			return 0, false
		}
		start += i + 1
	}
	off := start
	for c := 1; c < col; c++ {
		if off >= len(body) {
			return 0, false
		}
		_, n := utf8.DecodeRune(body[off:])
		off += n
	}
	return off, true
}

// jsonKeysAt returns the object keys enclosing the token that starts at or
// spans byte offset off: ["customer", "email"] for the value of
// {"customer": {"email": …}}. Array levels are skipped (Feedback has no
// repeated fields; a map is an object). It stops at the first syntax error,
// returning the keys open at that point.
func jsonKeysAt(body []byte, off int) []string {
	type frame struct {
		object bool
		key    string
		// wantKey is true in an object when the next string is a key.
		wantKey bool
	}
	var stack []frame
	keys := func() []string {
		var ks []string
		for _, f := range stack {
			if f.object && f.key != "" {
				ks = append(ks, f.key)
			}
		}
		return ks
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return keys()
		}
		end := int(dec.InputOffset())
		top := len(stack) - 1
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if end > off {
					return keys()
				}
				stack = append(stack, frame{object: t == '{', wantKey: t == '{'})
				continue
			default: // '}' or ']': the value of the enclosing key is done
				if end > off {
					return keys()
				}
				stack = stack[:top]
				if top > 0 && stack[top-1].object {
					stack[top-1].wantKey = true
				}
				continue
			}
		case string:
			if top >= 0 && stack[top].object && stack[top].wantKey {
				stack[top].key, stack[top].wantKey = t, false
				if end > off {
					return keys()
				}
				continue
			}
		}
		// A scalar value.
		if end > off {
			return keys()
		}
		if top >= 0 && stack[top].object {
			stack[top].wantKey = true
		}
	}
}

// protoPath maps JSON keys (JSON or proto field names, as protojson accepts
// both) to a proto field path under root. A map key is rendered
// attributes["k"]; a key that names no field is kept as given.
func protoPath(md protoreflect.MessageDescriptor, root string, keys []string) string {
	path := root
	for i := 0; i < len(keys); i++ {
		if md == nil {
			path += "." + keys[i]
			continue
		}
		fd := md.Fields().ByJSONName(keys[i])
		if fd == nil {
			fd = md.Fields().ByTextName(keys[i])
		}
		if fd == nil {
			path += "." + keys[i]
			md = nil
			continue
		}
		path += "." + string(fd.Name())
		switch {
		case fd.IsMap():
			if i+1 < len(keys) {
				path += fmt.Sprintf("[%q]", keys[i+1])
			}
			return path
		case fd.Kind() == protoreflect.MessageKind && fd.Message().FullName().Parent() != "google.protobuf":
			md = fd.Message()
		default:
			// A scalar or a well-known type (a Timestamp is one JSON string).
			return path
		}
	}
	return path
}

// loneSurrogate returns the offset of the first \uXXXX escape in body that
// is half a UTF-16 surrogate pair without its other half, or -1.
func loneSurrogate(body []byte) int {
	hex4 := func(i int) (rune, bool) {
		if i+6 > len(body) || body[i] != '\\' || body[i+1] != 'u' {
			return 0, false
		}
		v, err := strconv.ParseUint(string(body[i+2:i+6]), 16, 16)
		return rune(v), err == nil
	}
	for i := 0; i < len(body); i++ {
		if body[i] != '\\' {
			continue
		}
		if i+1 < len(body) && body[i+1] != 'u' {
			i++ // skip the escaped character (it may be a backslash)
			continue
		}
		r, ok := hex4(i)
		if !ok {
			continue
		}
		switch {
		case r >= 0xD800 && r <= 0xDBFF:
			if lo, ok := hex4(i + 6); ok && lo >= 0xDC00 && lo <= 0xDFFF {
				i += 11
				continue
			}
			return i
		case r >= 0xDC00 && r <= 0xDFFF:
			return i
		}
		i += 5
	}
	return -1
}
