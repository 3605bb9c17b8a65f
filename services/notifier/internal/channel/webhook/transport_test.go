package webhook

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// countingConn counts the writes made on a connection.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// A request of a team alert's size (headers and a 5 KiB body) leaves in
// one write, one system call, through the traced transport a Client uses
// (whose otelhttp wraps the body) as through the plain one; the receiver
// gets it whole, and the client span records it.
func TestRequestLeavesInOneWrite(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(b)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	// otelhttp's metrics go to the global provider.
	reader := sdkmetric.NewManualReader()
	prev := otel.GetMeterProvider()
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	t.Cleanup(func() { otel.SetMeterProvider(prev) })
	var writes atomic.Int64
	tr := transport(4)
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{Conn: c, writes: &writes}, nil
	}
	t.Cleanup(tr.CloseIdleConnections)
	body := bytes.Repeat([]byte("x"), 5<<10)
	for name, rt := range map[string]http.RoundTripper{"plain": tr, "traced": tracedTransport(tr, tp)} {
		for i := range 3 {
			got.Store([]byte(nil))
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/hook?token=x", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if n := writes.Swap(0); n != 1 {
				t.Errorf("%s request %d: %d writes, want 1", name, i, n)
			}
			if b := got.Load().([]byte); !bytes.Equal(b, body) {
				t.Errorf("%s request %d: the receiver got %d bytes, want %d", name, i, len(b), len(body))
			}
		}
	}
	if n := len(rec.Ended()); n != 3 {
		t.Errorf("%d client spans, want 3", n)
	}
	// otelhttp still counts every body, whole.
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	var count uint64
	var sum int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[int64]); ok && m.Name == "http.client.request.body.size" {
				for _, dp := range h.DataPoints {
					count += dp.Count
					sum += dp.Sum
				}
			}
		}
	}
	if count != 3 || sum != 3*int64(len(body)) {
		t.Errorf("http.client.request.body.size: %d requests, %d bytes; want 3, %d", count, sum, 3*len(body))
	}
}

// The headers are set under their canonical names, as Header.Set would.
func TestHeaderNamesAreCanonical(t *testing.T) {
	for _, k := range []string{HeaderSignature, HeaderIdempotencyKey, HeaderStep, HeaderAudience, HeaderFeedbackID} {
		if c := http.CanonicalHeaderKey(k); c != k {
			t.Errorf("%q is not canonical (%q)", k, c)
		}
	}
}
