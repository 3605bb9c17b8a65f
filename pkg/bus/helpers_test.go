package bus_test

import (
	"context"
	"os"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

func TestMain(m *testing.M) {
	// As telemetry.Setup does in the services.
	otel.SetTextMapPropagator(propagation.TraceContext{})
	os.Exit(m.Run())
}

func spanContextTraceID(ctx context.Context) string {
	return trace.SpanContextFromContext(ctx).TraceID().String()
}
