package grpcserver

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/feedloop/feedloop/pkg/protodecode"
)

// malformed makes a request that does not decode (truncated, garbage, a
// bad wire type, invalid UTF-8 in a string) InvalidArgument with a
// BadRequest naming the field, instead of grpc-go's Internal: bad client
// input is never a server error.
//
// grpc-go turns any codec error into Internal before an interceptor or the
// service sees the request, so the codec does not fail: it records why the
// message did not decode, and the interceptors, which run next, refuse it.
type malformed struct {
	base encoding.CodecV2
	// bad maps a request message that did not decode to its violation.
	// Every entry is taken out by the interceptors: a unary request always
	// passes them, and a stream's messages are read through them.
	bad sync.Map
}

func newMalformed() *malformed {
	return &malformed{base: encoding.GetCodecV2(protocodec.Name)}
}

// Name is the proto codec's: the codec serves application/grpc+proto.
func (m *malformed) Name() string { return m.base.Name() }

// Marshal encodes responses as the proto codec does.
func (m *malformed) Marshal(v any) (mem.BufferSlice, error) { return m.base.Marshal(v) }

// Unmarshal decodes as the proto codec does; a message that does not
// decode is reset and recorded for the interceptors.
func (m *malformed) Unmarshal(data mem.BufferSlice, v any) error {
	err := m.base.Unmarshal(data, v)
	msg, ok := v.(proto.Message)
	if err == nil || !ok {
		return err
	}
	viol := protodecode.Explain(msg.ProtoReflect().Descriptor(), data.Materialize(), err, "")
	proto.Reset(msg)
	m.bad.Store(v, viol)
	return nil
}

// refusal takes req's record: the status refusing it, or nil if it decoded.
func (m *malformed) refusal(req any) error {
	r, ok := m.bad.LoadAndDelete(req)
	if !ok {
		return nil
	}
	v := r.(protodecode.Violation)
	st := status.New(codes.InvalidArgument, fmt.Sprintf("invalid request: %s: %s", v.Field, v.Description))
	if d, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
		{Field: v.Field, Description: v.Description},
	}}); err == nil {
		st = d
	}
	return st.Err()
}

func (m *malformed) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	if err := m.refusal(req); err != nil {
		return nil, err
	}
	return next(ctx, req)
}

func (m *malformed) stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, next grpc.StreamHandler) error {
	return next(srv, &checkedStream{ServerStream: ss, m: m})
}

// checkedStream refuses a stream's message that did not decode.
type checkedStream struct {
	grpc.ServerStream
	m *malformed
}

func (s *checkedStream) RecvMsg(msg any) error {
	if err := s.ServerStream.RecvMsg(msg); err != nil {
		return err
	}
	return s.m.refusal(msg)
}
