package httpport

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/feedloop/feedloop/services/intake/validate"
)

// FuzzDecodeJSON: whatever the body, decoding the HTTP request never
// panics, a failure is exactly one violation naming a feedback field, and
// what decodes survives a protojson round trip and validation.
// Seeds: testdata/fuzz/FuzzDecodeJSON.
func FuzzDecodeJSON(f *testing.F) {
	f.Add([]byte(`{"source":"web","externalId":"1","text":"t","customer":{"email":"a@b.c"},"attributes":{"k":"v"}}`))
	f.Add([]byte(`{"source":"web","customer":{"consent":{"contact":"yes"}}}`))
	f.Add([]byte(`{"text":"\ud800"}`))
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		fb, vs := decodeJSON(body)
		if fb == nil {
			if len(vs) != 1 {
				t.Fatalf("failed decode with %d violations, want 1: %v", len(vs), vs)
			}
			checkViolation(t, vs[0])
			return
		}
		if len(vs) != 0 {
			t.Fatalf("decoded with violations %v", vs)
		}
		out, err := protojson.Marshal(fb)
		if err != nil {
			t.Fatalf("re-marshal: %v", err)
		}
		again, vs := decodeJSON(out)
		if len(vs) != 0 || !proto.Equal(fb, again) {
			t.Fatalf("round trip of %s: %v", out, vs)
		}
		for _, v := range validate.Feedback(fb, now) {
			checkViolation(t, v)
		}
	})
}

func checkViolation(t *testing.T, v validate.Violation) {
	t.Helper()
	if v.Field != validate.Prefix && !strings.HasPrefix(v.Field, validate.Prefix+".") {
		t.Fatalf("violation names %q, not a feedback field: %v", v.Field, v)
	}
	if v.Description == "" {
		t.Fatalf("violation on %s has no description", v.Field)
	}
}
