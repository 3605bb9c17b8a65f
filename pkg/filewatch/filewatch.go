// Package filewatch is feedloop's one file watcher. Watch hands a file's
// content over whenever it changes; a Watcher keeps a value parsed from a
// file in step with it, swapping in the new value when the content changes
// and parses, keeping the old value (and logging why) when it does not.
//
// It polls the content (a hash per interval) rather than waiting for file
// events (inotify, fsnotify), on purpose:
//   - it survives every way a file gets replaced: editors writing a temp
//     file and renaming it, Kubernetes swapping a ConfigMap's or Secret's
//     symlinked ..data directory, a mount whose events never arrive
//     (network file systems, some container runtimes);
//   - events would only be faster where they work, and the files watched
//     (rules, models, routes, tokens, API keys) change by hand or by a
//     deploy: the kubelet takes up to a minute to update a ConfigMap
//     volume anyway, so a few seconds of polling cost nothing a user sees;
//   - it takes no inotify instance, a per-user kernel limit (128 by
//     default) that the services of one node, or many tests, share and
//     that silently stops events when exhausted;
//   - one mechanism is one set of tests; events-plus-poll is two.
package filewatch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure Watch.
type Options struct {
	// Path is the file to watch.
	Path string
	// What names the file in the log: "rules", "topic model".
	What string
	// Initial is the content already in use; OnChange is not called until
	// the file differs from it.
	Initial []byte
	// Interval is how often the file is read; 0 or less reads it once
	// (a change made before Watch started) and then no more.
	Interval time.Duration
	// Log receives read problems, once per distinct problem; nil means
	// slog.Default().
	Log *slog.Logger
	// OnChange receives the new content, once per distinct content, from
	// Watch's goroutine. A content it rejects is not offered again until
	// the file changes.
	OnChange func(ctx context.Context, data []byte)
}

// settlePause is how long a changed file must stay the same before it is
// handed over (at most the interval).
const settlePause = 50 * time.Millisecond

// Watch runs until ctx is cancelled, calling o.OnChange whenever the content
// of o.Path changes.
func Watch(ctx context.Context, o Options) {
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	pause := min(settlePause, max(o.Interval, time.Millisecond))
	seen := sha256.Sum256(o.Initial)
	lastErr := ""
	check := func() {
		data, err := os.ReadFile(o.Path)
		if err == nil && sha256.Sum256(data) != seen {
			data, err = settled(ctx, o.Path, data, pause)
		}
		if err != nil {
			if ctx.Err() == nil && err.Error() != lastErr {
				lastErr = err.Error()
				log.ErrorContext(ctx, o.What+" file unreadable; keeping the current one", "path", o.Path, "err", err)
			}
			return
		}
		lastErr = ""
		if h := sha256.Sum256(data); h != seen {
			seen = h
			o.OnChange(ctx, data)
		}
	}
	// The file may have changed between the caller's read and now.
	check()
	if o.Interval <= 0 {
		<-ctx.Done()
		return
	}
	tick := time.NewTicker(o.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			check()
		}
	}
}

// settleReads bounds how often settled re-reads a file that keeps changing.
const settleReads = 10

// settled re-reads path, last read as data, until two reads a pause apart
// agree, so a file caught halfway through an in-place write (truncated,
// partly written) is not handed over; a file still changing after
// settleReads reads is returned as last read.
func settled(ctx context.Context, path string, data []byte, pause time.Duration) ([]byte, error) {
	for range settleReads {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pause):
		}
		again, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		if bytes.Equal(again, data) {
			return data, nil
		}
		data = again
	}
	return data, nil
}

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
	initial []byte        // the content Open read, where Run starts from
	changed chan struct{} // closed at the next swap; nil until asked for
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
	w := &Watcher[T]{path: path, what: what, parse: parse, log: log, lastSum: sha256.Sum256(data), initial: data}
	w.cur.Store(&v)
	return w, nil
}

// Get returns the current value.
func (w *Watcher[T]) Get() T { return *w.cur.Load() }

// Changed returns a channel closed when the next value is swapped in (by
// Reload or Run), so that what was granted on the current value (an open
// stream a token authenticated) can be looked at again. Take the channel
// before calling Get: a swap between the two is then not missed.
func (w *Watcher[T]) Changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.changed == nil {
		w.changed = make(chan struct{})
	}
	return w.changed
}

// Reload reads the file and swaps in its value if the content changed. It
// reports whether the value changed. A file that cannot be read or parsed
// leaves the current value in place; the error is returned and logged once
// per distinct problem, so a broken file does not flood the log.
func (w *Watcher[T]) Reload(ctx context.Context) (bool, error) {
	data, err := os.ReadFile(w.path)
	if err != nil {
		w.mu.Lock()
		defer w.mu.Unlock()
		if err.Error() != w.lastErr {
			w.lastErr = err.Error()
			w.log.ErrorContext(ctx, w.what+" file unreadable; keeping the current one", "path", w.path, "err", err)
		}
		return false, err
	}
	return w.apply(ctx, data)
}

// apply swaps in the value of data if it differs from the last content.
func (w *Watcher[T]) apply(ctx context.Context, data []byte) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
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
	if w.changed != nil {
		close(w.changed)
		w.changed = nil
	}
	w.log.InfoContext(ctx, w.what+" reloaded", "path", w.path)
	return true, nil
}

// Run reloads every interval until ctx is cancelled.
func (w *Watcher[T]) Run(ctx context.Context, interval time.Duration) {
	w.mu.Lock()
	initial := w.initial
	w.mu.Unlock()
	Watch(ctx, Options{
		Path: w.path, What: w.what, Initial: initial, Interval: interval, Log: w.log,
		OnChange: func(ctx context.Context, data []byte) {
			_, _ = w.apply(ctx, data) // errors are logged inside
		},
	})
}

// PathError prefixes a parse error with the file it came from.
type PathError struct {
	Path string
	Err  error
}

func (e *PathError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *PathError) Unwrap() error { return e.Err }
