package stack_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/trace"
	collectortracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
)

// otlpReceiver is the trace service of an OpenTelemetry Collector on
// loopback: the stack exports to it exactly as it exports to a real
// collector, so the tests see the spans as Tempo would, after the OTLP
// encoding, not the SDK's in-memory objects.
type otlpReceiver struct {
	collectortracepb.UnimplementedTraceServiceServer

	addr string
	srv  *grpc.Server

	mu    sync.Mutex
	spans []span
}

// span is one exported span, decoded from OTLP into what the tests assert.
type span struct {
	TraceID trace.TraceID
	SpanID  trace.SpanID
	Parent  trace.SpanID // zero for a root
	Name    string
	Kind    tracepb.Span_SpanKind
	Service string // the resource's service.name
	Scope   string // the instrumentation scope
	Attrs   map[string]string
	Events  []string
	Links   []spanLink
	// Raw is the whole span as OTLP JSON: attributes, events with theirs,
	// links, status message. The leak test scans it.
	Raw string
}

type spanLink struct {
	TraceID trace.TraceID
	SpanID  trace.SpanID
	Attrs   map[string]string
}

func startOTLPReceiver() (*otlpReceiver, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("otlp receiver: %w", err)
	}
	r := &otlpReceiver{addr: lis.Addr().String(), srv: grpc.NewServer()}
	collectortracepb.RegisterTraceServiceServer(r.srv, r)
	go func() { _ = r.srv.Serve(lis) }()
	return r, nil
}

func (r *otlpReceiver) Stop() { r.srv.Stop() }

// Export is the collector's TraceService/Export.
func (r *otlpReceiver) Export(_ context.Context, req *collectortracepb.ExportTraceServiceRequest) (*collectortracepb.ExportTraceServiceResponse, error) {
	var got []span
	for _, rs := range req.GetResourceSpans() {
		service := attrMap(rs.GetResource().GetAttributes())["service.name"]
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				got = append(got, decodeSpan(s, service, ss.GetScope().GetName()))
			}
		}
	}
	r.mu.Lock()
	r.spans = append(r.spans, got...)
	r.mu.Unlock()
	return &collectortracepb.ExportTraceServiceResponse{}, nil
}

// Spans returns every span received so far.
func (r *otlpReceiver) Spans() []span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]span(nil), r.spans...)
}

func decodeSpan(s *tracepb.Span, service, scope string) span {
	out := span{
		Name:    s.GetName(),
		Kind:    s.GetKind(),
		Service: service,
		Scope:   scope,
		Attrs:   attrMap(s.GetAttributes()),
	}
	if raw, err := protojson.Marshal(s); err == nil {
		out.Raw = string(raw)
	}
	// copy, not a conversion: a malformed id decodes short instead of
	// panicking, and a root's empty parent id stays the zero id.
	copy(out.Parent[:], s.GetParentSpanId())
	copy(out.TraceID[:], s.GetTraceId())
	copy(out.SpanID[:], s.GetSpanId())
	for _, e := range s.GetEvents() {
		out.Events = append(out.Events, e.GetName())
	}
	for _, l := range s.GetLinks() {
		var sl spanLink
		copy(sl.TraceID[:], l.GetTraceId())
		copy(sl.SpanID[:], l.GetSpanId())
		sl.Attrs = attrMap(l.GetAttributes())
		out.Links = append(out.Links, sl)
	}
	return out
}

func attrMap(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = anyString(kv.GetValue())
	}
	return m
}

// anyString renders an OTLP value; arrays as their elements joined by ",".
func anyString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	case *commonpb.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
	case *commonpb.AnyValue_ArrayValue:
		var parts []string
		for _, e := range x.ArrayValue.GetValues() {
			parts = append(parts, anyString(e))
		}
		return strings.Join(parts, ",")
	case *commonpb.AnyValue_BytesValue:
		return string(x.BytesValue)
	}
	return ""
}
