package teamauth_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/feedloop/feedloop/pkg/apikey"
	"github.com/feedloop/feedloop/pkg/testkit"
	"github.com/feedloop/feedloop/services/router/internal/teamauth"
)

// t0 is the test's "now"; the expiring token expires at t0 exactly.
var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

const tokensYAML = "tokens:\n" +
	"  - {team: billing, name: alice, sha256: %billing%}\n" +
	"  - {team: product, sha256: %product%}\n" +
	"  - {team: billing, name: bob, sha256: %expiring%, expires: \"2026-12-01T12:00:00Z\"}\n" +
	"  - {team: billing, name: carol, sha256: %revoked%, revoked: true}\n"

func tokensFile(t *testing.T) []byte {
	t.Helper()
	return []byte(strings.NewReplacer(
		"%billing%", teamauth.Hash("billing-secret-1"),
		"%product%", teamauth.Hash("product-secret-1"),
		"%expiring%", teamauth.Hash("expiring-secret-1"),
		"%revoked%", teamauth.Hash("revoked-secret-1"),
	).Replace(tokensYAML))
}

func tokens(t *testing.T) *teamauth.Tokens {
	t.Helper()
	toks, err := teamauth.Parse(tokensFile(t))
	if err != nil {
		t.Fatal(err)
	}
	return toks
}

func TestParseErrorsNameTheEntry(t *testing.T) {
	h := teamauth.Hash("x")
	for in, want := range map[string]string{
		"tokens:\n  - {team: Billing, sha256: " + h + "}\n":                                      "tokens[0].team",
		"tokens:\n  - {team: billing, name: alice, sha256: abc}\n":                               "tokens[0].sha256 (billing/alice): must be 64 hex digits",
		"tokens:\n  - {team: a, sha256: " + h + "}\n  - {team: b, sha256: " + h + "}\n":          "tokens[1].sha256 (b): the same secret is listed twice",
		"tokens:\n  - {team: a, token: x}\n":                                                     "field token not found",
		"tokens:\n  - {team: a, name: al, sha256: " + h + ", expires: 2027-03-01}\n":             `tokens[0].expires (a/al): must be an RFC 3339 time such as 2027-03-01T00:00:00Z, got "2027-03-01"`,
		"tokens:\n  - {team: a, sha256: " + h + ", expires: \"in 90 days\"}\n":                   "tokens[0].expires (a): must be an RFC 3339 time",
		"tokens:\n  - {team: a, name: \"a\\nb\", sha256: " + h + "}\n":                           "tokens[0].name (team a): at most 128 characters, no control characters",
		"tokens:\n  - {team: a, sha256: " + h + ", revoked: maybe}\n":                            "cannot unmarshal !!str `maybe` into bool",
		"tokens:\n  - {team: a, sha256: " + h + ", expires: \"2027-03-01T00:00:00Z\", ttl: 1}\n": "field ttl not found",
	} {
		_, err := teamauth.Parse([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", in, err, want)
		}
	}
}

func TestLookup(t *testing.T) {
	toks := tokens(t)
	if p, exp, err := toks.Lookup("billing-secret-1", t0); err != nil || p != (teamauth.Principal{Team: "billing", Name: "alice"}) || !exp.IsZero() {
		t.Fatalf("billing = %v %v %v", p, exp, err)
	}
	if p, _, _ := toks.Lookup("product-secret-1", t0); p.Name != "product" {
		t.Fatalf("a token without a name acts as its team, got %q", p.Name)
	}
	// Expiry is honoured at the instant: valid a nanosecond before, refused at it.
	if p, exp, err := toks.Lookup("expiring-secret-1", t0.Add(-time.Nanosecond)); err != nil || p.Name != "bob" || !exp.Equal(t0) {
		t.Fatalf("just before expiry: %v %v %v", p, exp, err)
	}
	if _, _, err := toks.Lookup("expiring-secret-1", t0); !errors.Is(err, apikey.ErrExpired) {
		t.Fatalf("at expiry: %v", err)
	}
	if _, _, err := toks.Lookup("revoked-secret-1", t0.Add(-time.Hour)); !errors.Is(err, apikey.ErrRevoked) {
		t.Fatalf("revoked: %v", err)
	}
	for _, bad := range []string{"", "billing-secret-2", teamauth.Hash("billing-secret-1")} {
		if _, _, err := toks.Lookup(bad, t0); !errors.Is(err, apikey.ErrUnknown) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	var none *teamauth.Tokens
	if _, _, err := none.Lookup("billing-secret-1", t0); !errors.Is(err, apikey.ErrUnknown) || none.Len() != 0 {
		t.Errorf("no tokens: %v", err)
	}
}

// source is a teamauth.Source the test changes.
type source struct {
	mu      sync.Mutex
	toks    *teamauth.Tokens
	changed chan struct{}
}

func (s *source) Get() *teamauth.Tokens {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.toks
}

func (s *source) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *source) set(t *testing.T, yaml string) {
	t.Helper()
	toks, err := teamauth.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.toks = toks
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// serve runs a health server whose Check and Watch are guarded.
func serve(t *testing.T, src teamauth.Source, now func() time.Time, seen *teamauth.Principal) healthpb.HealthClient {
	t.Helper()
	unary, stream := teamauth.Interceptors("/grpc.health.v1.Health/", src, now)
	var mu sync.Mutex
	spy := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		mu.Lock()
		*seen, _ = teamauth.FromContext(ctx)
		mu.Unlock()
		return h(ctx, req)
	}
	return healthOn(t, grpc.ChainUnaryInterceptor(unary, spy), grpc.ChainStreamInterceptor(stream))
}

// healthOn serves the health service on loopback with opts and returns a client.
func healthOn(t *testing.T, opts ...grpc.ServerOption) healthpb.HealthClient {
	t.Helper()
	srv := grpc.NewServer(opts...)
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
	return healthpb.NewHealthClient(cc)
}

func withAuth(ctx context.Context, auth string) context.Context {
	if auth == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", auth)
}

func wantUnauthenticated(t *testing.T, what string, err error, msg string) {
	t.Helper()
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(status.Convert(err).Message(), msg) {
		t.Fatalf("%s: %v, want Unauthenticated containing %q", what, err, msg)
	}
}

// Unary calls: the principal reaches the handler; bad, expired and revoked
// tokens get Unauthenticated saying why, and never repeat the token.
func TestInterceptorsUnary(t *testing.T) {
	clk := testkit.NewClock(t0.Add(-time.Second))
	var seen teamauth.Principal
	h := serve(t, teamauth.Static{T: tokens(t)}, clk.Now, &seen)
	call := func(auth string) error {
		_, err := h.Check(withAuth(t.Context(), auth), &healthpb.HealthCheckRequest{})
		return err
	}
	if err := call("Bearer billing-secret-1"); err != nil || seen.Team != "billing" || !seen.Expires.IsZero() {
		t.Fatalf("good token: %v, principal %v", err, seen)
	}
	// The handler learns the expiry (TeamService.Me tells it).
	if err := call("Bearer expiring-secret-1"); err != nil || seen.Name != "bob" || !seen.Expires.Equal(t0) {
		t.Fatalf("token before its expiry: %v, principal %v", err, seen)
	}
	clk.Set(t0)
	err := call("Bearer expiring-secret-1")
	wantUnauthenticated(t, "at expiry", err, "team token expired on 2026-12-01T12:00:00Z; ask for a new one")
	wantUnauthenticated(t, "revoked", call("Bearer revoked-secret-1"), "team token revoked; ask for a new one")
	for _, auth := range []string{"", "Bearer nope", "Basic billing-secret-1", "billing-secret-1", "Bearer "} {
		if code := status.Code(call(auth)); code != codes.Unauthenticated {
			t.Errorf("%q: code %s", auth, code)
		}
	}
	for _, tok := range []string{"expiring-secret-1", "revoked-secret-1", "nope"} {
		if err := call("Bearer " + tok); strings.Contains(err.Error(), tok) {
			t.Errorf("the refusal repeats the token: %v", err)
		}
	}
}

// An open stream ends with Unauthenticated when a change of the tokens
// revokes or removes its token, and at its token's expiry; other streams
// carry on.
func TestInterceptorsEndStreams(t *testing.T) {
	src := &source{changed: make(chan struct{})}
	src.set(t, string(tokensFile(t)))
	var seen teamauth.Principal
	h := serve(t, src, nil, &seen)
	open := func(token string) healthpb.Health_WatchClient {
		t.Helper()
		ws, err := h.Watch(withAuth(t.Context(), "Bearer "+token), &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ws.Recv(); err != nil { // the current status: the stream is open
			t.Fatalf("%s: %v", token, err)
		}
		return ws
	}
	alice, product := open("billing-secret-1"), open("product-secret-1")

	// Revoke alice's token: her stream ends, product's does not.
	src.set(t, strings.Replace(string(tokensFile(t)), "name: alice,", "name: alice, revoked: true,", 1))
	_, err := alice.Recv()
	wantUnauthenticated(t, "alice's stream after revocation", err, "team token revoked")

	// Remove product's token from the file.
	var kept []string
	for _, l := range strings.Split(string(tokensFile(t)), "\n") {
		if !strings.Contains(l, "team: product") {
			kept = append(kept, l)
		}
	}
	src.set(t, strings.Join(kept, "\n"))
	_, err = product.Recv()
	wantUnauthenticated(t, "product's stream after removal", err, "unknown team token")

	// A token that expires while its stream is open: the stream ends at
	// the expiry without any change of the tokens.
	exp := time.Now().Add(300 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	src.set(t, "tokens:\n  - {team: billing, name: dave, sha256: "+teamauth.Hash("short-lived-1")+", expires: \""+exp+"\"}\n")
	dave := open("short-lived-1")
	_, err = dave.Recv()
	wantUnauthenticated(t, "dave's stream at expiry", err, "team token expired on")
}

// Unguarded methods stay open.
func TestInterceptorsLeaveOtherMethodsOpen(t *testing.T) {
	unary, stream := teamauth.Interceptors("/feedloop.v1.TeamService/", teamauth.Static{}, nil)
	h := healthOn(t, grpc.ChainUnaryInterceptor(unary), grpc.ChainStreamInterceptor(stream))
	if _, err := h.Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	wc, err := h.Watch(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wc.Recv(); err != nil {
		t.Fatalf("unguarded stream: %v", err)
	}
}

// A delegate token (the console's) may name the person it acts for: the
// principal, recorded as the actor, is "<person> (via <holder>)". An
// ordinary token naming someone is refused before any handler runs, so
// nobody impersonates with it; a malformed name is refused in words.
func TestDelegatedActor(t *testing.T) {
	toks, err := teamauth.Parse([]byte("tokens:\n" +
		"  - {team: billing, name: console, delegate: true, sha256: " + teamauth.Hash("console-billing-1") + "}\n" +
		"  - {team: billing, name: alice, sha256: " + teamauth.Hash("billing-secret-1") + "}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var seen teamauth.Principal
	h := serve(t, teamauth.Static{T: toks}, nil, &seen)
	call := func(token string, actor ...string) error {
		seen = teamauth.Principal{}
		ctx := withAuth(t.Context(), "Bearer "+token)
		for _, a := range actor {
			ctx = metadata.AppendToOutgoingContext(ctx, teamauth.ActorHeader, a)
		}
		_, err := h.Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	if err := call("console-billing-1", "Ada Lovelace"); err != nil || seen.Name != "Ada Lovelace (via console)" || seen.Team != "billing" || !seen.Delegate {
		t.Fatalf("delegate with an actor: %v, principal %+v", err, seen)
	}
	// Percent-encoded UTF-8: gRPC metadata carries ASCII only.
	if err := call("console-billing-1", "Jos%C3%A9%20N%C3%BA%C3%B1ez"); err != nil || seen.Name != "José Núñez (via console)" {
		t.Fatalf("encoded actor: %v, principal %+v", err, seen)
	}
	if err := call("console-billing-1"); err != nil || seen.Name != "console" {
		t.Fatalf("delegate without an actor acts as itself: %v, principal %+v", err, seen)
	}
	err = call("billing-secret-1", "Ada Lovelace")
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), "may not act for someone else") {
		t.Fatalf("ordinary token with an actor: %v, want PermissionDenied", err)
	}
	if seen != (teamauth.Principal{}) {
		t.Fatalf("the refused call reached the handler as %+v", seen)
	}
	for _, bad := range [][]string{{""}, {"%20"}, {"a%0Ab"}, {"%ZZ"}, {strings.Repeat("x", 129)}, {"Ada", "Bob"}} {
		if err := call("console-billing-1", bad...); status.Code(err) != codes.InvalidArgument || seen != (teamauth.Principal{}) {
			t.Errorf("actor %q: %v (handler saw %+v), want InvalidArgument", bad, err, seen)
		}
	}
	if err := call("console-billing-1", strings.Repeat("%C3%A9", 128)); err != nil {
		t.Errorf("128 characters (256 bytes) is within the limit: %v", err)
	}
	// Streams are held to the same rule.
	ws, err := h.Watch(metadata.AppendToOutgoingContext(withAuth(t.Context(), "Bearer billing-secret-1"), teamauth.ActorHeader, "Ada"), &healthpb.HealthCheckRequest{})
	if err == nil {
		_, err = ws.Recv()
	}
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("stream of an ordinary token with an actor: %v, want PermissionDenied", err)
	}
}
