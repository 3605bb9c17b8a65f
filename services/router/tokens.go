package router

import (
	"context"
	"log/slog"
	"time"

	"github.com/feedloop/feedloop/pkg/filewatch"
	"github.com/feedloop/feedloop/services/router/internal/teamauth"
)

// openTokens returns the team API's tokens and what keeps them in step with
// their file: a token is added, rotated or revoked without a restart, and
// open Watch streams learn of it (filewatch.Watcher.Changed). Without a
// file there are no tokens and every team API call is refused.
func openTokens(path string, log *slog.Logger) (teamauth.Source, func(context.Context, time.Duration), error) {
	if path == "" {
		log.Warn("router: no ROUTER_TEAM_TOKENS_FILE; every team API call will be refused")
		return teamauth.Static{T: &teamauth.Tokens{}}, func(context.Context, time.Duration) {}, nil
	}
	w, err := filewatch.Open(path, "team tokens", teamauth.Parse, log)
	if err != nil {
		return nil, nil, err
	}
	return w, w.Run, nil
}
