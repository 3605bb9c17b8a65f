package grpcserver_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/feedloop/feedloop/pkg/grpcserver"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// goroutines records which goroutine ran each call.
type goroutines struct {
	feedloopv1.UnimplementedIntakeServiceServer
	mu  sync.Mutex
	ids map[string]bool
}

func (g *goroutines) Submit(context.Context, *feedloopv1.SubmitRequest) (*feedloopv1.SubmitResponse, error) {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)] // "goroutine 123 [running]:..."
	id, _, _ := bytes.Cut(bytes.TrimPrefix(buf, []byte("goroutine ")), []byte(" "))
	g.mu.Lock()
	g.ids[string(id)] = true
	g.mu.Unlock()
	return &feedloopv1.SubmitResponse{}, nil
}

// serve starts s on loopback and returns a client connection to it, dialled
// with opts too; both stop when the test ends.
func serve(t *testing.T, s *grpcserver.Server, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		cancel()
		<-done
	})
	return conn
}

// Calls run on the server's long-lived workers, which keep their grown
// stacks, rather than on a new goroutine each (Go never reuses a
// goroutine's id, so without workers every call would have its own).
func TestCallsRunOnReusedGoroutines(t *testing.T) {
	s := grpcserver.New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	g := &goroutines{ids: map[string]bool{}}
	feedloopv1.RegisterIntakeServiceServer(s, g)
	client := feedloopv1.NewIntakeServiceClient(serve(t, s))
	const calls = 4 * grpcserver.StreamWorkers
	for range calls {
		if _, err := client.Submit(t.Context(), &feedloopv1.SubmitRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	// About the workers' number: a call finding no worker ready (one not
	// yet parked) gets its own goroutine, so leave room for a few.
	if n := len(g.ids); n > calls/2 {
		t.Errorf("%d calls ran on %d goroutines, want about the %d workers", calls, n, grpcserver.StreamWorkers)
	}
}

// Streams that stay open (as TeamService.Watch does) hold a worker each;
// once every worker is held, a call still gets served on a goroutine of
// its own.
func TestCallsBeyondBusyWorkersAreServed(t *testing.T) {
	s := grpcserver.New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.Health.SetServingStatus("svc", healthpb.HealthCheckResponse_SERVING)
	health := healthpb.NewHealthClient(serve(t, s))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	for range grpcserver.StreamWorkers + 1 {
		w, err := health.Watch(ctx, &healthpb.HealthCheckRequest{Service: "svc"})
		if err != nil {
			t.Fatal(err)
		}
		// Its first answer: the stream's handler runs, and stays.
		if _, err := w.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	cctx, ccancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer ccancel()
	resp, err := health.Check(cctx, &healthpb.HealthCheckRequest{Service: "svc"})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("check with every worker held by a stream: %v, %v", resp, err)
	}
}
