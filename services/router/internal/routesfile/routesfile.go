// Package routesfile keeps the routing tree in step with its file: it
// polls the file and swaps in a new tree when the content changes and
// parses, keeping the old tree (and logging why) when it does not.
//
// Polling the content rather than watching inotify events survives every
// way a file gets replaced: editors writing a temp file and renaming it,
// and Kubernetes swapping a ConfigMap's symlinked directory.
package routesfile

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/feedloop/feedloop/services/router/routing"
)

// Watcher holds the current tree of one routes file.
type Watcher struct {
	path string
	log  *slog.Logger
	tree atomic.Pointer[routing.Tree]

	mu      sync.Mutex // serialises Reload
	lastSum [sha256.Size]byte
	lastErr string
}

// Open loads the file at path; an invalid file is an error, since the
// service has no tree to fall back on yet.
func Open(path string, log *slog.Logger) (*Watcher, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := routing.Parse(data)
	if err != nil {
		return nil, &pathError{path, err}
	}
	w := &Watcher{path: path, log: log, lastSum: sha256.Sum256(data)}
	w.tree.Store(t)
	return w, nil
}

// Tree returns the current tree; it never returns nil.
func (w *Watcher) Tree() *routing.Tree { return w.tree.Load() }

// Reload reads the file and swaps in its tree if the content changed. It
// reports whether the tree changed. A file that cannot be read or parsed
// leaves the current tree in place; the error is returned and logged once
// per distinct problem, so a broken file does not flood the log.
func (w *Watcher) Reload(ctx context.Context) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	data, err := os.ReadFile(w.path)
	if err != nil {
		if err.Error() != w.lastErr {
			w.lastErr = err.Error()
			w.log.ErrorContext(ctx, "routes file unreadable; keeping the current routing tree", "path", w.path, "err", err)
		}
		return false, err
	}
	sum := sha256.Sum256(data)
	if sum == w.lastSum {
		return false, nil
	}
	w.lastSum = sum
	t, err := routing.Parse(data)
	if err != nil {
		err = &pathError{w.path, err}
		w.lastErr = err.Error()
		w.log.ErrorContext(ctx, "routes file invalid; keeping the current routing tree", "path", w.path, "err", err)
		return false, err
	}
	w.lastErr = ""
	w.tree.Store(t)
	w.log.InfoContext(ctx, "routing tree reloaded", "path", w.path, "teams", t.Teams())
	return true, nil
}

// Run reloads every interval until ctx is cancelled.
func (w *Watcher) Run(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			_, _ = w.Reload(ctx) // logged inside
		}
	}
}

// pathError prefixes a parse error with the file it came from.
type pathError struct {
	path string
	err  error
}

func (e *pathError) Error() string { return e.path + ": " + e.err.Error() }
func (e *pathError) Unwrap() error { return e.err }
