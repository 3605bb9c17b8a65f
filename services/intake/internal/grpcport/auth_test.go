package grpcport_test

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/feedloop/feedloop/pkg/apikey"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/intake/internal/auth"
	"github.com/feedloop/feedloop/services/intake/internal/auth/authtest"
	"github.com/feedloop/feedloop/services/intake/internal/grpcport"
)

// echo answers Submit with the authenticated caller as the feedback id.
type echo struct {
	feedloopv1.UnimplementedIntakeServiceServer
}

func (echo) Submit(ctx context.Context, _ *feedloopv1.SubmitRequest) (*feedloopv1.SubmitResponse, error) {
	c, ok := auth.CallerFrom(ctx)
	if !ok {
		return nil, status.Error(codes.Internal, "no caller in the context")
	}
	return &feedloopv1.SubmitResponse{FeedbackId: c.Source + "/" + c.Key}, nil
}

func TestInterceptors(t *testing.T) {
	var refused atomic.Int64
	a, cur := authtest.Authenticator(t, &refused)
	unary, stream := grpcport.AuthInterceptors("/feedloop.v1.IntakeService/", a)
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(unary), grpc.ChainStreamInterceptor(stream))
	feedloopv1.RegisterIntakeServiceServer(srv, echo{})
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	client := feedloopv1.NewIntakeServiceClient(conn)
	submit := func(md ...string) (string, error) {
		ctx := t.Context()
		if len(md) > 0 {
			ctx = metadata.AppendToOutgoingContext(ctx, md...)
		}
		res, err := client.Submit(ctx, &feedloopv1.SubmitRequest{})
		return res.GetFeedbackId(), err
	}

	if got, err := submit("authorization", "Bearer live"); err != nil || got != "helpdesk/zendesk" {
		t.Fatalf("valid key = %q, %v; want the caller helpdesk/zendesk", got, err)
	}
	for _, tc := range []struct {
		name string
		md   []string
		msg  string
	}{
		{"missing", nil, `missing API key: send "authorization: Bearer <API key>"`},
		{"not bearer", []string{"authorization", "Basic bGl2ZQ=="}, `want "Bearer <API key>"`},
		{"unknown", []string{"authorization", "Bearer nope"}, "unknown API key"},
		{"expired", []string{"authorization", "Bearer old"}, "key expired on 2026-12-01T11:00:00Z; ask for a new one"},
		{"revoked", []string{"authorization", "Bearer gone"}, "key revoked"},
	} {
		_, err := submit(tc.md...)
		if status.Code(err) != codes.Unauthenticated || !strings.Contains(status.Convert(err).Message(), tc.msg) {
			t.Errorf("%s: %v; want Unauthenticated with %q", tc.name, err, tc.msg)
		}
	}
	if n := refused.Load(); n != 5 {
		t.Errorf("%d refusals counted, want 5", n)
	}

	// Health stays open.
	if _, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("health without a key: %v", err)
	}

	// A new key set applies to the next call: "live" revoked, "fresh" added.
	next, err := apikey.NewSet([]apikey.Entry{
		{Scope: "helpdesk", SHA256: apikey.Hash("live"), Revoked: true},
		{Scope: "survey", Name: "typeform", SHA256: apikey.Hash("fresh")},
	})
	if err != nil {
		t.Fatal(err)
	}
	cur.Store(next)
	if _, err := submit("authorization", "Bearer live"); status.Code(err) != codes.Unauthenticated {
		t.Errorf("revoked by reload: %v, want Unauthenticated", err)
	}
	if got, err := submit("authorization", "Bearer fresh"); err != nil || got != "survey/typeform" {
		t.Errorf("added by reload: %q, %v", got, err)
	}
}
