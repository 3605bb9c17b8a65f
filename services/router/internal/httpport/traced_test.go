package httpport

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestRedactPath(t *testing.T) {
	for in, want := range map[string]string{
		"/status/abc123":        "/status/{token}",
		"/status/abc123/survey": "/status/{token}/survey",
		"/status/":              "/status/",
		"/healthz":              "/healthz",
	} {
		if got := RedactPath(in); got != want {
			t.Errorf("RedactPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// The span shows the pattern; the handler still gets the real path.
func TestTracedHidesTheToken(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	var got string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status/{token}/survey", func(_ http.ResponseWriter, r *http.Request) { got = r.PathValue("token") })
	req := httptest.NewRequestWithContext(context.Background(), http.MethodGet, "/status/secret-token-123/survey?csat=5", nil)
	Traced(mux, "test").ServeHTTP(httptest.NewRecorder(), req)
	if got != "secret-token-123" {
		t.Fatalf("handler saw token %q", got)
	}
	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans", len(spans))
	}
	path := ""
	for _, a := range spans[0].Attributes() {
		if a.Key == "url.path" {
			path = a.Value.Emit()
		}
	}
	if path != "/status/{token}/survey" {
		t.Errorf("url.path = %q, want the pattern", path)
	}
}
