// Package console "delivers" notifications by writing one readable line per
// message to a writer: what `feedloop dev` shows when no webhook or SMTP
// server is configured.
package console

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/feedloop/feedloop/services/notifier/internal/channel"
)

// Writer writes one line per message, e.g.
//
//	→ customer ada@example.com [received] "We got your feedback: Charged twice"
//
// Lines from concurrent sends never interleave.
type Writer struct {
	mu sync.Mutex
	w  io.Writer
}

// New returns a Writer on w.
func New(w io.Writer) *Writer { return &Writer{w: w} }

// Send writes m's line. Quoting the subject keeps one line per message even
// if it held a line break.
func (c *Writer) Send(_ context.Context, m channel.Message) error {
	line := fmt.Sprintf("→ %s %s [%s] %q feedback=%s\n", m.Data.Audience, m.To, m.Data.Step, m.Subject, m.Data.FeedbackID)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := io.WriteString(c.w, line); err != nil {
		return fmt.Errorf("console: %w", err)
	}
	return nil
}

var _ channel.Sender = (*Writer)(nil)
