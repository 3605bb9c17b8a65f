package router

import (
	"context"
	"log/slog"
	"time"

	"github.com/feedloop/feedloop/pkg/filewatch"
	"github.com/feedloop/feedloop/services/router/internal/teamauth"
)

// tokensWatcher keeps the team tokens in step with their file, so a token
// is added or rotated without a restart. Without a file there are no
// tokens and every team API call is refused.
type tokensWatcher struct {
	w     *filewatch.Watcher[*teamauth.Tokens]
	empty *teamauth.Tokens
}

func openTokens(path string, log *slog.Logger) (*tokensWatcher, error) {
	if path == "" {
		log.Warn("router: no ROUTER_TEAM_TOKENS_FILE; every team API call will be refused")
		return &tokensWatcher{empty: &teamauth.Tokens{}}, nil
	}
	w, err := filewatch.Open(path, "team tokens", teamauth.Parse, log)
	if err != nil {
		return nil, err
	}
	return &tokensWatcher{w: w}, nil
}

// Tokens returns the tokens in force.
func (t *tokensWatcher) Tokens() *teamauth.Tokens {
	if t.w == nil {
		return t.empty
	}
	return t.w.Get()
}

// Run reloads the file every interval until ctx is cancelled.
func (t *tokensWatcher) Run(ctx context.Context, interval time.Duration) {
	if t.w != nil {
		t.w.Run(ctx, interval)
	}
}
