package grpcserver_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/feedloop/feedloop/pkg/grpcserver"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// panicky stands in for any handler with a bug.
type panicky struct {
	feedloopv1.UnimplementedIntakeServiceServer
}

func (panicky) Submit(context.Context, *feedloopv1.SubmitRequest) (*feedloopv1.SubmitResponse, error) {
	panic("nil pointer somewhere")
}

func TestServerHealthRecoveryAndGracefulStop(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpcserver.New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	feedloopv1.RegisterIntakeServiceServer(s, panicky{})
	s.Health.SetServingStatus("svc", healthpb.HealthCheckResponse_SERVING)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, lis) }()

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	check := func() (*healthpb.HealthCheckResponse, error) {
		return health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "svc"})
	}
	if resp, err := check(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v", resp, err)
	}

	// A panicking handler answers Internal and the server keeps serving.
	_, err = feedloopv1.NewIntakeServiceClient(conn).Submit(context.Background(), &feedloopv1.SubmitRequest{})
	if status.Code(err) != codes.Internal {
		t.Fatalf("panicking handler: %v, want Internal", err)
	}
	if _, err := check(); err != nil {
		t.Fatalf("server stopped serving after a panic: %v", err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v after cancel, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not stop")
	}
}

// NewTraced's server spans go to the provider it is given, not the global
// one: each service of `feedloop dev` has its own.
func TestServerSpansGoToItsProvider(t *testing.T) {
	global, own := tracetest.NewSpanRecorder(), tracetest.NewSpanRecorder()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(global)))
	t.Cleanup(func() { otel.SetTracerProvider(prev) })
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpcserver.NewTraced(slog.New(slog.NewTextHandler(io.Discard, nil)), sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(own)))
	feedloopv1.RegisterIntakeServiceServer(s, panicky{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.Serve(ctx, lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = feedloopv1.NewIntakeServiceClient(conn).Submit(context.Background(), &feedloopv1.SubmitRequest{})
	// The server span ends as the response is written, maybe after the
	// client has it.
	testkit.Eventually(t, "the server span", func() bool { return len(own.Ended()) > 0 })
	if got := own.Ended(); len(got) != 1 || got[0].Name() != "feedloop.v1.IntakeService/Submit" || got[0].SpanKind() != trace.SpanKindServer {
		t.Fatalf("own provider's spans %v, want the Submit server span", got)
	}
	if n := len(global.Ended()); n != 0 {
		t.Errorf("%d spans went to the global provider", n)
	}
}
