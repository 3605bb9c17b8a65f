package webhook_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/feedloop/feedloop/services/notifier/internal/channel/webhook"
)

// The request goes to the whole URL, secrets and all; its span and its
// errors show only the scheme and host.
func TestSpansAndErrorsHideTheURLsSecrets(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	var gotQuery, gotPath, gotPass string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotQuery, gotPath = r.URL.Query().Get("token"), r.URL.Path
		_, gotPass, _ = r.BasicAuth()
		w.WriteHeader(http.StatusBadRequest)
	}))
	t.Cleanup(srv.Close)
	url := strings.Replace(srv.URL, "http://", "http://hook:userinfo-secret@", 1) + "/services/path-secret?token=query-secret"
	err := clientWith(t, webhook.Options{URL: url}).Send(context.Background(), message())
	if err == nil {
		t.Fatal("want the 400 refused")
	}
	if gotQuery != "query-secret" || gotPath != "/services/path-secret" || gotPass != "userinfo-secret" {
		t.Fatalf("the receiver got query %q path %q password %q", gotQuery, gotPath, gotPass)
	}
	spans := rec.Ended()
	if len(spans) == 0 {
		t.Fatal("no client span")
	}
	var shown []string
	for _, s := range spans {
		shown = append(shown, s.Name())
		for _, a := range s.Attributes() {
			shown = append(shown, string(a.Key)+"="+a.Value.Emit())
		}
	}
	shown = append(shown, err.Error())
	for _, secret := range []string{"userinfo-secret", "path-secret", "query-secret"} {
		if all := strings.Join(shown, " "); strings.Contains(all, secret) {
			t.Errorf("%s shown: %s", secret, all)
		}
	}
	if all := strings.Join(shown, " "); !strings.Contains(all, "url.full="+srv.URL+" ") {
		t.Errorf("the span lacks the redacted url.full: %s", all)
	}
}
