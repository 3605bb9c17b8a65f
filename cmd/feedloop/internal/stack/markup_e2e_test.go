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

// Intake accepts markup in feedback (it is what customers write); the
// customer's status page shows it escaped, never as markup.
func TestMarkupIsEscapedOnTheStatusPage(t *testing.T) {
	var (
		mu   sync.Mutex
		link string
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Step      string `json:"step"`
			StatusURL string `json:"status_url"`
		}
		raw, _ := io.ReadAll(r.Body)
		if json.Unmarshal(raw, &body) == nil && body.Step == "received" {
			mu.Lock()
			link = body.StatusURL
			mu.Unlock()
		}
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
	conn, err := grpc.NewClient(s.Intake.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	const script = `<script>alert("owned")</script>`
	_, err = feedloopv1.NewIntakeServiceClient(conn).Submit(t.Context(), &feedloopv1.SubmitRequest{Feedback: &feedloopv1.Feedback{
		Source: "helpdesk", ExternalId: "X-1", Subject: "Pasting " + script + " breaks checkout",
		Text:     "When I paste " + script + " into the coupon field I was charged twice.",
		Customer: &feedloopv1.Customer{Email: "ada@example.com", Name: "<b>Ada</b>", Consent: &feedloopv1.Consent{Contact: true}},
	}})
	if err != nil {
		t.Fatalf("markup refused by intake: %v", err)
	}
	testkit.Eventually(t, "the status link", func() bool { mu.Lock(); defer mu.Unlock(); return link != "" })
	var page string
	testkit.Eventually(t, "the status page", func() bool {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, link, nil)
		req.Header.Set("Accept", "text/html")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		page = string(b)
		return res.StatusCode == http.StatusOK && strings.Contains(page, "Pasting")
	})
	if strings.Contains(page, script) {
		t.Fatalf("the status page renders the submitted <script> as markup:\n%s", page)
	}
	if !strings.Contains(page, `&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;`) {
		t.Fatalf("the status page does not show the subject escaped:\n%s", page)
	}
}
