package rebuild_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/feedloop/feedloop/pkg/rebuild"
	"github.com/feedloop/feedloop/pkg/testkit"
)

// Replay hands over the subject's messages in stream order up to the last
// one stored when it started, starts afresh when a dead rebuilder left its
// consumer behind, and removes the consumer when done.
func TestReplay(t *testing.T) {
	nc, err := nats.Connect(testkit.NATS(t))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R", Subjects: []string{"r.>"}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		subj := "r.want"
		if i%2 == 1 {
			subj = "r.other"
		}
		if _, err := js.Publish(ctx, subj, fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// A consumer a dead rebuilder left half-way.
	stale, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{Name: "svc-rebuild", FilterSubject: "r.want", AckPolicy: jetstream.AckNonePolicy})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stale.Fetch(2); err != nil {
		t.Fatal(err)
	}

	var got []string
	n, err := rebuild.Replay(ctx, js, "R", "svc-rebuild", "r.want", func(_ context.Context, m jetstream.Msg) error {
		got = append(got, string(m.Data()))
		if len(got) == 1 { // stored after Replay started: not replayed
			_, _ = js.Publish(ctx, "r.want", []byte("late"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "[0 2 4]"; n != 3 || fmt.Sprint(got) != want {
		t.Fatalf("replayed %d: %v, want %s", n, got, want)
	}
	if _, err := st.Consumer(ctx, "svc-rebuild"); err == nil {
		t.Fatal("the replay consumer is still there")
	}
}
