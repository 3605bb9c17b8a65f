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

// Changed is closed once per swapped-in value, not on unchanged or invalid
// content; a channel taken after a swap waits for the next one.
func TestChangedClosesOnSwap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n")
	if err := os.WriteFile(path, []byte("1"), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := Open(path, "number", parseInt, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	first := w.Changed()
	for _, content := range []string{"1", "bad"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _ = w.Reload(ctx)
		select {
		case <-first:
			t.Fatalf("closed by content %q, which swapped nothing in", content)
		default:
		}
	}
	if err := os.WriteFile(path, []byte("2"), 0o600); err != nil {
		t.Fatal(err)
	}
	if changed, err := w.Reload(ctx); !changed || err != nil {
		t.Fatalf("Reload = %v, %v", changed, err)
	}
	select {
	case <-first:
	default:
		t.Fatal("not closed by the new value")
	}
	if w.Get() != 2 {
		t.Fatalf("Get = %d after the swap, want 2", w.Get())
	}
	next := w.Changed()
	select {
	case <-next:
		t.Fatal("a channel taken after the swap is already closed")
	default:
	}
	// Run swaps too.
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go w.Run(rctx, 5*time.Millisecond)
	if err := os.WriteFile(path, []byte("3"), 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case <-next:
		if w.Get() != 3 {
			t.Fatalf("Get = %d after Run's swap, want 3", w.Get())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run swapped in 3 without closing Changed")
	}
}
