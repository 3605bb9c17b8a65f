package cli

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// flakyTeams is a TeamService that answers UNAVAILABLE (as a router
// rebuilding its read model does) to the first calls of Stats.
type flakyTeams struct {
	feedloopv1.UnimplementedTeamServiceServer
	unavailable int32
	calls       atomic.Int32
}

func (f *flakyTeams) Stats(context.Context, *feedloopv1.StatsRequest) (*feedloopv1.StatsResponse, error) {
	if f.calls.Add(1) <= f.unavailable {
		return nil, status.Error(codes.Unavailable, "router read model: being rebuilt from the event stream; try again shortly")
	}
	return &feedloopv1.StatsResponse{Team: "billing"}, nil
}

func serveTeams(t *testing.T, f *flakyTeams) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	feedloopv1.RegisterTeamServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// A router that is briefly unavailable (a rebuild, a restart) does not
// fail the command: it is tried again with backoff, within bounds.
func TestInboxRetriesUnavailable(t *testing.T) {
	t.Setenv(envToken, "retry-test-token")
	brief := &flakyTeams{unavailable: 2}
	if code, out, errs := run(t, "inbox", "stats", "--team", "billing", "--json", "--server", serveTeams(t, brief)); code != 0 || !strings.Contains(out, "billing") {
		t.Fatalf("stats through two UNAVAILABLE answers: exit %d: %s%s", code, out, errs)
	}
	if n := brief.calls.Load(); n != 3 {
		t.Fatalf("%d calls, want 3 (two refused, one answered)", n)
	}

	down := &flakyTeams{unavailable: 1000}
	code, _, errs := run(t, "inbox", "stats", "--team", "billing", "--server", serveTeams(t, down))
	if code != 1 || !strings.Contains(errs, "Unavailable") {
		t.Fatalf("a router that stays unavailable: exit %d: %s", code, errs)
	}
	if n := down.calls.Load(); n != 5 {
		t.Fatalf("%d calls, want 5 (the retry policy's bound)", n)
	}
}
