package webhook

import (
	"context"
	"net/http"
	"net/url"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/trace"
)

// tracedTransport is base traced with otelhttp, the client spans recording
// the receiver's scheme and host only: webhook URLs often carry a
// secret (a token in the query, user info, a chat webhook's path), and
// traces are read by everyone in ops. The request itself goes to the real
// URL.
func tracedTransport(base http.RoundTripper, tp trace.TracerProvider) http.RoundTripper {
	var opts []otelhttp.Option
	if tp != nil {
		opts = append(opts, otelhttp.WithTracerProvider(tp))
	}
	return redactingTransport{otelhttp.NewTransport(restoringTransport{base}, opts...)}
}

type urlKey struct{}

type redactingTransport struct{ next http.RoundTripper }

// Both transports change a shallow copy of the request (WithContext), so
// the caller's request is left as it was without copying its headers:
// otelhttp, in between, clones the request before it adds its own.
func (t redactingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r2 := r.WithContext(context.WithValue(r.Context(), urlKey{}, r.URL))
	r2.URL = &url.URL{Scheme: r.URL.Scheme, Host: r.URL.Host}
	return t.next.RoundTrip(r2)
}

type restoringTransport struct{ next http.RoundTripper }

func (t restoringTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if u, ok := r.Context().Value(urlKey{}).(*url.URL); ok {
		r = r.WithContext(r.Context())
		r.URL = u
	}
	return t.next.RoundTrip(r)
}
