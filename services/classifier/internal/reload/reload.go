// Package reload watches one file and hands its content over whenever it
// changes. It watches the file's directory, not the file: editors and
// Kubernetes ConfigMap updates replace files (rename, symlink swap) rather
// than write them in place, which a watch on the file itself would miss.
// A poll by content hash backs the watch up where file events are not
// delivered (network file systems, some container mounts).
package reload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce lets a burst of events (truncate, write, chmod, rename)
// settle into one read.
const DefaultDebounce = 100 * time.Millisecond

// Options configure Watch.
type Options struct {
	// Path is the file to watch.
	Path string
	// Initial is the content already in use; OnChange is not called until
	// the file differs from it.
	Initial []byte
	// PollInterval re-reads the file that often; 0 disables polling.
	PollInterval time.Duration
	// Debounce waits that long after the last file event; 0 means
	// DefaultDebounce.
	Debounce time.Duration
	// DisableNotify turns file events off, leaving polling alone.
	DisableNotify bool
	// Log receives watch problems; nil means slog.Default().
	Log *slog.Logger
	// OnChange receives the new content, once per distinct content. A
	// content it rejects is not offered again until the file changes.
	OnChange func(ctx context.Context, data []byte)
}

// Watch runs until ctx is cancelled, calling o.OnChange from this goroutine
// whenever the content of o.Path changes.
func Watch(ctx context.Context, o Options) {
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	debounce := o.Debounce
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	seen := sha256.Sum256(o.Initial)
	check := func() {
		data, err := os.ReadFile(o.Path)
		if err == nil && sha256.Sum256(data) != seen {
			data, err = settled(ctx, o.Path, data, debounce)
		}
		if err != nil {
			// Between a remove and a create the file is briefly missing; the
			// create brings another event.
			if ctx.Err() == nil {
				log.WarnContext(ctx, "reload: cannot read watched file", "path", o.Path, "err", err)
			}
			return
		}
		if h := sha256.Sum256(data); h != seen {
			seen = h
			o.OnChange(ctx, data)
		}
	}

	var events <-chan fsnotify.Event
	var errs <-chan error
	if !o.DisableNotify {
		w, err := fsnotify.NewWatcher()
		if err == nil {
			err = w.Add(filepath.Dir(o.Path))
		}
		if err != nil {
			log.WarnContext(ctx, "reload: file events unavailable; relying on polling", "path", o.Path, "poll_interval", o.PollInterval, "err", err)
		} else {
			defer w.Close()
			events, errs = w.Events, w.Errors
		}
	}
	var tick <-chan time.Time
	if o.PollInterval > 0 {
		t := time.NewTicker(o.PollInterval)
		defer t.Stop()
		tick = t.C
	}
	settle := time.NewTimer(debounce)
	settle.Stop()
	defer settle.Stop()
	// The file may have changed between the caller's read and the watch.
	check()
	for {
		select {
		case <-ctx.Done():
			return
		case <-events:
			// Any event in the directory may be the file's: with a symlink
			// swap the event names the link's target directory, not the file.
			settle.Reset(debounce)
		case err := <-errs:
			log.WarnContext(ctx, "reload: file watch error", "path", o.Path, "err", err)
		case <-settle.C:
			check()
		case <-tick:
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
