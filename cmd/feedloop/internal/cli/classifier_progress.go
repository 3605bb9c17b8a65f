package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// progress draws a bar on a terminal; on anything else it draws nothing,
// so logs and pipes stay clean.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	label string
	on    bool
	start time.Time
	last  time.Time
	drawn bool
}

func newProgress(w io.Writer, label string) *progress {
	f, ok := w.(*os.File)
	return &progress{w: w, label: label, on: ok && term.IsTerminal(int(f.Fd())), start: time.Now()}
}

// update is a progress callback: safe for concurrent use, redraws at most
// ten times a second.
func (p *progress) update(done, total int) {
	if p == nil || !p.on || total <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if done < total && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	const width = 30
	n := width * done / total
	fmt.Fprintf(p.w, "\r%s [%s%s] %3d%% %s ", p.label, strings.Repeat("=", n), strings.Repeat(" ", width-n),
		100*done/total, now.Sub(p.start).Round(100*time.Millisecond))
	p.drawn = true
}

// finish ends the bar's line.
func (p *progress) finish() {
	if p == nil || !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}
