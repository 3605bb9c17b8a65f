package grpcport

import (
	"context"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/feedloop/feedloop/services/intake/internal/accept"
	"github.com/feedloop/feedloop/services/intake/internal/decode"
	"github.com/feedloop/feedloop/services/intake/validate"
)

// Malformed makes a request that does not decode (truncated, garbage, a
// bad wire type, invalid UTF-8 in a string) InvalidArgument with a
// BadRequest naming the field, instead of grpc-go's Internal.
//
// grpc-go turns any codec error into Internal before an interceptor or the
// service sees the request, so the codec does not fail: it records why the
// message did not decode, and the interceptors, which run next, refuse it.
type Malformed struct {
	base encoding.CodecV2
	// bad maps a request message that did not decode to its violations.
	// Every entry is taken out by the interceptors: a unary request always
	// passes them, and a stream's messages are read through them.
	bad sync.Map
}

// NewMalformed returns the codec over grpc-go's proto codec.
func NewMalformed() *Malformed {
	return &Malformed{base: encoding.GetCodecV2(protocodec.Name)}
}

// ServerOptions install the codec and its interceptors. They must come
// before any other interceptor: one that refused a request first (auth)
// would leave its entry behind; and a malformed request is refused before
// authentication, as grpc-go refused it before.
func (m *Malformed) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ForceServerCodecV2(m),
		grpc.ChainUnaryInterceptor(m.unary),
		grpc.ChainStreamInterceptor(m.stream),
	}
}

// Name is the proto codec's: the codec serves application/grpc+proto.
func (m *Malformed) Name() string { return m.base.Name() }

// Marshal encodes responses as the proto codec does.
func (m *Malformed) Marshal(v any) (mem.BufferSlice, error) { return m.base.Marshal(v) }

// Unmarshal decodes as the proto codec does; a message that does not
// decode is reset and recorded for the interceptors.
func (m *Malformed) Unmarshal(data mem.BufferSlice, v any) error {
	err := m.base.Unmarshal(data, v)
	msg, ok := v.(proto.Message)
	if err == nil || !ok {
		return err
	}
	vs := decode.Request(msg.ProtoReflect().Descriptor(), data.Materialize(), err)
	proto.Reset(msg)
	m.bad.Store(v, vs)
	return nil
}

// refusal takes req's record: the status refusing it, or nil if it decoded.
func (m *Malformed) refusal(req any) error {
	vs, ok := m.bad.LoadAndDelete(req)
	if !ok {
		return nil
	}
	return Status(accept.Invalid(vs.([]validate.Violation)))
}

func (m *Malformed) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	if err := m.refusal(req); err != nil {
		return nil, err
	}
	return next(ctx, req)
}

func (m *Malformed) stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, next grpc.StreamHandler) error {
	return next(srv, &checkedStream{ServerStream: ss, m: m})
}

// checkedStream refuses a stream's message that did not decode.
type checkedStream struct {
	grpc.ServerStream
	m *Malformed
}

func (s *checkedStream) RecvMsg(msg any) error {
	if err := s.ServerStream.RecvMsg(msg); err != nil {
		return err
	}
	return s.m.refusal(msg)
}
