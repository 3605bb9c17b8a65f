// Package auth authenticates submissions by API key: "authorization:
// Bearer <key>" on gRPC (interceptors, grpc.go) and HTTP (middleware,
// http.go). A known, live key puts its accept.Caller in the context; the use
// case then refuses items for any other source.
package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/feedloop/feedloop/pkg/apikey"
	"github.com/feedloop/feedloop/services/intake/internal/accept"
)

// Authenticator checks keys against the set in force.
type Authenticator struct {
	keys    func() *apikey.Set
	now     func() time.Time
	refused func(ctx context.Context)
}

// New returns an Authenticator. keys is called per request, so a reloaded
// keys file takes effect at once; refused, if not nil, is called for every
// refused request (metrics).
func New(keys func() *apikey.Set, now func() time.Time, refused func(ctx context.Context)) *Authenticator {
	return &Authenticator{keys: keys, now: now, refused: refused}
}

// errMissing: no authorization at all.
var errMissing = errors.New("missing API key")

// authenticate returns the caller of an authorization value (present is
// false when there is none). The errors are the messages callers see: they
// say what to fix without revealing anything about other keys.
func (a *Authenticator) authenticate(ctx context.Context, value string, present bool, header string) (accept.Caller, error) {
	c, err := a.check(value, present, header)
	if err != nil && a.refused != nil {
		a.refused(ctx)
	}
	return c, err
}

func (a *Authenticator) check(value string, present bool, header string) (accept.Caller, error) {
	if !present {
		return accept.Caller{}, fmt.Errorf("%w: send %q", errMissing, header+": Bearer <API key>")
	}
	secret, ok := apikey.Bearer(value)
	if !ok {
		return accept.Caller{}, fmt.Errorf("%s: want %q", header, "Bearer <API key>")
	}
	e, err := a.keys().Lookup(secret, a.now())
	switch {
	case errors.Is(err, apikey.ErrUnknown):
		return accept.Caller{}, errors.New("unknown API key")
	case errors.Is(err, apikey.ErrExpired), errors.Is(err, apikey.ErrRevoked):
		return accept.Caller{}, fmt.Errorf("API key refused: %w; ask for a new one", err)
	case err != nil:
		return accept.Caller{}, fmt.Errorf("API key refused: %w", err)
	}
	return accept.Caller{Source: e.Scope, Key: e.Name}, nil
}
