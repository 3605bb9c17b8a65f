package bus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/testkit"
)

// meteredBus is a bus whose metrics a manual reader collects.
func meteredBus(t *testing.T) (*bus.Bus, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	nc, err := nats.Connect(testkit.NATS(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	b, err := bus.New(nc, bus.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.EnsureStreams(ctxT(t), bus.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	return b, reader
}

// points returns the int64 data points of the named metric, each keyed by
// its attributes, e.g. "consumer=c,outcome=ok,subject=feedback.received".
func points(t *testing.T, r *sdkmetric.ManualReader, name string) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[p.Attributes.Encoded(attribute.DefaultEncoder())] = p.Value
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					out[p.Attributes.Encoded(attribute.DefaultEncoder())] = p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[p.Attributes.Encoded(attribute.DefaultEncoder())] = int64(p.Count)
				}
			}
		}
	}
	return out
}

func TestMetricsCountEveryOutcomeAndTimeTheHandler(t *testing.T) {
	b, reader := meteredBus(t)
	cc := fastConsumer("c")
	cc.MaxDeliver = 2
	runConsumer(t, b, cc, func(ctx context.Context, m *bus.Msg) error {
		switch m.MsgID() {
		case "poison":
			return bus.Permanent(errors.New("cannot decode"))
		case "flaky":
			if m.NumDelivered == 1 {
				return errors.New("redis is down")
			}
		}
		return nil
	})
	for _, id := range []string{"good", "flaky", "poison"} {
		if _, err := b.Publish(ctxT(t), bus.SubjectReceived, receivedEvent(id)); err != nil {
			t.Fatal(err)
		}
	}
	const (
		ok    = "consumer=c,outcome=ok,subject=feedback.received"
		retry = "consumer=c,outcome=retry,subject=feedback.received"
		dlq   = "consumer=c,outcome=dead_letter,subject=feedback.received"
	)
	testkit.Eventually(t, "every delivery counted", func() bool {
		p := points(t, reader, "feedloop.messages.processed")
		return p[ok] == 2 && p[retry] == 1 && p[dlq] == 1
	})
	took := points(t, reader, "feedloop.message.handling.duration")
	if took["consumer=c,outcome=ok"] != 2 || took["consumer=c,outcome=dead_letter"] != 1 {
		t.Errorf("handling durations recorded = %v", took)
	}
	pub := points(t, reader, "feedloop.messages.published")
	if pub["result=stored,subject=feedback.received"] != 3 || pub["result=stored,subject=feedback.dlq.c"] != 1 {
		t.Errorf("published = %v", pub)
	}
	if _, err := b.Publish(ctxT(t), bus.SubjectReceived, receivedEvent("good")); err != nil {
		t.Fatal(err)
	}
	if pub := points(t, reader, "feedloop.messages.published"); pub["result=duplicate,subject=feedback.received"] != 1 {
		t.Errorf("a republished id is not counted as duplicate: %v", pub)
	}
}

func TestConsumerLagAndConnectionAreReported(t *testing.T) {
	b, reader := meteredBus(t)
	release := make(chan struct{})
	cc := fastConsumer("slow")
	cc.AckWait = time.Minute
	runConsumer(t, b, cc, func(ctx context.Context, m *bus.Msg) error {
		<-release
		return nil
	})
	for _, id := range []string{"a", "b", "c"} {
		if _, err := b.Publish(ctxT(t), bus.SubjectReceived, receivedEvent(id)); err != nil {
			t.Fatal(err)
		}
	}
	const key = "consumer=slow,stream=FEEDBACK"
	testkit.Eventually(t, "three messages in the consumer's lag", func() bool {
		pending := points(t, reader, "feedloop.consumer.pending")
		ack := points(t, reader, "feedloop.consumer.ack_pending")
		// The runner pulls ahead, so a message is either not delivered yet or
		// delivered and unacked; the one in the handler is unacked.
		return ack[key] >= 1 && pending[key]+ack[key] == 3
	})
	if _, ok := points(t, reader, "feedloop.consumer.redelivered")[key]; !ok {
		t.Error("no redelivered gauge for the consumer")
	}
	if up := points(t, reader, "feedloop.nats.connected"); up[""] != 1 {
		t.Errorf("nats connected = %v, want 1", up)
	}
	close(release)
	testkit.Eventually(t, "the lag to drain", func() bool {
		p, a := points(t, reader, "feedloop.consumer.pending"), points(t, reader, "feedloop.consumer.ack_pending")
		return p[key] == 0 && a[key] == 0
	})
}
