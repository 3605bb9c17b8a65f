package chaos

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// limitedIntake is a loopback IntakeService that refuses the first calls
// of every item as over the rate limit, the way intake does
// (ResourceExhausted with RetryInfo), and records what it was sent.
type limitedIntake struct {
	feedloopv1.UnimplementedIntakeServiceServer
	refuse int           // refusals per item before it is accepted
	delay  time.Duration // RetryInfo delay; 0: no RetryInfo detail

	mu    sync.Mutex
	calls map[string]int // per external_id
	auth  []string       // authorization metadata of every call
	last  map[string]time.Time
	gaps  []time.Duration // time between a refusal and the retry
}

func (s *limitedIntake) Submit(ctx context.Context, req *feedloopv1.SubmitRequest) (*feedloopv1.SubmitResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	id := req.GetFeedback().GetSource() + "/" + req.GetFeedback().GetExternalId()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.auth = append(s.auth, md.Get("authorization")...)
	if t, ok := s.last[id]; ok {
		s.gaps = append(s.gaps, time.Since(t))
	}
	s.last[id] = time.Now()
	s.calls[id]++
	if s.calls[id] <= s.refuse {
		if s.delay == 0 {
			return nil, status.Error(codes.ResourceExhausted, "message larger than max")
		}
		st, err := status.New(codes.ResourceExhausted, "rate limit").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(s.delay)})
		if err != nil {
			return nil, err
		}
		return nil, st.Err()
	}
	return &feedloopv1.SubmitResponse{FeedbackId: "fb-" + id}, nil
}

func serveIntake(t *testing.T, srv *limitedIntake) feedloopv1.IntakeServiceClient {
	t.Helper()
	srv.calls, srv.last = map[string]int{}, map[string]time.Time{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	feedloopv1.RegisterIntakeServiceServer(gs, srv)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := dialIntake(lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return feedloopv1.NewIntakeServiceClient(conn)
}

// Over intake's rate limit the driver waits the RetryInfo delay and sends
// the same (source, external_id) again, with its API key every time, and
// counts the waits apart from the Unavailable retries.
func TestDriverWaitsOutTheRateLimit(t *testing.T) {
	srv := &limitedIntake{refuse: 2, delay: 30 * time.Millisecond}
	d := &driver{run: "t", items: 3, concurrency: 2, intake: serveIntake(t, srv), apiKey: "secret-key", ids: map[string]int{}}
	d.drive(context.Background())
	if err := d.err(); err != nil {
		t.Fatal(err)
	}
	if d.submitted.Load() != 3 || len(d.feedbackIDs()) != 3 {
		t.Fatalf("submitted %d (ids %v), want 3", d.submitted.Load(), d.feedbackIDs())
	}
	if got := d.rateLimited.Load(); got != 6 {
		t.Errorf("rate-limited retries %d, want 6 (2 per item)", got)
	}
	if got := d.retries.Load(); got != 0 {
		t.Errorf("other retries %d, want 0", got)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for id, n := range srv.calls {
		if n != 3 {
			t.Errorf("%s: %d calls, want 3 under the same external_id", id, n)
		}
	}
	for _, g := range srv.gaps {
		if g < srv.delay {
			t.Errorf("retried after %s, before the RetryInfo delay %s", g, srv.delay)
		}
	}
	for _, a := range srv.auth {
		if a != "Bearer secret-key" {
			t.Errorf("authorization %q, want Bearer secret-key", a)
		}
	}
	if len(srv.auth) != 9 {
		t.Errorf("%d calls carried authorization, want all 9", len(srv.auth))
	}
}

// A ResourceExhausted without RetryInfo is not the rate limit (a message
// over the size limit): retrying cannot help, the driver reports it.
func TestDriverDoesNotRetryResourceExhaustedWithoutRetryInfo(t *testing.T) {
	srv := &limitedIntake{refuse: 1}
	d := &driver{run: "t", items: 1, concurrency: 1, intake: serveIntake(t, srv), apiKey: "k", ids: map[string]int{}}
	d.drive(context.Background())
	if err := d.err(); err == nil || !strings.Contains(err.Error(), "ResourceExhausted") {
		t.Fatalf("err %v, want the ResourceExhausted", err)
	}
	if d.submitted.Load() != 0 || d.rateLimited.Load() != 0 {
		t.Errorf("submitted %d, rate-limited retries %d; want 0, 0", d.submitted.Load(), d.rateLimited.Load())
	}
}
