package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/feedloop/feedloop/services/notifier/internal/channel"
	"github.com/feedloop/feedloop/services/notifier/internal/channel/webhook"
	"github.com/feedloop/feedloop/services/notifier/internal/steps"
	"github.com/feedloop/feedloop/services/notifier/webhooksig"
)

var secret = []byte("0123456789abcdef-test-secret")

// request is what the test server saw of one request.
type request struct {
	header http.Header
	body   []byte
}

// server answers with codes in turn (the last one repeats) and records requests.
type server struct {
	mu    sync.Mutex
	reqs  []request
	codes []int
	srv   *httptest.Server
}

func newServer(t *testing.T, codes ...int) *server {
	s := &server{codes: codes}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, request{header: r.Header.Clone(), body: body})
		code := s.codes[min(len(s.reqs), len(s.codes))-1]
		s.mu.Unlock()
		w.WriteHeader(code)
		_, _ = io.WriteString(w, http.StatusText(code))
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *server) requests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.reqs...)
}

// t0 is the clock of the signatures; each reading advances it a second,
// so two attempts never share a timestamp.
var t0 = time.Unix(1764590400, 0)

type ticking struct {
	mu  sync.Mutex
	now time.Time
}

func (c *ticking) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Second)
	return c.now
}

func client(t *testing.T, url string) *webhook.Client {
	return clientWith(t, webhook.Options{URL: url})
}

func clientWith(t *testing.T, o webhook.Options) *webhook.Client {
	o.Secret, o.Attempts, o.Backoff, o.Timeout, o.Now = secret, 3, 10*time.Millisecond, 5*time.Second, (&ticking{now: t0}).Now
	c, err := webhook.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// verifier accepts what the test clock signed.
func verifier(secrets ...[]byte) webhooksig.Verifier {
	return webhooksig.Verifier{Secrets: secrets, Now: func() time.Time { return t0 }}
}

func message() channel.Message {
	d := steps.Sample("routed")
	return channel.Message{
		Key: "6b1f3c1e-6f0a-5a8e-9a44-2b1a3c9d0e11", To: "billing-alerts",
		Subject: "[billing] New feedback", Text: "plain body", HTML: "<p>html body</p>", Data: d,
	}
}

// hmacHex is the signature of body at unix time ts, computed by hand.
func hmacHex(ts int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	fmt.Fprintf(m, "%d.%s", ts, body)
	return fmt.Sprintf("t=%d,v1=%s", ts, hex.EncodeToString(m.Sum(nil)))
}

func TestSendSignsBodyAndSetsIdempotencyKey(t *testing.T) {
	s := newServer(t, http.StatusNoContent)
	msg := message()
	if err := client(t, s.srv.URL).Send(context.Background(), msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	reqs := s.requests()
	if len(reqs) != 1 {
		t.Fatalf("got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if got, want := r.header.Get("X-Feedloop-Signature"), hmacHex(t0.Unix()+1, r.body); got != want {
		t.Errorf("signature = %q, want HMAC of the time and body %q", got, want)
	}
	if err := verifier(secret).Verify(r.header.Get("X-Feedloop-Signature"), r.body); err != nil {
		t.Errorf("Verify rejects the signature the client sent: %v", err)
	}
	if err := verifier([]byte("another-secret-of-16b")).Verify(r.header.Get("X-Feedloop-Signature"), r.body); !errors.Is(err, webhooksig.ErrMismatch) {
		t.Errorf("Verify accepts a signature made with another secret: %v", err)
	}
	if got := r.header.Get("Idempotency-Key"); got != msg.Key {
		t.Errorf("Idempotency-Key = %q, want %q", got, msg.Key)
	}
	if got := r.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	for h, want := range map[string]string{"X-Feedloop-Step": "routed", "X-Feedloop-Audience": "team", "X-Feedloop-Feedback-Id": msg.Data.FeedbackID} {
		if got := r.header.Get(h); got != want || want == "" {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}

	var p webhook.Payload
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, r.body)
	}
	d := msg.Data
	if p.Version != 1 || p.Step != "routed" || p.Audience != "team" || p.FeedbackID != d.FeedbackID || p.Team != "billing" || p.IdempotencyKey != msg.Key {
		t.Errorf("envelope fields wrong: %+v", p)
	}
	if p.Customer != (webhook.Customer{ID: d.Customer.ID, Name: d.Customer.Name, Email: d.Customer.Email, Locale: d.Customer.Locale}) {
		t.Errorf("customer = %+v", p.Customer)
	}
	if p.Subject != d.Subject || p.Text != d.Text || p.StatusURL != d.StatusURL {
		t.Errorf("subject/text/status = %q %q %q", p.Subject, p.Text, p.StatusURL)
	}
	if p.Message != (webhook.Message{Subject: msg.Subject, Text: msg.Text, HTML: msg.HTML}) {
		t.Errorf("message = %+v", p.Message)
	}
	if p.Classification == nil || p.Classification.Urgency != "high" || len(p.Classification.Topics) != 2 {
		t.Errorf("classification = %+v", p.Classification)
	}
	if p.Assignment == nil || p.Assignment.Priority != "high" || !p.Assignment.ResolveBy.Equal(d.Assignment.ResolveBy) {
		t.Errorf("assignment = %+v", p.Assignment)
	}
}

func TestCustomerStepOmitsTeamParts(t *testing.T) {
	s := newServer(t, http.StatusOK)
	msg := message()
	// What a received message carries: none of the parts of other steps.
	msg.Data = steps.Sample("received")
	msg.Data.Classification, msg.Data.Assignment, msg.Data.Team = steps.Classification{}, steps.Assignment{}, ""
	msg.Data.Message, msg.Data.Reason, msg.Data.Actor, msg.Data.RerouteFrom = "", "", "", ""
	msg.Data.DueAt, msg.Data.PreviousDueAt = time.Time{}, time.Time{}
	msg.Data.Teams, msg.Data.SurveyLinks, msg.Data.Digest, msg.Data.Escalation = nil, nil, nil, steps.Escalation{}
	if err := client(t, s.srv.URL).Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(s.requests()[0].body, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"classification", "assignment", "team", "customer_message", "reason", "actor", "due_at", "previous_due_at", "rerouted_from", "teams", "survey", "escalation", "digest"} {
		if _, ok := raw[k]; ok {
			t.Errorf("customer payload has %q: %v", k, raw[k])
		}
	}
}

func TestRetriesServerErrorsThenSucceeds(t *testing.T) {
	s := newServer(t, 500, 503, 200)
	if err := client(t, s.srv.URL).Send(context.Background(), message()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	reqs := s.requests()
	if len(reqs) != 3 {
		t.Fatalf("got %d attempts, want 3", len(reqs))
	}
	// Every attempt is the same delivery: same body, same key; each is
	// signed when it leaves, so a receiver's replay window never refuses a
	// retry.
	for i, r := range reqs {
		if string(r.body) != string(reqs[0].body) || r.header.Get("Idempotency-Key") != reqs[0].header.Get("Idempotency-Key") {
			t.Errorf("attempt %d is another delivery than the first", i+1)
		}
		if got, want := r.header.Get("X-Feedloop-Signature"), hmacHex(t0.Unix()+int64(i)+1, r.body); got != want {
			t.Errorf("attempt %d: signature %q, want a fresh one %q", i+1, got, want)
		}
	}
}

func TestRetries429(t *testing.T) {
	s := newServer(t, 429, 200)
	if err := client(t, s.srv.URL).Send(context.Background(), message()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if n := len(s.requests()); n != 2 {
		t.Fatalf("got %d attempts, want 2", n)
	}
}

func TestDoesNotRetryClientError(t *testing.T) {
	s := newServer(t, 400, 200)
	err := client(t, s.srv.URL).Send(context.Background(), message())
	if !errors.Is(err, channel.ErrRejected) {
		t.Fatalf("Send error = %v, want ErrRejected", err)
	}
	if n := len(s.requests()); n != 1 {
		t.Fatalf("got %d attempts, want 1 (no retry on 400)", n)
	}
}

func TestDoesNotFollowRedirects(t *testing.T) {
	s := newServer(t, 200)
	redirect := httptest.NewServer(http.RedirectHandler(s.srv.URL, http.StatusFound))
	t.Cleanup(redirect.Close)
	err := client(t, redirect.URL).Send(context.Background(), message())
	if !errors.Is(err, channel.ErrRejected) {
		t.Fatalf("Send error = %v, want ErrRejected", err)
	}
	if n := len(s.requests()); n != 0 {
		t.Fatalf("redirect target got %d requests, want 0", n)
	}
}

func TestGivesUpAfterAttemptsWithTransientError(t *testing.T) {
	s := newServer(t, 502)
	err := client(t, s.srv.URL).Send(context.Background(), message())
	if err == nil || errors.Is(err, channel.ErrRejected) || !errors.Is(err, webhook.ErrUnavailable) {
		t.Fatalf("Send error = %v, want a transient ErrUnavailable", err)
	}
	if n := len(s.requests()); n != 3 {
		t.Fatalf("got %d attempts, want 3", n)
	}
}

func TestNetworkErrorIsTransientAndHidesQuery(t *testing.T) {
	s := newServer(t, 200)
	url := s.srv.URL + "/hook?token=sekrit"
	s.srv.Close() // nothing listens any more
	err := client(t, url).Send(context.Background(), message())
	if err == nil || errors.Is(err, channel.ErrRejected) {
		t.Fatalf("Send error = %v, want a transient error", err)
	}
	if got := err.Error(); strings.Contains(got, "sekrit") {
		t.Errorf("error leaks the URL query: %s", got)
	}
}

// During a rotation every request is signed with both secrets, so
// receivers holding either verify.
func TestRotationSignsWithBothSecrets(t *testing.T) {
	s := newServer(t, http.StatusNoContent)
	previous := []byte("the-previous-secret-0123")
	if err := clientWith(t, webhook.Options{URL: s.srv.URL, PreviousSecret: previous}).Send(context.Background(), message()); err != nil {
		t.Fatal(err)
	}
	r := s.requests()[0]
	sig := r.header.Get("X-Feedloop-Signature")
	if strings.Count(sig, "v1=") != 2 {
		t.Fatalf("signature %q: want two v1 values", sig)
	}
	for name, v := range map[string]webhooksig.Verifier{"new": verifier(secret), "old": verifier(previous), "both": verifier(previous, secret)} {
		if err := v.Verify(sig, r.body); err != nil {
			t.Errorf("a receiver with the %s secret: %v", name, err)
		}
	}
	if err := verifier([]byte("neither-of-the-two-secrets")).Verify(sig, r.body); !errors.Is(err, webhooksig.ErrMismatch) {
		t.Errorf("another secret: %v", err)
	}
}

// A burst of as many Sends as the client's Concurrency, then another, is
// carried on the first burst's connections: none is closed between them and
// dialled again.
func TestBurstsReuseConnections(t *testing.T) {
	const n = 48
	var (
		mu      sync.Mutex
		dials   int
		arrived int
		all     = make(chan struct{})
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		// Each burst is held until all of it arrived, so every Send of it
		// needs a connection of its own.
		mu.Lock()
		arrived++
		if arrived%n == 0 {
			close(all)
			all = make(chan struct{})
		}
		wait := all
		if arrived%n == 0 {
			wait = nil
		}
		mu.Unlock()
		if wait != nil {
			<-wait
		}
		w.WriteHeader(http.StatusNoContent) // no body: the connection is idle before Send returns
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			dials++
			mu.Unlock()
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := clientWith(t, webhook.Options{URL: srv.URL, Concurrency: n})
	burst := func() {
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() { errs[i] = c.Send(t.Context(), message()) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	burst()
	mu.Lock()
	first := dials
	mu.Unlock()
	burst()
	mu.Lock()
	defer mu.Unlock()
	if first != n || dials != n {
		t.Fatalf("%d connections for the first burst of %d, %d after the second; want %d, none new", first, n, dials, n)
	}
}
