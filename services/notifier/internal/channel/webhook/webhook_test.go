package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/feedloop/feedloop/services/notifier/internal/channel"
	"github.com/feedloop/feedloop/services/notifier/internal/channel/webhook"
	"github.com/feedloop/feedloop/services/notifier/internal/notify"
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

func client(t *testing.T, url string) *webhook.Client {
	c, err := webhook.New(webhook.Options{URL: url, Secret: secret, Attempts: 3, Backoff: 10 * time.Millisecond, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func message() channel.Message {
	d := notify.Sample("routed")
	return channel.Message{
		Key: "6b1f3c1e-6f0a-5a8e-9a44-2b1a3c9d0e11", To: "billing-alerts",
		Subject: "[billing] New feedback", Text: "plain body", HTML: "<p>html body</p>", Data: d,
	}
}

func hmacHex(body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
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
	if got, want := r.header.Get("X-Feedloop-Signature"), hmacHex(r.body); got != want {
		t.Errorf("signature = %q, want HMAC of the body %q", got, want)
	}
	if !webhook.Verify(secret, r.body, r.header.Get("X-Feedloop-Signature")) {
		t.Error("Verify rejects the signature the client sent")
	}
	if webhook.Verify([]byte("another-secret-of-16b"), r.body, r.header.Get("X-Feedloop-Signature")) {
		t.Error("Verify accepts a signature made with another secret")
	}
	if got := r.header.Get("Idempotency-Key"); got != msg.Key {
		t.Errorf("Idempotency-Key = %q, want %q", got, msg.Key)
	}
	if got := r.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := r.header.Get("X-Feedloop-Step"); got != "routed" {
		t.Errorf("X-Feedloop-Step = %q, want routed", got)
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
	msg.Data = notify.Sample("received")
	msg.Data.Classification, msg.Data.Assignment, msg.Data.Team = notify.Classification{}, notify.Assignment{}, ""
	msg.Data.Message, msg.Data.Reason, msg.Data.Actor, msg.Data.RerouteFrom = "", "", "", ""
	msg.Data.DueAt, msg.Data.PreviousDueAt = time.Time{}, time.Time{}
	msg.Data.Teams, msg.Data.SurveyLinks, msg.Data.Digest, msg.Data.Escalation = nil, nil, nil, notify.Escalation{}
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
	// Every attempt is the same delivery: same body, same key, same signature.
	for i, r := range reqs[1:] {
		if string(r.body) != string(reqs[0].body) || r.header.Get("Idempotency-Key") != reqs[0].header.Get("Idempotency-Key") ||
			r.header.Get("X-Feedloop-Signature") != reqs[0].header.Get("X-Feedloop-Signature") {
			t.Errorf("attempt %d differs from the first", i+2)
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
