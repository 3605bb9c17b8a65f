package stack

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

func TestReachable(t *testing.T) {
	for in, want := range map[string]string{
		":7004":          "127.0.0.1:7004",
		"0.0.0.0:7004":   "127.0.0.1:7004",
		"[::]:7004":      "127.0.0.1:7004",
		"10.1.2.3:7004":  "10.1.2.3:7004",
		"[::1]:7004":     "[::1]:7004",
		"localhost:7004": "localhost:7004",
	} {
		if got := Reachable(in); got != want {
			t.Errorf("Reachable(%q) = %q, want %q", in, got, want)
		}
	}
}

// Without a configured StatusURL the customer's messages link to the status
// page of this stack's router, and the link works.
func TestStatusLinksPointAtTheRouter(t *testing.T) {
	var (
		mu    sync.Mutex
		links = map[string]string{} // step → status_url
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Step      string `json:"step"`
			StatusURL string `json:"status_url"`
		}
		raw, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		mu.Lock()
		links[body.Step] = body.StatusURL
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)

	cfg := DevConfig("../../../../deploy/examples", t.TempDir())
	cfg.RedisURL = testkit.Redis(t)
	cfg.Notifier.CustomerWebhookURL = hook.URL
	cfg.Notifier.WebhookSecret = "stack-test-secret-0123456789"
	cfg.Notifier.ConsoleOutput = io.Discard
	s, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, s.Run)
	if want := "http://" + s.Router.HTTPAddr() + "/status"; s.StatusURL != want {
		t.Fatalf("StatusURL = %q, want %q", s.StatusURL, want)
	}

	conn, err := grpc.NewClient(s.Intake.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_, err = feedloopv1.NewIntakeServiceClient(conn).Submit(t.Context(), &feedloopv1.SubmitRequest{Feedback: &feedloopv1.Feedback{
		Source: "helpdesk", ExternalId: "S-1", Text: "I was charged twice for my subscription.",
		Customer: &feedloopv1.Customer{Email: "ada@example.com", Consent: &feedloopv1.Consent{Contact: true}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var link string
	testkit.Eventually(t, "the acknowledgement", func() bool {
		mu.Lock()
		defer mu.Unlock()
		link = links["received"]
		return link != ""
	})
	if !strings.HasPrefix(link, s.StatusURL+"/") {
		t.Fatalf("status link %q is not on %s", link, s.StatusURL)
	}
	var page struct {
		Teams []struct{ Team string } `json:"teams"`
	}
	testkit.Eventually(t, "the status page to show the routed team", func() bool {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, link, nil)
		req.Header.Set("Accept", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer res.Body.Close()
		return res.StatusCode == http.StatusOK && json.NewDecoder(res.Body).Decode(&page) == nil &&
			len(page.Teams) == 1 && page.Teams[0].Team == "billing"
	})
}
