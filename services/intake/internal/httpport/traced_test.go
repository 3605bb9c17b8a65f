package httpport

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// The server spans go to the provider given and are named as semconv
// names HTTP server spans, "{method} {route}" with http.route set; a path
// no route matches is named by its method alone, not by the path.
func TestServerSpansNamedByRoute(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	h := Handler(nil, Options{
		Log:            slog.New(slog.NewTextHandler(io.Discard, nil)),
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)),
	})
	for _, r := range []*http.Request{
		// Refused before the acceptor is needed: wrong content type.
		httptest.NewRequest(http.MethodPost, FeedbackPath, strings.NewReader("x")),
		httptest.NewRequest(http.MethodGet, "/wp-admin/setup.php", nil),
	} {
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	for i, want := range []struct{ name, route string }{{"POST /v1/feedback", "/v1/feedback"}, {"GET", ""}} {
		s := spans[i]
		route := ""
		for _, a := range s.Attributes() {
			if a.Key == "http.route" {
				route = a.Value.AsString()
			}
		}
		if s.Name() != want.name || route != want.route || s.SpanKind() != trace.SpanKindServer {
			t.Errorf("span %d: %q (%s) route %q, want %q server route %q", i, s.Name(), s.SpanKind(), route, want.name, want.route)
		}
	}
}
