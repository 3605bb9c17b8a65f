package grpcserver_test

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/feedloop/feedloop/pkg/grpcserver"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// raw is a client codec sending and receiving bytes as they are, so a test
// can put any frame on the wire.
type raw struct{}

func (raw) Name() string { return "proto" }
func (raw) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}
func (raw) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

// counting is an IntakeService that counts the requests reaching it.
type counting struct {
	feedloopv1.UnimplementedIntakeServiceServer
	calls atomic.Int32
}

func (c *counting) Submit(context.Context, *feedloopv1.SubmitRequest) (*feedloopv1.SubmitResponse, error) {
	c.calls.Add(1)
	return &feedloopv1.SubmitResponse{FeedbackId: "ok"}, nil
}

// malformedFrames are the wire bytes of malformed SubmitRequests, and the
// field each must be refused on.
func malformedFrames(t testing.TB) map[string]struct {
	Frame []byte
	Field string
} {
	t.Helper()
	valid, err := proto.Marshal(&feedloopv1.SubmitRequest{Feedback: &feedloopv1.Feedback{Source: "helpdesk", ExternalId: "T-1", Text: "hello there"}})
	if err != nil {
		t.Fatal(err)
	}
	fbField := (&feedloopv1.SubmitRequest{}).ProtoReflect().Descriptor().Fields().ByName("feedback").Number()
	textField := (&feedloopv1.Feedback{}).ProtoReflect().Descriptor().Fields().ByName("text").Number()
	inner := protowire.AppendTag(nil, textField, protowire.BytesType)
	inner = protowire.AppendBytes(inner, []byte("good \xff\xfe bad"))
	badUTF8 := protowire.AppendTag(nil, fbField, protowire.BytesType)
	badUTF8 = protowire.AppendBytes(badUTF8, inner)
	return map[string]struct {
		Frame []byte
		Field string
	}{
		"truncated":       {valid[:len(valid)-4], "payload"},
		"invalid UTF-8":   {badUTF8, "feedback.text"},
		"garbage":         {[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "payload"},
		"bad wire type":   {protowire.AppendTag(nil, fbField, 7), "payload"},
		"length past end": {protowire.AppendVarint(protowire.AppendTag(nil, fbField, protowire.BytesType), 1<<20), "payload"},
		"end group alone": {protowire.AppendTag(nil, fbField, protowire.EndGroupType), "payload"},
	}
}

// wantBadRequest checks err is InvalidArgument with a BadRequest on field.
func wantBadRequest(t *testing.T, err error, field string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("err = %v, want InvalidArgument", err)
	}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) > 0 {
			if v := br.GetFieldViolations()[0]; v.GetField() != field || v.GetDescription() == "" {
				t.Fatalf("violation %v, want one on %s", v, field)
			}
			return
		}
	}
	t.Fatalf("InvalidArgument without a BadRequest: %v", st.Details())
}

// Raw frames on the wire: a request that does not decode is refused as
// InvalidArgument naming the field (or the payload) before the caller's
// interceptors (authentication) and the service, and leaves nothing
// behind; a valid one passes. Without the codec grpc-go answers Internal.
func TestMalformedRequestsAreInvalidArgument(t *testing.T) {
	var intercepted atomic.Int32
	auth := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		intercepted.Add(1)
		return next(ctx, req)
	}
	s := grpcserver.New(slog.New(slog.NewTextHandler(io.Discard, nil)), grpc.ChainUnaryInterceptor(auth))
	svc := &counting{}
	feedloopv1.RegisterIntakeServiceServer(s, svc)
	cc := serve(t, s, grpc.WithDefaultCallOptions(grpc.ForceCodecV2(raw{})))

	for name, c := range malformedFrames(t) {
		t.Run(name, func(t *testing.T) {
			var out []byte
			err := cc.Invoke(t.Context(), "/feedloop.v1.IntakeService/Submit", &c.Frame, &out)
			wantBadRequest(t, err, c.Field)
		})
	}
	if n, i := svc.calls.Load(), intercepted.Load(); n != 0 || i != 0 {
		t.Fatalf("malformed requests reached the service %d times and the interceptor %d times", n, i)
	}

	valid, _ := proto.Marshal(&feedloopv1.SubmitRequest{Feedback: &feedloopv1.Feedback{Source: "helpdesk", ExternalId: "T-1", Text: "hi"}})
	var out []byte
	if err := cc.Invoke(t.Context(), "/feedloop.v1.IntakeService/Submit", &valid, &out); err != nil || svc.calls.Load() != 1 {
		t.Fatalf("valid request: %v (%d calls)", err, svc.calls.Load())
	}

	// A stream's message goes through the same check (reflection is one).
	st, err := cc.NewStream(t.Context(), &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
	if err != nil {
		t.Fatal(err)
	}
	garbage := []byte{0xff, 0xff, 0xff}
	if err := st.SendMsg(&garbage); err != nil {
		t.Fatal(err)
	}
	wantBadRequest(t, st.RecvMsg(&out), "payload")

	if n := s.Pending(); n != 0 {
		t.Fatalf("%d refused requests still recorded", n)
	}
}
