package decode_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/intake/internal/decode"
	"github.com/feedloop/feedloop/services/intake/validate"
)

// FuzzDecodeProto: whatever a NATS submission carries, decoding never
// panics, a failure is exactly one violation naming the payload or a
// feedback field, and what decodes survives a round trip.
// Seeds: testdata/fuzz/FuzzDecodeProto.
func FuzzDecodeProto(f *testing.F) {
	good, _ := proto.Marshal(&feedloopv1.Feedback{Source: "helpdesk", ExternalId: "T-1", Text: "t", Attributes: map[string]string{"k": "v"},
		Customer: &feedloopv1.Customer{Email: "a@b.c"}})
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add([]byte{0x3a, 0x02, 0xc3, 0x28}) // text: invalid UTF-8
	f.Fuzz(func(t *testing.T, data []byte) {
		fb, vs := decode.Feedback(data)
		if fb == nil {
			if len(vs) != 1 {
				t.Fatalf("failed decode with %d violations, want 1: %v", len(vs), vs)
			}
			v := vs[0]
			if v.Field != decode.PayloadField && !strings.HasPrefix(v.Field, validate.Prefix+".") {
				t.Fatalf("violation names %q", v.Field)
			}
			if v.Description == "" {
				t.Fatalf("violation on %s has no description", v.Field)
			}
			return
		}
		out, err := proto.Marshal(fb)
		if err != nil {
			t.Fatalf("re-marshal: %v", err)
		}
		again, vs := decode.Feedback(out)
		if len(vs) != 0 || !proto.Equal(fb, again) {
			t.Fatalf("round trip: %v", vs)
		}
	})
}
