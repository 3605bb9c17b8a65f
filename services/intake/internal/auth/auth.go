// Package auth authenticates submissions by API key: the value of an
// "authorization: Bearer <key>" header, whichever transport carried it. A
// known, live key gives a Caller, which the gRPC and HTTP ports put in the
// context (and answer a refusal in their own terms); the use case then
// refuses items for any other source.
package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/feedloop/feedloop/pkg/apikey"
)

// Caller is who submits, as authenticated by an API key. A context without
// a Caller is an unauthenticated submission (no keys file, or NATS, whose
// permissions already bind a source's user to its subject).
type Caller struct {
	// Source is the only source the caller may submit for.
	Source string
	// Key is the name of the caller's key, for logs.
	Key string
}

type callerKey struct{}

// WithCaller returns ctx carrying c.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the Caller of ctx, if authenticated.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

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

// ErrMissing: no authorization at all.
var ErrMissing = errors.New("missing API key")

// Authenticate returns the caller of an authorization value (present is
// false when there is none); header is its name as the transport spells it,
// for the messages. The errors are the messages callers see: they say what
// to fix without revealing anything about other keys.
func (a *Authenticator) Authenticate(ctx context.Context, value string, present bool, header string) (Caller, error) {
	c, err := a.check(value, present, header)
	if err != nil && a.refused != nil {
		a.refused(ctx)
	}
	return c, err
}

func (a *Authenticator) check(value string, present bool, header string) (Caller, error) {
	if !present {
		return Caller{}, fmt.Errorf("%w: send %q", ErrMissing, header+": Bearer <API key>")
	}
	secret, ok := apikey.Bearer(value)
	if !ok {
		return Caller{}, fmt.Errorf("%s: want %q", header, "Bearer <API key>")
	}
	e, err := a.keys().Lookup(secret, a.now())
	switch {
	case errors.Is(err, apikey.ErrUnknown):
		return Caller{}, errors.New("unknown API key")
	case errors.Is(err, apikey.ErrExpired), errors.Is(err, apikey.ErrRevoked):
		return Caller{}, fmt.Errorf("API key refused: %w; ask for a new one", err)
	case err != nil:
		return Caller{}, fmt.Errorf("API key refused: %w", err)
	}
	return Caller{Source: e.Scope, Key: e.Name}, nil
}
