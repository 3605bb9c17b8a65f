package teamauth_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/feedloop/feedloop/services/router/internal/teamauth"
)

func tokens(t *testing.T) *teamauth.Tokens {
	t.Helper()
	toks, err := teamauth.Parse([]byte("tokens:\n" +
		"  - {team: billing, name: alice, sha256: " + teamauth.Hash("billing-secret-1") + "}\n" +
		"  - {team: product, sha256: " + teamauth.Hash("product-secret-1") + "}\n"))
	if err != nil {
		t.Fatal(err)
	}
	return toks
}

func TestParseErrorsNameTheEntry(t *testing.T) {
	for in, want := range map[string]string{
		"tokens:\n  - {team: Billing, sha256: " + teamauth.Hash("x") + "}\n":                                              "tokens[0].team",
		"tokens:\n  - {team: billing, sha256: abc}\n":                                                                     "tokens[0].sha256",
		"tokens:\n  - {team: a, sha256: " + teamauth.Hash("x") + "}\n  - {team: b, sha256: " + teamauth.Hash("x") + "}\n": "tokens[1].sha256: the same token",
		"tokens:\n  - {team: a, token: x}\n":                                                                              "field token not found",
	} {
		_, err := teamauth.Parse([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", in, err, want)
		}
	}
}

func TestLookup(t *testing.T) {
	toks := tokens(t)
	if p, ok := toks.Lookup("billing-secret-1"); !ok || p != (teamauth.Principal{Team: "billing", Name: "alice"}) {
		t.Fatalf("billing = %v %v", p, ok)
	}
	if p, _ := toks.Lookup("product-secret-1"); p.Name != "product" {
		t.Fatalf("a token without a name acts as its team, got %q", p.Name)
	}
	for _, bad := range []string{"", "billing-secret-2", teamauth.Hash("billing-secret-1")} {
		if _, ok := toks.Lookup(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}

// The interceptors guard only the prefixed methods; a guarded handler sees
// the principal; bad or missing tokens get Unauthenticated.
func TestInterceptors(t *testing.T) {
	toks := tokens(t)
	unary, stream := teamauth.Interceptors("/grpc.health.v1.Health/Check", func() *teamauth.Tokens { return toks })
	var seen teamauth.Principal
	spy := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		seen, _ = teamauth.FromContext(ctx)
		return h(ctx, req)
	}
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(unary, spy), grpc.ChainStreamInterceptor(stream))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	h := healthpb.NewHealthClient(cc)
	call := func(auth string) error {
		ctx := t.Context()
		if auth != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", auth)
		}
		_, err := h.Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	if err := call("Bearer billing-secret-1"); err != nil || seen.Team != "billing" {
		t.Fatalf("good token: %v, principal %v", err, seen)
	}
	for _, auth := range []string{"", "Bearer nope", "Basic billing-secret-1", "billing-secret-1", "Bearer "} {
		if code := status.Code(call(auth)); code != codes.Unauthenticated {
			t.Errorf("%q: code %s", auth, code)
		}
	}
	// Watch is a stream method outside the prefix: open.
	wc, err := h.Watch(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wc.Recv(); err != nil {
		t.Fatalf("unguarded stream: %v", err)
	}
}
