package httpport

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

func TestFieldAt(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
		// leaf is what protojson's own message names.
		leaf string
	}{
		{"wrong type top level", `{"source":"s","nps":"ten"}`, "feedback.nps", "nps"},
		{"wrong type, proto name", `{"source":"s","external_id":5}`, "feedback.external_id", "externalId"},
		{"wrong type, json name", `{"externalId":true}`, "feedback.external_id", "externalId"},
		{"nested wrong type", "{\n  \"customer\": {\n    \"id\": \"c\",\n    \"email\": 7\n  }\n}", "feedback.customer.email", "email"},
		{"id inside customer, not feedback.id", `{"id":"x","customer":{"id":5}}`, "feedback.customer.id", "id"},
		{"deeper nesting", `{"customer":{"consent":{"contact":"yes"}}}`, "feedback.customer.consent.contact", "contact"},
		{"unknown enum name", `{"text":"t","channel":"CHANNEL_PIGEON"}`, "feedback.channel", "channel"},
		{"unknown field", `{"text":"t","colour":"red"}`, "feedback.colour", "colour"},
		{"unknown nested field", `{"customer":{"phone":"1"}}`, "feedback.customer.phone", "phone"},
		{"map value wrong type", `{"attributes":{"plan":"pro","seats":5}}`, `feedback.attributes["seats"]`, "field value"},
		{"bad timestamp", `{"occurredAt":"yesterday"}`, "feedback.occurred_at", "Timestamp"},
		{"after a closed object", `{"customer":{"id":"c"},"ces":[1]}`, "feedback.ces", "ces"},
		{"multibyte before the error", `{"text":"ünïcödé","csat":"x"}`, "feedback.csat", "csat"},
		{"not an object", `[1,2]`, "feedback", "unexpected token"},
		{"truncated", `{"text":"t",`, "feedback", "unexpected EOF"},
	}
	md := (&feedloopv1.Feedback{}).ProtoReflect().Descriptor()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := protojson.Unmarshal([]byte(tt.body), &feedloopv1.Feedback{})
			if err == nil {
				t.Fatal("protojson accepted the body")
			}
			if !strings.Contains(err.Error(), tt.leaf) {
				t.Errorf("protojson error %q does not name %q", err, tt.leaf)
			}
			if got := fieldAt([]byte(tt.body), err, md, "feedback"); got != tt.want {
				t.Fatalf("fieldAt = %q, want %q (protojson: %v)", got, tt.want, err)
			}
		})
	}
}

func TestDecodeJSONNamesLoneSurrogates(t *testing.T) {
	for body, want := range map[string]string{
		`{"text":"\ud800"}`:                           "feedback.text",
		`{"customer":{"name":"a\udc00b"},"text":"t"}`: "feedback.customer.name",
		`{"text":"\\ud800 \u00e9"}`:                   "", // an escaped backslash, then a valid escape
		`{"text":"\ud83d\ude00"}`:                     "", // a pair: 😀
	} {
		_, vs := decodeJSON([]byte(body))
		switch {
		case want == "" && len(vs) > 0:
			t.Errorf("%s: %v, want decoded", body, vs)
		case want != "" && (len(vs) != 1 || vs[0].Field != want || !strings.Contains(vs[0].Description, "half a surrogate pair")):
			t.Errorf("%s: %v, want %s: half a surrogate pair", body, vs, want)
		}
	}
}
