package httpport

import (
	"context"
	"net/http"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
)

// Traced is h traced with otelhttp, the spans recording "/status/{token}"
// for the path: a status token is the customer's key to their feedback,
// and traces are read by everyone in ops.
func Traced(h http.Handler, operation string, opts ...otelhttp.Option) http.Handler {
	restore := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if path, ok := r.Context().Value(pathKey{}).(string); ok {
			r.URL.Path, r.URL.RawPath = path, ""
		}
		h.ServeHTTP(w, r)
	})
	traced := otelhttp.NewHandler(restore, operation, opts...)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		shown := RedactPath(r.URL.Path)
		if shown == r.URL.Path {
			traced.ServeHTTP(w, r)
			return
		}
		r2 := r.Clone(context.WithValue(r.Context(), pathKey{}, r.URL.Path))
		r2.URL.Path, r2.URL.RawPath, r2.RequestURI = shown, "", shown
		traced.ServeHTTP(w, r2)
	})
}

type pathKey struct{}

// RedactPath replaces the token of a status page path with "{token}".
func RedactPath(path string) string {
	rest, ok := strings.CutPrefix(path, "/status/")
	if !ok || rest == "" {
		return path
	}
	_, tail, _ := strings.Cut(rest, "/")
	if tail != "" {
		tail = "/" + tail
	}
	return "/status/{token}" + tail
}
