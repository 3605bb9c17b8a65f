package telemetry_test

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	collectortracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/feedloop/feedloop/pkg/telemetry"
)

func serviceName(s sdktrace.ReadOnlySpan) string {
	v, _ := s.Resource().Set().Value("service.name")
	return v.AsString()
}

// Each provider of NewTracers names its own service, whatever
// OTEL_SERVICE_NAME says, and samples as Setup's does: QuietBackground
// drops a root Redis call in every one of them and keeps a handled
// message's.
func TestTracersKeepEachServiceItsNameAndQuietSampler(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	t.Setenv("OTEL_TRACES_SAMPLER", "")
	t.Setenv("OTEL_SERVICE_NAME", "one-name-for-all")
	rec := tracetest.NewSpanRecorder()
	ctx := context.Background()
	tracers, err := telemetry.NewTracers(ctx, []string{"intake", "router"}, telemetry.WithSpanProcessor(rec))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tracers.Shutdown(context.Background()) })
	if tracers.Provider("notifier") != nil {
		t.Error("a provider for a service not given")
	}
	redis := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attribute.String("db.system", "redis"))}
	for _, service := range []string{"intake", "router"} {
		tr := tracers.Provider(service).Tracer("test")
		_, poll := tr.Start(ctx, "zrangebyscore", redis...)
		poll.End()
		hctx, handled := tr.Start(ctx, "process "+service, trace.WithSpanKind(trace.SpanKindConsumer))
		_, call := tr.Start(hctx, "get", redis...)
		call.End()
		handled.End()
	}
	got := map[string][]string{}
	for _, s := range rec.Ended() {
		got[serviceName(s)] = append(got[serviceName(s)], s.Name())
	}
	for _, service := range []string{"intake", "router"} {
		if want := []string{"get", "process " + service}; !slices.Equal(got[service], want) {
			t.Errorf("%s's spans %v, want %v (the root Redis poll dropped)", service, got[service], want)
		}
	}
	if len(got) != 2 {
		t.Errorf("spans under service names %v, want intake and router only", got)
	}
}

// traceReceiver is an OTLP trace service on loopback: what a collector
// receives, by service.name.
type traceReceiver struct {
	collectortracepb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans map[string][]string
}

func (r *traceReceiver) Export(_ context.Context, req *collectortracepb.ExportTraceServiceRequest) (*collectortracepb.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		var service string
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.spans[service] = append(r.spans[service], s.GetName())
			}
		}
	}
	return &collectortracepb.ExportTraceServiceResponse{}, nil
}

// Shutdown flushes every service's spans through the one OTLP exporter,
// each under its own service.name: with an hour's batch delay nothing is
// sent before it.
func TestTracersShutdownExportsEveryService(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rcv := &traceReceiver{spans: map[string][]string{}}
	srv := grpc.NewServer()
	collectortracepb.RegisterTraceServiceServer(srv, rcv)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+lis.Addr().String())
	t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	t.Setenv("OTEL_TRACES_SAMPLER", "")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "3600000")

	ctx := context.Background()
	services := []string{"intake", "classifier", "router", "notifier", "console"}
	tracers, err := telemetry.NewTracers(ctx, services)
	if err != nil {
		t.Fatal(err)
	}
	for _, service := range services {
		_, s := tracers.Provider(service).Tracer("test").Start(ctx, "work of "+service)
		s.End()
	}
	rcv.mu.Lock()
	early := len(rcv.spans)
	rcv.mu.Unlock()
	if early != 0 {
		t.Fatalf("spans of %d services exported before shutdown; the test needs them held in the batch", early)
	}
	if err := tracers.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for _, service := range services {
		if want := []string{"work of " + service}; !slices.Equal(rcv.spans[service], want) {
			t.Errorf("%s: received %v, want %v", service, rcv.spans[service], want)
		}
	}
}
