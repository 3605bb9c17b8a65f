package console_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/feedloop/feedloop/services/notifier/internal/channel"
	"github.com/feedloop/feedloop/services/notifier/internal/channel/console"
	"github.com/feedloop/feedloop/services/notifier/internal/steps"
)

func TestOneLinePerMessage(t *testing.T) {
	var buf bytes.Buffer
	w := console.New(&buf)
	d := steps.Sample("received")
	err := w.Send(context.Background(), channel.Message{To: "ada@example.com", Subject: "We got your feedback…\nreally", Data: d})
	if err != nil {
		t.Fatal(err)
	}
	want := `→ customer ada@example.com [received] "We got your feedback…\nreally" feedback=` + d.FeedbackID + "\n"
	if buf.String() != want {
		t.Errorf("line = %q\nwant   %q", buf.String(), want)
	}
}

func TestConcurrentLinesDoNotInterleave(t *testing.T) {
	var buf bytes.Buffer
	w := console.New(&buf)
	d := steps.Sample("routed")
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = w.Send(context.Background(), channel.Message{To: "billing", Subject: strings.Repeat("x", 200), Data: d})
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 50 {
		t.Fatalf("got %d lines, want 50", len(lines))
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "→ team billing [routed] ") {
			t.Fatalf("mangled line %q", l)
		}
	}
}
