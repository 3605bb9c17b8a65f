package router

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/feedloop/feedloop/pkg/filewatch"
	"github.com/feedloop/feedloop/services/router/internal/teamauth"
)

// tokensWatcher keeps the team tokens in step with their file, so a token
// is added, rotated or revoked without a restart; it is the teamauth.Source
// of the team API, and tells open Watch streams when the tokens changed.
// Without a file there are no tokens and every team API call is refused.
type tokensWatcher struct {
	w     *filewatch.Watcher[*teamauth.Tokens]
	empty *teamauth.Tokens

	mu      sync.Mutex
	changed chan struct{} // closed and replaced at every change
}

func openTokens(path string, log *slog.Logger) (*tokensWatcher, error) {
	if path == "" {
		log.Warn("router: no ROUTER_TEAM_TOKENS_FILE; every team API call will be refused")
		return &tokensWatcher{empty: &teamauth.Tokens{}, changed: make(chan struct{})}, nil
	}
	w, err := filewatch.Open(path, "team tokens", teamauth.Parse, log)
	if err != nil {
		return nil, err
	}
	return &tokensWatcher{w: w, changed: make(chan struct{})}, nil
}

// Tokens returns the tokens in force.
func (t *tokensWatcher) Tokens() *teamauth.Tokens {
	if t.w == nil {
		return t.empty
	}
	return t.w.Get()
}

// Changed returns a channel closed at the next change of the tokens.
func (t *tokensWatcher) Changed() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.changed
}

// Run reloads the file every interval until ctx is cancelled.
func (t *tokensWatcher) Run(ctx context.Context, interval time.Duration) {
	if t.w == nil {
		return
	}
	t.w.RunNotify(ctx, interval, func() {
		t.mu.Lock()
		close(t.changed)
		t.changed = make(chan struct{})
		t.mu.Unlock()
	})
}
