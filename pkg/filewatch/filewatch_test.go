package filewatch

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func parseInt(b []byte) (int, error) { return strconv.Atoi(string(b)) }

func TestWatcherSwapsValidContentAndKeepsTheLastGoodOne(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("1")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	w, err := Open(path, "number", parseInt, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if got := w.Get(); got != 1 {
		t.Fatalf("Get = %d, want 1", got)
	}
	if changed, err := w.Reload(ctx); changed || err != nil {
		t.Fatalf("unchanged file: changed=%v err=%v", changed, err)
	}

	write("2")
	if changed, err := w.Reload(ctx); !changed || err != nil {
		t.Fatalf("new content: changed=%v err=%v", changed, err)
	}
	if got := w.Get(); got != 2 {
		t.Fatalf("Get = %d, want 2", got)
	}

	write("not a number")
	_, err = w.Reload(ctx)
	var pe *PathError
	if !errors.As(err, &pe) || pe.Path != path {
		t.Fatalf("invalid content: err = %v, want a PathError naming %s", err, path)
	}
	if got := w.Get(); got != 2 {
		t.Fatalf("after an invalid file Get = %d, want the last good 2", got)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Reload(ctx); err == nil {
		t.Fatal("a removed file must be reported")
	}
	if got := w.Get(); got != 2 {
		t.Fatalf("after a removed file Get = %d, want 2", got)
	}
}

func TestOpenRejectsAnInvalidFirstFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n")
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, "number", parseInt, slog.Default()); err == nil {
		t.Fatal("Open of an invalid file must fail: there is nothing to fall back on")
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing"), "number", parseInt, slog.Default()); err == nil {
		t.Fatal("Open of a missing file must fail")
	}
}

// RunNotify calls back once per swapped-in value, not on unchanged or
// invalid content.
func TestRunNotifyCallsBackOnChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n")
	if err := os.WriteFile(path, []byte("1"), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := Open(path, "number", parseInt, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	changes := make(chan int, 10)
	go w.RunNotify(ctx, 5*time.Millisecond, func() { changes <- w.Get() })
	for _, content := range []string{"bad", "2"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Millisecond) // several polls
	}
	select {
	case v := <-changes:
		if v != 2 {
			t.Fatalf("called back with %d, want 2", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no callback for the new value")
	}
	select {
	case v := <-changes:
		t.Fatalf("a second callback (%d) without a new value", v)
	case <-time.After(50 * time.Millisecond):
	}
}
