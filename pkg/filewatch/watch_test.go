package filewatch

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/feedloop/feedloop/pkg/testkit"
)

const wait = 10 * time.Second

// poll is the tests' interval: short, so they finish soon.
const poll = 10 * time.Millisecond

// start watches path and returns the contents OnChange receives.
func start(t *testing.T, o Options) <-chan string {
	t.Helper()
	got := make(chan string, 16)
	o.OnChange = func(_ context.Context, data []byte) { got <- string(data) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); Watch(ctx, o) }()
	t.Cleanup(func() { cancel(); <-done })
	return got
}

func next(t *testing.T, got <-chan string, want string) {
	t.Helper()
	select {
	case s := <-got:
		if s != want {
			t.Fatalf("OnChange got %q, want %q", s, want)
		}
	case <-time.After(wait):
		t.Fatalf("OnChange not called with %q within %s", want, wait)
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// replace writes s the way editors do: a new file renamed over the old one.
func replace(t *testing.T, path, s string) {
	t.Helper()
	tmp := path + ".swp"
	write(t, tmp, s)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestWatchSeesWritesAndReplacements(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	write(t, path, "v1")
	got := start(t, Options{Path: path, Initial: []byte("v1"), Interval: poll})

	write(t, path, "v2")
	next(t, got, "v2")
	replace(t, path, "v3")
	next(t, got, "v3")
	// The same content again is no change: the next call is v4, not v3.
	replace(t, path, "v3")
	write(t, path, "v4")
	next(t, got, "v4")
}

func TestWatchReportsAChangeMadeBeforeItStarted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	write(t, path, "newer")
	got := start(t, Options{Path: path, Initial: []byte("older")}) // no interval: one read
	next(t, got, "newer")
}

func TestWatchFollowsSymlinkSwaps(t *testing.T) {
	// The layout of a Kubernetes ConfigMap volume: rules.yaml -> ..data/rules.yaml,
	// ..data -> a timestamped directory swapped atomically on update.
	dir := t.TempDir()
	mkdata := func(name, content string) {
		if err := os.Mkdir(filepath.Join(dir, name), 0o700); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, name, "rules.yaml"), content)
	}
	mkdata("..2025_01", "v1")
	if err := os.Symlink("..2025_01", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "rules.yaml")
	if err := os.Symlink(filepath.Join("..data", "rules.yaml"), path); err != nil {
		t.Fatal(err)
	}
	got := start(t, Options{Path: path, Initial: []byte("v1"), Interval: poll})

	mkdata("..2025_02", "v2")
	if err := os.Symlink("..2025_02", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	next(t, got, "v2")
}

// A file missing for a while (removed, then created again) keeps the
// watch going, and what comes back is handed over.
func TestWatchOutlivesAMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	write(t, path, "v1")
	logs := &testkit.SyncBuffer{}
	got := start(t, Options{Path: path, What: "rules", Initial: []byte("v1"), Interval: poll, Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the missing file logged", func() bool {
		return strings.Contains(logs.String(), "rules file unreadable; keeping the current one")
	})
	write(t, path, "v2")
	next(t, got, "v2")
}
