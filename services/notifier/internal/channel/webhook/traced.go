package webhook

import (
	"context"
	"fmt"
	"io"
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

type originalKey struct{}

// original is what redactingTransport hides from otelhttp and
// restoringTransport gives back: the URL, and the body as the caller made
// it.
type original struct {
	url     *url.URL
	getBody func() (io.ReadCloser, error)
}

type redactingTransport struct{ next http.RoundTripper }

// Both transports change a shallow copy of the request (WithContext), so
// the caller's request is left as it was without copying its headers:
// otelhttp, in between, clones the request before it adds its own.
func (t redactingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r2 := r.WithContext(context.WithValue(r.Context(), originalKey{}, &original{url: r.URL, getBody: r.GetBody}))
	r2.URL = &url.URL{Scheme: r.URL.Scheme, Host: r.URL.Host}
	return t.next.RoundTrip(r2)
}

type restoringTransport struct{ next http.RoundTripper }

func (t restoringTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	o, ok := r.Context().Value(originalKey{}).(*original)
	if !ok {
		return t.next.RoundTrip(r)
	}
	r = r.WithContext(r.Context())
	r.URL = o.url
	if r.Body != nil && r.Body != http.NoBody && o.getBody != nil {
		// otelhttp wrapped the body to count it, and net/http, not knowing
		// the wrapper to be in memory, flushed the headers on their own:
		// two writes per request. The wrapper is read to its end and closed
		// here, so it counts the body as before, and the caller's bytes go
		// from memory, in one write with the headers. (A retry of the
		// transport's own gets otelhttp's GetBody, as before.)
		_, err := io.Copy(io.Discard, r.Body)
		if cerr := r.Body.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			r.Body, err = o.getBody()
		}
		if err != nil {
			return nil, fmt.Errorf("webhook: body: %w", err)
		}
	}
	return t.next.RoundTrip(r)
}
