package intake_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// outcome is what a rejected request reported.
type outcome struct {
	// fields named by BadRequest details, JSON violations or batch results.
	fields []string
	// msg is the status message, JSON error or the dead letter's error header.
	msg string
}

func (o outcome) names(field string) bool {
	for _, f := range o.fields {
		if f == field {
			return true
		}
	}
	// A dead letter carries the violations in its error text only.
	return strings.Contains(o.msg, field+":")
}

type rejectCase struct {
	name string
	// via is the transport, also used for the valid request that follows.
	via string
	do  func(t *testing.T, e *env) outcome
	// field must be named by the outcome ("" when the rejection is not
	// about a field, e.g. a wrong content type).
	field string
	// msg, when set, must appear in the outcome's message.
	msg string
	// refusedByNATS: the NATS server itself refused the publish (max
	// payload), so there is no dead letter to count.
	refusedByNATS bool
}

const (
	viaGRPC  = "grpc"
	viaBatch = "grpc-batch"
	viaHTTP  = "http"
	viaNATS  = "nats"
)

func mutated(change func(fb *feedloopv1.Feedback)) *feedloopv1.Feedback {
	fb := feedback("helpdesk", "bad-1")
	change(fb)
	return fb
}

// grpcBad submits a mutated item and expects InvalidArgument with a
// BadRequest detail.
func grpcBad(change func(fb *feedloopv1.Feedback)) func(t *testing.T, e *env) outcome {
	return func(t *testing.T, e *env) outcome {
		_, err := e.grpc.Submit(ctxT(t), &feedloopv1.SubmitRequest{Feedback: mutated(change)})
		return badRequest(t, err)
	}
}

func badRequest(t *testing.T, err error) outcome {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("code = %s (%v), want InvalidArgument", st.Code(), err)
	}
	o := outcome{msg: st.Message()}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				if v.GetDescription() == "" {
					t.Errorf("violation on %s has no description", v.GetField())
				}
				o.fields = append(o.fields, v.GetField())
			}
		}
	}
	if len(o.fields) == 0 {
		t.Fatalf("no BadRequest field violations in %v", err)
	}
	return o
}

// httpBad posts body and expects status code with a JSON error body.
func httpBad(contentType, body string, code int) func(t *testing.T, e *env) outcome {
	return func(t *testing.T, e *env) outcome {
		got, resp, hdr := e.post(t, contentType, []byte(body))
		return httpError(t, got, resp, hdr, code)
	}
}

func httpError(t *testing.T, got int, resp []byte, hdr http.Header, code int) outcome {
	t.Helper()
	if got != code {
		t.Fatalf("status = %d %s, want %d", got, resp, code)
	}
	if ct := hdr.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type = %q, want application/json", ct)
	}
	var b struct {
		Error      string `json:"error"`
		Violations []struct {
			Field       string `json:"field"`
			Description string `json:"description"`
		} `json:"violations"`
	}
	if err := json.Unmarshal(resp, &b); err != nil || b.Error == "" {
		t.Fatalf("error body %s is not {\"error\": …}: %v", resp, err)
	}
	o := outcome{msg: b.Error}
	for _, v := range b.Violations {
		if v.Description == "" {
			t.Errorf("violation on %s has no description", v.Field)
		}
		o.fields = append(o.fields, v.Field)
		// The rule is in the description: let msg match it, as it does in
		// a gRPC status message.
		o.msg += "; " + v.Field + ": " + v.Description
	}
	return o
}

func httpJSONBad(change func(fb *feedloopv1.Feedback)) func(t *testing.T, e *env) outcome {
	return func(t *testing.T, e *env) outcome {
		body, err := protojson.Marshal(mutated(change))
		if err != nil {
			t.Fatal(err)
		}
		return httpBad("application/json", string(body), http.StatusBadRequest)(t, e)
	}
}

// natsBad publishes data on subject and waits for its dead letter.
func natsBad(subject string, data []byte) func(t *testing.T, e *env) outcome {
	return func(t *testing.T, e *env) outcome {
		ack, err := e.bus.PublishData(ctxT(t), subject, fmt.Sprintf("bad-%d", time.Now().UnixNano()), data, nil)
		if err != nil {
			t.Fatal(err)
		}
		msg := deadLetter(t, e, ack.Sequence)
		if string(msg.Data) != string(data) {
			t.Errorf("dead letter data differs from the submission")
		}
		if got := msg.Header.Get(bus.HeaderDLQSubject); got != subject {
			t.Errorf("dead letter subject header = %q, want %q", got, subject)
		}
		return outcome{msg: msg.Header.Get(bus.HeaderDLQError)}
	}
}

func natsFeedbackBad(subject string, change func(fb *feedloopv1.Feedback)) func(t *testing.T, e *env) outcome {
	data, err := proto.Marshal(mutated(change))
	if err != nil {
		panic(err)
	}
	return natsBad(subject, data)
}

// deadLetter polls feedback.dlq.intake for the copy of submit-stream
// message seq.
func deadLetter(t *testing.T, e *env, seq uint64) *nats.Msg {
	t.Helper()
	var found *nats.Msg
	testkit.Eventually(t, fmt.Sprintf("dead letter of submission %d", seq), func() bool {
		for _, raw := range testkit.Messages(t, e.bus, bus.StreamDLQ, bus.DLQSubject("intake")) {
			if raw.Header.Get(bus.HeaderDLQStream) == bus.StreamSubmit &&
				raw.Header.Get(bus.HeaderDLQSequence) == strconv.FormatUint(seq, 10) {
				found = &nats.Msg{Subject: raw.Subject, Data: raw.Data, Header: raw.Header}
				return true
			}
		}
		return false
	})
	return found
}

func dlqCount(t *testing.T, e *env) uint64 { return e.streamMsgs(t, bus.StreamDLQ) }

// rawCodec sends pre-encoded bytes, so a test can put on the wire what
// proto.Marshal refuses to produce (invalid UTF-8 in a string field).
type rawCodec struct{}

type rawBytes []byte

func (rawCodec) Marshal(v any) ([]byte, error) {
	if b, ok := v.(rawBytes); ok {
		return b, nil
	}
	return proto.Marshal(v.(proto.Message))
}
func (rawCodec) Unmarshal(data []byte, v any) error { return proto.Unmarshal(data, v.(proto.Message)) }
func (rawCodec) Name() string                       { return "proto" }

// withInvalidUTF8Text is the wire form of a Feedback from source src whose
// text is not UTF-8.
func withInvalidUTF8Text(src string) []byte {
	b, _ := proto.Marshal(&feedloopv1.Feedback{Source: src, ExternalId: "bad-utf8"})
	b = protowire.AppendTag(b, 7, protowire.BytesType)
	return protowire.AppendString(b, "caf\xe9 latin-1")
}

// grpcCode calls do and expects code; the outcome is the status message.
func grpcCode(code codes.Code, do func(t *testing.T, e *env) error) func(t *testing.T, e *env) outcome {
	return func(t *testing.T, e *env) outcome {
		err := do(t, e)
		if status.Code(err) != code {
			t.Fatalf("code = %s (%v), want %s", status.Code(err), err, code)
		}
		return outcome{msg: status.Convert(err).Message()}
	}
}

// rawBad sends pre-encoded bytes to Submit and expects a BadRequest.
func rawBad(req []byte) func(t *testing.T, e *env) outcome {
	return func(t *testing.T, e *env) outcome {
		return badRequest(t, invokeRaw("/feedloop.v1.IntakeService/Submit", req)(t, e))
	}
}

// invokeRaw sends pre-encoded request bytes to method.
func invokeRaw(method string, req []byte) func(t *testing.T, e *env) error {
	return func(t *testing.T, e *env) error {
		var resp feedloopv1.SubmitResponse
		return e.conn.Invoke(ctxT(t), method, rawBytes(req), &resp, grpc.ForceCodec(rawCodec{}))
	}
}

// hiddenLen hides a reader's length, so the client sends it chunked.
type hiddenLen struct{ r io.Reader }

func (h hiddenLen) Read(p []byte) (int, error) { return h.r.Read(p) }

// httpChunked posts body without a Content-Length.
func httpChunked(body []byte, code int) func(t *testing.T, e *env) outcome {
	return func(t *testing.T, e *env) outcome {
		req, _ := http.NewRequestWithContext(ctxT(t), http.MethodPost, e.base+"/v1/feedback", hiddenLen{bytes.NewReader(body)})
		req.Header.Set("Content-Type", "application/json")
		got, resp, hdr := e.do(t, req)
		return httpError(t, got, resp, hdr, code)
	}
}

// nested is depth levels of {"a": … } around leaf, as JSON.
func nested(depth int, leaf string) string {
	return strings.Repeat(`{"a":`, depth) + leaf + strings.Repeat("}", depth)
}

func manyAttrs(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprintf("k%d", i)] = "v"
	}
	return m
}

func TestRejects(t *testing.T) {
	attrs := map[string]string{}
	for i := range 65 {
		attrs[fmt.Sprintf("k%d", i)] = "v"
	}
	big := strings.Repeat("x", 32<<10+1)
	valid, _ := proto.Marshal(feedback("helpdesk", "trunc"))
	tenMB := bytes.Repeat([]byte("x"), 10<<20)
	tenMBJSON := []byte(`{"source":"web","externalId":"1","text":"` + string(tenMB) + `"}`)
	tenMBProto, _ := proto.Marshal(&feedloopv1.SubmitRequest{Feedback: mutated(func(fb *feedloopv1.Feedback) { fb.Text = string(tenMB) })})
	hugeMap, _ := proto.Marshal(&feedloopv1.SubmitRequest{Feedback: mutated(func(fb *feedloopv1.Feedback) { fb.Attributes = manyAttrs(100_000) })})
	tests := []rejectCase{
		// gRPC Submit: InvalidArgument with BadRequest field violations.
		{name: "missing source", via: viaGRPC, field: "feedback.source", do: grpcBad(func(fb *feedloopv1.Feedback) { fb.Source = "" })},
		{name: "missing external_id", via: viaGRPC, field: "feedback.external_id", do: grpcBad(func(fb *feedloopv1.Feedback) { fb.ExternalId = "" })},
		{name: "missing text", via: viaGRPC, field: "feedback.text", do: grpcBad(func(fb *feedloopv1.Feedback) { fb.Text = ""; fb.Nps, fb.Csat, fb.Ces = nil, nil, nil })},
		{name: "text over 32 KiB", via: viaGRPC, field: "feedback.text", msg: "at most 32768 bytes", do: grpcBad(func(fb *feedloopv1.Feedback) { fb.Text = big })},
		{name: "nps 11", via: viaGRPC, field: "feedback.nps", do: grpcBad(func(fb *feedloopv1.Feedback) { fb.Nps = proto.Int32(11) })},
		{name: "nps -1", via: viaGRPC, field: "feedback.nps", do: grpcBad(func(fb *feedloopv1.Feedback) { fb.Nps = proto.Int32(-1) })},
		{name: "csat 0", via: viaGRPC, field: "feedback.csat", do: grpcBad(func(fb *feedloopv1.Feedback) { fb.Csat = proto.Int32(0) })},
		{name: "ces 8", via: viaGRPC, field: "feedback.ces", do: grpcBad(func(fb *feedloopv1.Feedback) { fb.Ces = proto.Int32(8) })},
		{name: "unknown channel number", via: viaGRPC, field: "feedback.channel", do: grpcBad(func(fb *feedloopv1.Feedback) { fb.Channel = 42 })},
		{name: "bad email", via: viaGRPC, field: "feedback.customer.email", do: grpcBad(func(fb *feedloopv1.Feedback) { fb.Customer.Email = "ada at example" })},
		{name: "email with CRLF", via: viaGRPC, field: "feedback.customer.email", msg: "CR, LF", do: grpcBad(func(fb *feedloopv1.Feedback) {
			fb.Customer.Email = "ada@example.com\r\nBcc: all@example.com"
		})},
		{name: "bad locale", via: viaGRPC, field: "feedback.customer.locale", do: grpcBad(func(fb *feedloopv1.Feedback) { fb.Customer.Locale = "english please" })},
		{name: "too many attributes", via: viaGRPC, field: "feedback.attributes", do: grpcBad(func(fb *feedloopv1.Feedback) { fb.Attributes = attrs })},
		{name: "occurred_at two days ahead", via: viaGRPC, field: "feedback.occurred_at", do: grpcBad(func(fb *feedloopv1.Feedback) {
			fb.OccurredAt = timestamppb.New(time.Now().Add(48 * time.Hour))
		})},
		{name: "in_reply_to not a UUID", via: viaGRPC, field: "feedback.in_reply_to", do: grpcBad(func(fb *feedloopv1.Feedback) { fb.InReplyTo = "T-1" })},
		{name: "no feedback at all", via: viaGRPC, field: "feedback", do: func(t *testing.T, e *env) outcome {
			_, err := e.grpc.Submit(ctxT(t), &feedloopv1.SubmitRequest{})
			return badRequest(t, err)
		}},
		{
			// A request that does not decode is refused by grpcserver's codec
			// with the field, not grpc-go's Internal.
			name: "invalid UTF-8 text over gRPC", via: viaGRPC, field: "feedback.text", msg: "must be valid UTF-8",
			do: func(t *testing.T, e *env) outcome {
				var resp feedloopv1.SubmitResponse
				req := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), withInvalidUTF8Text("helpdesk"))
				return badRequest(t, e.conn.Invoke(ctxT(t), "/feedloop.v1.IntakeService/Submit", rawBytes(req), &resp, grpc.ForceCodec(rawCodec{})))
			},
		},
		{name: "batch of 501", via: viaBatch, field: "items", msg: "at most 500 items, got 501", do: func(t *testing.T, e *env) outcome {
			items := make([]*feedloopv1.Feedback, 501)
			for i := range items {
				items[i] = feedback("helpdesk", fmt.Sprintf("batch-%d", i))
			}
			_, err := e.grpc.SubmitBatch(ctxT(t), &feedloopv1.SubmitBatchRequest{Items: items})
			return badRequest(t, err)
		}},
		{name: "bad item in a batch", via: viaBatch, field: "feedback.ces", do: func(t *testing.T, e *env) outcome {
			res, err := e.grpc.SubmitBatch(ctxT(t), &feedloopv1.SubmitBatchRequest{Items: []*feedloopv1.Feedback{
				mutated(func(fb *feedloopv1.Feedback) { fb.Ces = proto.Int32(0) }),
			}})
			if err != nil || len(res.GetResults()) != 1 || res.GetResults()[0].GetFeedbackId() != "" {
				t.Fatalf("SubmitBatch = %v, %v; want one rejected result", res, err)
			}
			var o outcome
			for _, v := range res.GetResults()[0].GetViolations() {
				o.fields = append(o.fields, v.GetField())
			}
			return o
		}},

		// Hostile input over gRPC.
		{name: "header injection: CRLF in customer name", via: viaGRPC, field: "feedback.customer.name", msg: "one line: no CR, LF", do: grpcBad(func(fb *feedloopv1.Feedback) {
			fb.Customer.Name = "Ada\r\nBcc: all@example.com"
		})},
		{name: "header injection: NUL in email", via: viaGRPC, field: "feedback.customer.email", msg: "control characters", do: grpcBad(func(fb *feedloopv1.Feedback) { fb.Customer.Email = "ada@example.com\x00" })},
		{name: "header injection: LF in subject", via: viaGRPC, field: "feedback.subject", msg: "one line", do: grpcBad(func(fb *feedloopv1.Feedback) { fb.Subject = "Hi\nX-Priority: 1" })},
		{name: "terminal escape in text", via: viaGRPC, field: "feedback.text", msg: "U+001B", do: grpcBad(func(fb *feedloopv1.Feedback) { fb.Text = "\x1b]0;owned\x07" })},
		{name: "path traversal in external_id", via: viaGRPC, field: "feedback.external_id", msg: "not a path", do: grpcBad(func(fb *feedloopv1.Feedback) { fb.ExternalId = "../../etc/passwd" })},
		{name: "backslash in external_id", via: viaGRPC, field: "feedback.external_id", msg: `no '\'`, do: grpcBad(func(fb *feedloopv1.Feedback) { fb.ExternalId = `..\..\boot.ini` })},
		{name: "path separator in source", via: viaGRPC, field: "feedback.source", msg: "a-z, 0-9", do: grpcBad(func(fb *feedloopv1.Feedback) { fb.Source = "help/desk" })},
		{name: "huge attribute map over gRPC", via: viaGRPC, field: "feedback.attributes", msg: "at most 64 entries, got 100000", do: func(t *testing.T, e *env) outcome {
			var resp feedloopv1.SubmitResponse
			err := e.conn.Invoke(ctxT(t), "/feedloop.v1.IntakeService/Submit", rawBytes(hugeMap), &resp, grpc.ForceCodec(rawCodec{}))
			return badRequest(t, err)
		}},
		{name: "attribute key with a newline", via: viaGRPC, field: "feedback.attributes", msg: "printable", do: grpcBad(func(fb *feedloopv1.Feedback) { fb.Attributes = map[string]string{"a\nb": "v"} })},
		{name: "negative channel number", via: viaGRPC, field: "feedback.channel", msg: "got -3", do: grpcBad(func(fb *feedloopv1.Feedback) { fb.Channel = -3 })},
		{name: "ces -2147483648", via: viaGRPC, field: "feedback.ces", do: grpcBad(func(fb *feedloopv1.Feedback) { fb.Ces = proto.Int32(-2147483648) })},
		{name: "10 MB gRPC message", via: viaGRPC, msg: "larger than max", do: grpcCode(codes.ResourceExhausted, invokeRaw("/feedloop.v1.IntakeService/Submit", tenMBProto))},
		{name: "truncated protobuf over gRPC", via: viaGRPC, field: "payload", msg: "did not decode",
			do: rawBad(protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), valid)[:len(valid)-3])},
		{name: "garbage bytes over gRPC", via: viaGRPC, field: "payload", msg: "did not decode",
			do: rawBad([]byte("\xde\xad\xbe\xef\xff\xff\xff\xff\xff\xff\xff"))},
		{name: "bad wire type over gRPC", via: viaGRPC, field: "payload", msg: "did not decode",
			do: rawBad(protowire.AppendTag(nil, 1, 6))},
		{name: "header injection in one batch item", via: viaBatch, field: "feedback.customer.email", do: func(t *testing.T, e *env) outcome {
			res, err := e.grpc.SubmitBatch(ctxT(t), &feedloopv1.SubmitBatchRequest{Items: []*feedloopv1.Feedback{
				mutated(func(fb *feedloopv1.Feedback) { fb.Customer.Email = "ada@example.com\nBcc: x@example.com" }),
			}})
			if err != nil || len(res.GetResults()) != 1 || res.GetResults()[0].GetFeedbackId() != "" {
				t.Fatalf("SubmitBatch = %v, %v; want one rejected result", res, err)
			}
			var o outcome
			for _, v := range res.GetResults()[0].GetViolations() {
				o.fields = append(o.fields, v.GetField())
			}
			return o
		}},

		// HTTP: 400 with {"error", "violations"}, or 405/413/415.
		{name: "invalid JSON", via: viaHTTP, field: "feedback.text", msg: "malformed", do: httpBad("application/json", `{"source":"web","text":}`, http.StatusBadRequest)},
		{name: "not a JSON object", via: viaHTTP, field: "feedback", do: httpBad("application/json", `["web"]`, http.StatusBadRequest)},
		{name: "wrong JSON type", via: viaHTTP, field: "feedback.nps", do: httpBad("application/json", `{"source":"web","externalId":"1","text":"t","nps":"ten"}`, http.StatusBadRequest)},
		{name: "wrong JSON type nested", via: viaHTTP, field: "feedback.customer.email", do: httpBad("application/json", `{"source":"web","customer":{"email":["a@b.c"]}}`, http.StatusBadRequest)},
		{name: "unknown enum name in JSON", via: viaHTTP, field: "feedback.channel", do: httpBad("application/json", `{"source":"web","externalId":"1","text":"t","channel":"CHANNEL_PIGEON"}`, http.StatusBadRequest)},
		{name: "unknown JSON field", via: viaHTTP, field: "feedback.colour", do: httpBad("application/json", `{"source":"web","colour":"red"}`, http.StatusBadRequest)},
		{name: "invalid UTF-8 in JSON", via: viaHTTP, field: "feedback.text", msg: "malformed", do: httpBad("application/json", "{\"source\":\"web\",\"externalId\":\"1\",\"text\":\"caf\xe9\"}", http.StatusBadRequest)},
		{name: "csat 6 over HTTP", via: viaHTTP, field: "feedback.csat", msg: "invalid feedback", do: httpJSONBad(func(fb *feedloopv1.Feedback) { fb.Csat = proto.Int32(6) })},
		{name: "missing external_id over HTTP", via: viaHTTP, field: "feedback.external_id", do: httpJSONBad(func(fb *feedloopv1.Feedback) { fb.ExternalId = "" })},
		{name: "text over 32 KiB over HTTP", via: viaHTTP, field: "feedback.text", do: httpJSONBad(func(fb *feedloopv1.Feedback) { fb.Text = big })},
		{name: "oversize HTTP body", via: viaHTTP, msg: "limit of 65536 bytes", do: func(t *testing.T, e *env) outcome {
			body, _ := protojson.Marshal(mutated(func(fb *feedloopv1.Feedback) { fb.Text = strings.Repeat("y", 70<<10) }))
			return httpBad("application/json", string(body), http.StatusRequestEntityTooLarge)(t, e)
		}},
		{name: "wrong content type", via: viaHTTP, msg: "application/json", do: httpBad("text/plain", `{"source":"web"}`, http.StatusUnsupportedMediaType)},
		{name: "no content type", via: viaHTTP, msg: "Content-Type", do: httpBad("", `{"source":"web"}`, http.StatusUnsupportedMediaType)},
		{name: "GET on /v1/feedback", via: viaHTTP, msg: "use POST", do: func(t *testing.T, e *env) outcome {
			req, _ := http.NewRequestWithContext(ctxT(t), http.MethodGet, e.base+"/v1/feedback", nil)
			code, body, hdr := e.do(t, req)
			if hdr.Get("Allow") != http.MethodPost {
				t.Errorf("Allow = %q, want POST", hdr.Get("Allow"))
			}
			return httpError(t, code, body, hdr, http.StatusMethodNotAllowed)
		}},

		// Hostile input over HTTP.
		{name: "NaN score in JSON", via: viaHTTP, field: "feedback.nps", do: httpBad("application/json", `{"source":"web","externalId":"1","nps":NaN}`, http.StatusBadRequest)},
		{name: "NaN score as a string", via: viaHTTP, field: "feedback.nps", do: httpBad("application/json", `{"source":"web","externalId":"1","nps":"NaN"}`, http.StatusBadRequest)},
		{name: "fractional score", via: viaHTTP, field: "feedback.csat", do: httpBad("application/json", `{"source":"web","externalId":"1","csat":4.5}`, http.StatusBadRequest)},
		{name: "score beyond int32", via: viaHTTP, field: "feedback.ces", do: httpBad("application/json", `{"source":"web","externalId":"1","ces":1e20}`, http.StatusBadRequest)},
		{name: "negative score in JSON", via: viaHTTP, field: "feedback.nps", msg: "got -5", do: httpBad("application/json", `{"source":"web","externalId":"1","nps":-5}`, http.StatusBadRequest)},
		{name: "boolean for a string", via: viaHTTP, field: "feedback.text", do: httpBad("application/json", `{"source":"web","externalId":"1","text":true}`, http.StatusBadRequest)},
		{name: "unknown enum number in JSON", via: viaHTTP, field: "feedback.channel", msg: "known Channel value", do: httpBad("application/json", `{"source":"web","externalId":"1","text":"t","channel":99}`, http.StatusBadRequest)},
		{name: "deeply nested JSON object", via: viaHTTP, field: "feedback.customer.consent.contact", do: httpBad("application/json",
			`{"source":"web","customer":{"consent":{"contact":`+nested(10000, "1")+`}}}`, http.StatusBadRequest)},
		{name: "deeply nested JSON array", via: viaHTTP, field: "feedback.text", do: httpBad("application/json",
			`{"source":"web","text":`+strings.Repeat("[", 20000)+strings.Repeat("]", 20000)+`}`, http.StatusBadRequest)},
		{name: "duplicate JSON field", via: viaHTTP, field: "feedback.source", msg: "duplicate", do: httpBad("application/json", `{"source":"web","source":"crm"}`, http.StatusBadRequest)},
		{name: "empty body", via: viaHTTP, field: "feedback", do: httpBad("application/json", ``, http.StatusBadRequest)},
		{name: "JSON null", via: viaHTTP, field: "feedback", do: httpBad("application/json", `null`, http.StatusBadRequest)},
		{name: "trailing data after the object", via: viaHTTP, field: "feedback", do: httpBad("application/json", `{"source":"web"} {"source":"crm"}`, http.StatusBadRequest)},
		{name: "occurred_at not a timestamp", via: viaHTTP, field: "feedback.occurred_at", do: httpBad("application/json", `{"source":"web","externalId":"1","text":"t","occurredAt":"yesterday"}`, http.StatusBadRequest)},
		{name: "header injection in JSON name", via: viaHTTP, field: "feedback.customer.name", msg: "invalid feedback", do: httpBad("application/json",
			`{"source":"web","externalId":"1","text":"t","customer":{"name":"Ada\r\nBcc: all@example.com"}}`, http.StatusBadRequest)},
		{name: "header injection in JSON email", via: viaHTTP, field: "feedback.customer.email", do: httpBad("application/json",
			`{"source":"web","externalId":"1","text":"t","customer":{"email":"ada@example.com\r\nBcc: all@example.com"}}`, http.StatusBadRequest)},
		{name: "NUL escaped in JSON text", via: viaHTTP, field: "feedback.text", msg: "invalid feedback", do: httpBad("application/json", `{"source":"web","externalId":"1","text":"a\u0000b"}`, http.StatusBadRequest)},
		{name: "lone surrogate escape in JSON", via: viaHTTP, field: "feedback.text", do: httpBad("application/json", `{"source":"web","externalId":"1","text":"\ud800"}`, http.StatusBadRequest)},
		{name: "path traversal in external_id over HTTP", via: viaHTTP, field: "feedback.external_id", msg: "not a path", do: httpJSONBad(func(fb *feedloopv1.Feedback) { fb.ExternalId = "a/../../b" })},
		{name: "huge attribute map over HTTP", via: viaHTTP, field: "feedback.attributes", msg: "got 5000", do: httpJSONBad(func(fb *feedloopv1.Feedback) { fb.Attributes = manyAttrs(5000) })},
		{name: "10 MB body with Content-Length", via: viaHTTP, msg: "limit of 65536 bytes", do: httpBad("application/json", string(tenMBJSON), http.StatusRequestEntityTooLarge)},
		{name: "10 MB chunked body", via: viaHTTP, msg: "limit of 65536 bytes", do: httpChunked(tenMBJSON, http.StatusRequestEntityTooLarge)},

		// NATS: dead-lettered to feedback.dlq.intake, the error header names the field.
		{name: "garbage bytes on NATS", via: viaNATS, field: "payload", msg: "protobuf-encoded feedloop.v1.Feedback", do: natsBad(bus.SubmitSubject("helpdesk"), []byte("{\"json\": \"is not protobuf\"}\xff\xff"))},
		{name: "truncated protobuf on NATS", via: viaNATS, field: "payload", do: natsBad(bus.SubmitSubject("helpdesk"), valid[:len(valid)-5])},
		{name: "invalid UTF-8 text on NATS", via: viaNATS, field: "feedback.text", msg: "must be valid UTF-8", do: natsBad(bus.SubmitSubject("helpdesk"), withInvalidUTF8Text("helpdesk"))},
		{name: "source differs from subject", via: viaNATS, field: "feedback.source", msg: `must match the subject's source "helpdesk"`, do: natsFeedbackBad(bus.SubmitSubject("helpdesk"), func(fb *feedloopv1.Feedback) { fb.Source = "crm" })},
		{name: "subject source not a valid token", via: viaNATS, field: "feedback.source", do: natsFeedbackBad(bus.SubmitSubject("Help$Desk"), func(fb *feedloopv1.Feedback) { fb.Source = "" })},
		{name: "nps 11 on NATS", via: viaNATS, field: "feedback.nps", do: natsFeedbackBad(bus.SubmitSubject("helpdesk"), func(fb *feedloopv1.Feedback) { fb.Nps = proto.Int32(11) })},
		{name: "missing text and external_id on NATS", via: viaNATS, field: "feedback.external_id", msg: "feedback.text: is required", do: natsFeedbackBad(bus.SubmitSubject("helpdesk"), func(fb *feedloopv1.Feedback) {
			fb.ExternalId, fb.Text = "", ""
			fb.Nps, fb.Csat, fb.Ces = nil, nil, nil
		})},
		{name: "empty payload on NATS", via: viaNATS, field: "feedback.external_id", do: natsBad(bus.SubmitSubject("helpdesk"), []byte{})},
		{name: "unknown enum number on NATS", via: viaNATS, field: "feedback.channel", msg: "got 42", do: natsFeedbackBad(bus.SubmitSubject("helpdesk"), func(fb *feedloopv1.Feedback) { fb.Channel = 42 })},
		{name: "header injection on NATS", via: viaNATS, field: "feedback.customer.name", msg: "one line", do: natsFeedbackBad(bus.SubmitSubject("helpdesk"), func(fb *feedloopv1.Feedback) {
			fb.Customer.Name = "Ada\nBcc: all@example.com"
		})},
		{name: "path traversal in external_id on NATS", via: viaNATS, field: "feedback.external_id", msg: "not a path", do: natsFeedbackBad(bus.SubmitSubject("helpdesk"), func(fb *feedloopv1.Feedback) {
			fb.ExternalId = "../secrets"
		})},
		{name: "huge attribute map on NATS", via: viaNATS, field: "feedback.attributes", msg: "got 10000", do: natsFeedbackBad(bus.SubmitSubject("helpdesk"), func(fb *feedloopv1.Feedback) {
			fb.Attributes = manyAttrs(10000)
		})},
		{name: "negative score on NATS", via: viaNATS, field: "feedback.ces", do: natsFeedbackBad(bus.SubmitSubject("helpdesk"), func(fb *feedloopv1.Feedback) { fb.Ces = proto.Int32(-1) })},
		{name: "10 MB on NATS", via: viaNATS, refusedByNATS: true, msg: "maximum payload exceeded", do: func(t *testing.T, e *env) outcome {
			_, err := e.bus.PublishData(ctxT(t), bus.SubmitSubject("helpdesk"), "ten-mb", tenMBProto, nil)
			if err == nil {
				t.Fatal("a 10 MB submission was accepted by NATS")
			}
			return outcome{msg: err.Error()}
		}},
	}

	e := start(t, testConfig())
	var accepted uint64
	natsCases := uint64(0)
	for i, tt := range tests {
		if !t.Run(tt.name, func(t *testing.T) {
			o := tt.do(t, e)
			if tt.field != "" && !o.names(tt.field) {
				t.Errorf("rejection does not name %s: fields %v, message %q", tt.field, o.fields, o.msg)
			}
			if tt.msg != "" && !strings.Contains(o.msg, tt.msg) {
				t.Errorf("message %q does not contain %q", o.msg, tt.msg)
			}
			if n := e.feedbackCount(t); n != accepted {
				t.Fatalf("the FEEDBACK stream holds %d events after a rejected request, want %d", n, accepted)
			}
			// The service still serves a valid request on the same transport.
			e.submitValid(t, tt.via, fmt.Sprintf("ok-%d", i))
			accepted++
			e.waitReceived(t, accepted)
		}) {
			// Later cases count on this one's bookkeeping.
			t.FailNow()
		}
		if tt.via == viaNATS && !tt.refusedByNATS {
			natsCases++
		}
	}
	if len(tests) < 50 {
		t.Fatalf("only %d cases", len(tests))
	}
	// Every event is one of the valid follow-ups, each exactly once.
	evs, _ := e.received(t)
	seen := map[string]bool{}
	for _, ev := range evs {
		ext := ev.GetReceived().GetFeedback().GetExternalId()
		if !strings.HasPrefix(ext, "ok-") || seen[ext] {
			t.Errorf("unexpected event for external_id %q", ext)
		}
		seen[ext] = true
	}
	if n := dlqCount(t, e); n != natsCases {
		t.Errorf("%d dead letters, want %d (one per bad NATS submission, none for the valid ones)", n, natsCases)
	}
}

// submitValid sends a valid item over via and checks it is accepted.
func (e *env) submitValid(t *testing.T, via, ext string) {
	t.Helper()
	fb := feedback("okay", ext)
	switch via {
	case viaGRPC:
		res, err := e.grpc.Submit(ctxT(t), &feedloopv1.SubmitRequest{Feedback: fb})
		if err != nil || res.GetDuplicate() {
			t.Fatalf("valid Submit = %v, %v", res, err)
		}
	case viaBatch:
		res, err := e.grpc.SubmitBatch(ctxT(t), &feedloopv1.SubmitBatchRequest{Items: []*feedloopv1.Feedback{fb}})
		if err != nil || len(res.GetResults()) != 1 || res.GetResults()[0].GetFeedbackId() == "" {
			t.Fatalf("valid SubmitBatch = %v, %v", res, err)
		}
	case viaHTTP:
		body, _ := protojson.Marshal(fb)
		if code, resp, _ := e.post(t, "application/json", body); code != http.StatusAccepted {
			t.Fatalf("valid POST = %d %s", code, resp)
		}
	case viaNATS:
		fb.Source = ""
		data, _ := proto.Marshal(fb)
		if _, err := e.bus.PublishData(ctxT(t), bus.SubmitSubject("okay"), "ok-"+ext, data, nil); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("unknown transport %q", via)
	}
}
