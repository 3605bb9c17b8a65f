// Package grpcserver builds the gRPC server every feedloop service uses:
// health and reflection registered, OpenTelemetry stats handler, panic
// recovery, bounded message sizes, and a request that does not decode
// refused as InvalidArgument naming the field (malformed.go).
package grpcserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
)

// DefaultMaxRecvBytes bounds a request message.
const DefaultMaxRecvBytes = 4 << 20

// StreamWorkers is how many long-lived goroutines run the calls a server
// receives. Without them grpc-go starts a goroutine per call, whose stack
// grows by copying as the call goes deeper (intake's Submit: about 1 % of
// the pipeline's CPU in issue 18's profile); a worker keeps its grown stack.
// A call that finds every worker busy (a long Watch stream holds one) gets
// a goroutine of its own, as without workers, so the number bounds nothing.
// (The option is marked experimental in grpc-go; without it calls only
// cost more.)
const StreamWorkers = 64

// Server is a gRPC server with its health service.
type Server struct {
	*grpc.Server
	Health    *health.Server
	log       *slog.Logger
	malformed *malformed
}

// New returns a server with health, reflection, tracing (to the global
// tracer provider), recovery and malformed requests refused. Register
// services on it, then Serve. The interceptors in opts run after those: a
// malformed request is refused before authentication, as grpc-go's codec
// refused it before.
func New(log *slog.Logger, opts ...grpc.ServerOption) *Server {
	return NewTraced(log, nil, opts...)
}

// NewTraced is New with the server spans going to tp (nil: the global
// tracer provider), for a process running several services, each with its
// own provider.
func NewTraced(log *slog.Logger, tp trace.TracerProvider, opts ...grpc.ServerOption) *Server {
	s := &Server{log: log, Health: health.NewServer()}
	m := newMalformed()
	s.malformed = m
	var traced []otelgrpc.Option
	if tp != nil {
		traced = append(traced, otelgrpc.WithTracerProvider(tp))
	}
	base := []grpc.ServerOption{
		grpc.StatsHandler(otelgrpc.NewServerHandler(traced...)),
		grpc.MaxRecvMsgSize(DefaultMaxRecvBytes),
		grpc.NumStreamWorkers(StreamWorkers),
		grpc.ForceServerCodecV2(m),
		grpc.ChainUnaryInterceptor(s.recoverUnary, m.unary),
		grpc.ChainStreamInterceptor(s.recoverStream, m.stream),
	}
	s.Server = grpc.NewServer(append(base, opts...)...)
	healthpb.RegisterHealthServer(s.Server, s.Health)
	reflection.Register(s.Server)
	return s
}

// Serve serves on lis until ctx is cancelled, then stops gracefully:
// health turns NOT_SERVING first so load balancers stop sending.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	stop := context.AfterFunc(ctx, func() {
		s.Health.Shutdown()
		s.GracefulStop()
	})
	defer stop()
	if err := s.Server.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("grpc serve: %w", err)
	}
	return nil
}

func (s *Server) recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.ErrorContext(ctx, "grpc: handler panicked", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
			err = status.Error(codes.Internal, "internal error")
		}
	}()
	return h(ctx, req)
}

func (s *Server) recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("grpc: stream handler panicked", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
			err = status.Error(codes.Internal, "internal error")
		}
	}()
	return h(srv, ss)
}
