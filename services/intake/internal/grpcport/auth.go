package grpcport

import (
	"context"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/feedloop/feedloop/services/intake/internal/auth"
)

// AuthInterceptors guard every method whose full name starts with prefix
// (e.g. "/feedloop.v1.IntakeService/"): health and reflection stay open. A
// call without a valid key fails with Unauthenticated. They are server
// options, so the wiring installs them on the server the port is
// registered on.
func AuthInterceptors(prefix string, a *auth.Authenticator) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	unary := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if !strings.HasPrefix(info.FullMethod, prefix) {
			return h(ctx, req)
		}
		ctx, err := authenticate(ctx, a)
		if err != nil {
			return nil, err
		}
		return h(ctx, req)
	}
	stream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if !strings.HasPrefix(info.FullMethod, prefix) {
			return h(srv, ss)
		}
		ctx, err := authenticate(ss.Context(), a)
		if err != nil {
			return err
		}
		return h(srv, &callerStream{ServerStream: ss, ctx: ctx})
	}
	return unary, stream
}

// authenticate returns ctx with the caller of its "authorization" metadata.
func authenticate(ctx context.Context, a *auth.Authenticator) (context.Context, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	var v string
	if len(vals) > 0 {
		v = vals[0]
	}
	c, err := a.Authenticate(ctx, v, len(vals) > 0, "authorization")
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	return auth.WithCaller(ctx, c), nil
}

type callerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *callerStream) Context() context.Context { return s.ctx }
