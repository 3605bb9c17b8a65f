package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// runConsumer runs Consume until the test ends; it must return nil.
func runConsumer(t *testing.T, b *bus.Bus, cc bus.ConsumerConfig, h bus.Handler) {
	t.Helper()
	testkit.Run(t, func(ctx context.Context) error { return b.Consume(ctx, cc, h) })
}

func fastConsumer(durable string) bus.ConsumerConfig {
	return bus.ConsumerConfig{
		Stream:         bus.StreamFeedback,
		Durable:        durable,
		FilterSubjects: []string{bus.SubjectReceived},
		MaxDeliver:     3,
		Backoff:        []time.Duration{10 * time.Millisecond},
	}
}

func TestConsumeDecodesAndAcks(t *testing.T) {
	b := testkit.Bus(t)
	got := make(chan *feedloopv1.Event, 10)
	runConsumer(t, b, fastConsumer("c"), func(ctx context.Context, m *bus.Msg) error {
		ev, err := m.Event()
		if err != nil {
			return err
		}
		got <- ev
		return nil
	})
	if _, err := b.Publish(ctxT(t), bus.SubjectReceived, receivedEvent("a")); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-got:
		if ev.GetId() != "a" || ev.GetReceived().GetFeedback().GetText() != "hello" {
			t.Fatalf("got %v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery")
	}
	cons, err := b.JetStream().Consumer(ctxT(t), bus.StreamFeedback, "c")
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "ack", func() bool {
		info, err := cons.Info(ctxT(t))
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0 && info.AckFloor.Stream == 1
	})
}

func TestTransientErrorIsRetriedThenSucceeds(t *testing.T) {
	b := testkit.Bus(t)
	var calls atomic.Int32
	var deliveries []uint64
	var mu sync.Mutex
	runConsumer(t, b, fastConsumer("c"), func(ctx context.Context, m *bus.Msg) error {
		mu.Lock()
		deliveries = append(deliveries, m.NumDelivered)
		mu.Unlock()
		if calls.Add(1) < 3 {
			return errors.New("redis is down")
		}
		return nil
	})
	if _, err := b.Publish(ctxT(t), bus.SubjectReceived, receivedEvent("r")); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "third delivery", func() bool { return calls.Load() >= 3 })
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(deliveries) != 3 || deliveries[0] != 1 || deliveries[2] != 3 {
		t.Fatalf("deliveries = %v, want [1 2 3]", deliveries)
	}
	if n := subjectCount(t, b, bus.StreamDLQ, bus.DLQSubject("c")); n != 0 {
		t.Fatalf("%d dead letters for a message that succeeded", n)
	}
}

func TestPoisonMessageIsDeadLetteredAndNextFlows(t *testing.T) {
	b := testkit.Bus(t)
	var good atomic.Int32
	runConsumer(t, b, fastConsumer("classifier"), func(ctx context.Context, m *bus.Msg) error {
		if _, err := m.Event(); err != nil {
			return err
		}
		good.Add(1)
		return nil
	})
	h := nats.Header{}
	if _, err := b.PublishData(ctxT(t), bus.SubjectReceived, "poison-1", []byte("\xff\xfe not protobuf"), h); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctxT(t), bus.SubjectReceived, receivedEvent("good")); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "good message", func() bool { return good.Load() == 1 })
	testkit.Eventually(t, "dead letter", func() bool {
		return subjectCount(t, b, bus.StreamDLQ, bus.DLQSubject("classifier")) == 1
	})
	dl := lastMsg(t, b, bus.StreamDLQ, bus.DLQSubject("classifier"))
	if string(dl.Data) != "\xff\xfe not protobuf" {
		t.Errorf("dead letter data = %q, want the original bytes", dl.Data)
	}
	if dl.Header.Get(bus.HeaderDLQSubject) != bus.SubjectReceived || dl.Header.Get(bus.HeaderDLQError) == "" || dl.Header.Get(bus.HeaderDLQStream) != bus.StreamFeedback {
		t.Errorf("dead letter headers = %v", dl.Header)
	}
	if dl.Header.Get(bus.HeaderDLQDeliver) != "1" {
		t.Errorf("permanent error was retried: deliveries = %s", dl.Header.Get(bus.HeaderDLQDeliver))
	}
}

func TestExhaustedRetriesAreDeadLettered(t *testing.T) {
	b := testkit.Bus(t)
	var calls atomic.Int32
	runConsumer(t, b, fastConsumer("router"), func(ctx context.Context, m *bus.Msg) error {
		calls.Add(1)
		return errors.New("downstream unavailable")
	})
	if _, err := b.Publish(ctxT(t), bus.SubjectReceived, receivedEvent("x")); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "dead letter", func() bool {
		return subjectCount(t, b, bus.StreamDLQ, bus.DLQSubject("router")) == 1
	})
	if got := calls.Load(); got != 3 {
		t.Fatalf("handler ran %d times, want MaxDeliver = 3", got)
	}
	dl := lastMsg(t, b, bus.StreamDLQ, bus.DLQSubject("router"))
	if dl.Header.Get(bus.HeaderDLQDeliver) != "3" {
		t.Errorf("deliveries header = %q, want 3", dl.Header.Get(bus.HeaderDLQDeliver))
	}
}

func TestConsumeDrainsInFlightOnCancel(t *testing.T) {
	b := testkit.Bus(t)
	started := make(chan struct{})
	release := make(chan struct{})
	var finished atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- b.Consume(ctx, fastConsumer("d"), func(hctx context.Context, m *bus.Msg) error {
			close(started)
			<-release
			if hctx.Err() != nil {
				return hctx.Err() // in-flight work must not see the shutdown
			}
			finished.Store(true)
			return nil
		})
	}()
	if _, err := b.Publish(ctxT(t), bus.SubjectReceived, receivedEvent("slow")); err != nil {
		t.Fatal(err)
	}
	<-started
	cancel()
	time.Sleep(50 * time.Millisecond)
	select {
	case <-done:
		t.Fatal("Consume returned while a message was in flight")
	default:
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !finished.Load() {
		t.Fatal("in-flight handler did not finish")
	}
	cons, err := b.JetStream().Consumer(ctxT(t), bus.StreamFeedback, "d")
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if info.AckFloor.Stream != 1 {
		t.Fatalf("in-flight message not acked before Consume returned: ack floor %d", info.AckFloor.Stream)
	}
}

func TestCompetingReplicasShareOneDurable(t *testing.T) {
	b := testkit.Bus(t)
	var mu sync.Mutex
	seen := map[string]int{}
	var total atomic.Int32
	h := func(ctx context.Context, m *bus.Msg) error {
		ev, err := m.Event()
		if err != nil {
			return err
		}
		mu.Lock()
		seen[ev.GetId()]++
		mu.Unlock()
		total.Add(1)
		return nil
	}
	runConsumer(t, b, fastConsumer("shared"), h)
	runConsumer(t, b, fastConsumer("shared"), h)
	const n = 50
	for i := 0; i < n; i++ {
		if _, err := b.Publish(ctxT(t), bus.SubjectReceived, receivedEvent(bus.NewID())); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, "all messages", func() bool { return total.Load() >= n })
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != n || total.Load() != n {
		t.Fatalf("handled %d deliveries of %d ids, want each of %d once", total.Load(), len(seen), n)
	}
}

// PerItemOrder handles one item's messages one at a time in order, while
// several items are handled at once.
func TestPerItemOrder(t *testing.T) {
	b := testkit.Bus(t)
	cc := fastConsumer("ordered")
	cc.Concurrency, cc.PerItemOrder = 4, true
	var (
		mu       sync.Mutex
		order    = map[string][]int{}
		inFlight = map[string]bool{}
		overlap  bool // two messages of one item at once
		active   atomic.Int32
		parallel atomic.Int32 // most items handled at once
		done     atomic.Int32
	)
	runConsumer(t, b, cc, func(ctx context.Context, m *bus.Msg) error {
		ev, err := m.Event()
		if err != nil {
			return err
		}
		item := ev.GetFeedbackId()
		mu.Lock()
		overlap = overlap || inFlight[item]
		inFlight[item] = true
		mu.Unlock()
		n := active.Add(1)
		for p := parallel.Load(); n > p && !parallel.CompareAndSwap(p, n); p = parallel.Load() {
		}
		seq, _ := strconv.Atoi(ev.GetReceived().GetFeedback().GetText())
		// Even messages are slow: without ordering the next one would overtake.
		time.Sleep(time.Duration(3*(1-seq%2)) * time.Millisecond)
		active.Add(-1)
		mu.Lock()
		order[item] = append(order[item], seq)
		inFlight[item] = false
		mu.Unlock()
		done.Add(1)
		return nil
	})
	const items, per = 12, 15
	for j := range items {
		for i := range per {
			ev := receivedEvent(bus.NewID())
			ev.FeedbackId = fmt.Sprintf("item-%02d", j)
			ev.GetReceived().GetFeedback().Text = strconv.Itoa(i)
			if _, err := b.Publish(ctxT(t), bus.SubjectReceived, ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	testkit.Eventually(t, "every message", func() bool { return done.Load() == items*per })
	mu.Lock()
	defer mu.Unlock()
	if overlap {
		t.Fatal("two messages of one item were handled at once")
	}
	for item, seqs := range order {
		for i, s := range seqs {
			if s != i {
				t.Fatalf("%s handled in order %v", item, seqs)
			}
		}
	}
	if parallel.Load() < 2 {
		t.Fatalf("items were not handled concurrently (at most %d at once)", parallel.Load())
	}
}
