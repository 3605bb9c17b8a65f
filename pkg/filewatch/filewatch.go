// Package filewatch keeps a value parsed from a file in step with the file:
// it polls the file and swaps in the new value when the content changes and
// parses, keeping the old value (and logging why) when it does not.
//
// Polling the content rather than watching inotify events survives every
// way a file gets replaced: editors writing a temp file and renaming it,
// and Kubernetes swapping a ConfigMap's symlinked directory.
package filewatch

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Watcher holds the current value of one file.
type Watcher[T any] struct {
	path  string
	what  string // for the log: "routes", "team tokens"
	parse func([]byte) (T, error)
	log   *slog.Logger
	cur   atomic.Pointer[T]

	mu      sync.Mutex // serialises Reload
	lastSum [sha256.Size]byte
	lastErr string
}

// Open loads the file at path; an invalid file is an error, since there is
// no value to fall back on yet.
func Open[T any](path, what string, parse func([]byte) (T, error), log *slog.Logger) (*Watcher[T], error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	v, err := parse(data)
	if err != nil {
		return nil, &PathError{path, err}
	}
	w := &Watcher[T]{path: path, what: what, parse: parse, log: log, lastSum: sha256.Sum256(data)}
	w.cur.Store(&v)
	return w, nil
}

// Get returns the current value.
func (w *Watcher[T]) Get() T { return *w.cur.Load() }

// Reload reads the file and swaps in its value if the content changed. It
// reports whether the value changed. A file that cannot be read or parsed
// leaves the current value in place; the error is returned and logged once
// per distinct problem, so a broken file does not flood the log.
func (w *Watcher[T]) Reload(ctx context.Context) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	data, err := os.ReadFile(w.path)
	if err != nil {
		if err.Error() != w.lastErr {
			w.lastErr = err.Error()
			w.log.ErrorContext(ctx, w.what+" file unreadable; keeping the current one", "path", w.path, "err", err)
		}
		return false, err
	}
	sum := sha256.Sum256(data)
	if sum == w.lastSum {
		return false, nil
	}
	w.lastSum = sum
	v, err := w.parse(data)
	if err != nil {
		err = &PathError{w.path, err}
		w.lastErr = err.Error()
		w.log.ErrorContext(ctx, w.what+" file invalid; keeping the current one", "path", w.path, "err", err)
		return false, err
	}
	w.lastErr = ""
	w.cur.Store(&v)
	w.log.InfoContext(ctx, w.what+" reloaded", "path", w.path)
	return true, nil
}

// Run reloads every interval until ctx is cancelled.
func (w *Watcher[T]) Run(ctx context.Context, interval time.Duration) {
	w.RunNotify(ctx, interval, nil)
}

// RunNotify is Run that also calls changed (when not nil) after each
// reload that swapped in a new value.
func (w *Watcher[T]) RunNotify(ctx context.Context, interval time.Duration, changed func()) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if ok, _ := w.Reload(ctx); ok && changed != nil { // errors are logged inside
				changed()
			}
		}
	}
}

// PathError prefixes a parse error with the file it came from.
type PathError struct {
	Path string
	Err  error
}

func (e *PathError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *PathError) Unwrap() error { return e.Err }
