// Package teamauth authenticates team API calls: every call carries
// "authorization: Bearer <token>", the token's SHA-256 must be one of the
// configured hashes (pkg/apikey), and the hash names the team (and who
// holds it). A token may carry an expiry or be revoked; an open stream ends
// when its token stops being valid. Tokens themselves are never stored,
// compared in clear or logged.
package teamauth

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"gopkg.in/yaml.v3"

	"github.com/feedloop/feedloop/pkg/apikey"
	"github.com/feedloop/feedloop/pkg/bus"
)

// Principal is who a token belongs to.
type Principal struct {
	// Team the token acts for.
	Team string
	// Name of the holder (a person or a bot), recorded as the actor.
	Name string
	// Expires is when the token stops being valid; zero: never. A console
	// shows it so a session ends before its calls start failing.
	Expires time.Time
	// Delegate: the token's holder (the web console) acts for people it
	// authenticated itself and may name them in ActorHeader.
	Delegate bool
}

// ActorHeader is the metadata by which a delegate token names the person
// it acts for, percent-encoded UTF-8 (gRPC metadata is ASCII only).
const ActorHeader = "x-feedloop-actor"

// Tokens is the set of configured token hashes.
type Tokens struct {
	set *apikey.Set
	// delegates holds the lower-case hex hashes of the delegate tokens.
	delegates map[string]bool
}

// file is the tokens file: ROUTER_TEAM_TOKENS_FILE.
type file struct {
	Tokens []struct {
		Team    string `yaml:"team"`
		Name    string `yaml:"name"`
		SHA256  string `yaml:"sha256"`
		Expires string `yaml:"expires"`
		Revoked bool   `yaml:"revoked"`
		// Delegate lets the token name the person it acts for (ActorHeader).
		Delegate bool `yaml:"delegate"`
	} `yaml:"tokens"`
}

// Hash is the hex SHA-256 of token, as the tokens file holds it.
func Hash(token string) string { return apikey.Hash(token) }

// Parse reads a tokens file. Errors name the entry (by index, team and
// holder) and the field at fault.
func Parse(data []byte) (*Tokens, error) {
	var f file
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	// who names entry i for an error, e.g. "billing/alice".
	who := func(i int) string {
		e := f.Tokens[i]
		if e.Name == "" {
			return e.Team
		}
		return e.Team + "/" + e.Name
	}
	entries := make([]apikey.Entry, 0, len(f.Tokens))
	delegates := map[string]bool{}
	var errs []error
	for i, e := range f.Tokens {
		if !bus.ValidToken(e.Team) {
			errs = append(errs, fmt.Errorf("tokens[%d].team: must be 1-64 characters of a-z 0-9 _ -, got %q", i, e.Team))
		}
		if len(e.Name) > 128 || strings.ContainsFunc(e.Name, unicode.IsControl) {
			// Not repeated: it is recorded as an actor, and a name that
			// long is more likely a pasted token than a person.
			errs = append(errs, fmt.Errorf("tokens[%d].name (team %s): at most 128 characters, no control characters", i, e.Team))
		}
		var expires time.Time
		if e.Expires != "" {
			t, err := time.Parse(time.RFC3339, e.Expires)
			if err != nil {
				errs = append(errs, fmt.Errorf("tokens[%d].expires (%s): must be an RFC 3339 time such as 2027-03-01T00:00:00Z, got %q", i, who(i), e.Expires))
			}
			expires = t
		}
		entries = append(entries, apikey.Entry{Scope: e.Team, Name: e.Name, SHA256: e.SHA256, Expires: expires, Revoked: e.Revoked})
		if e.Delegate {
			delegates[strings.ToLower(e.SHA256)] = true
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	set, err := apikey.NewSet(entries)
	if err != nil {
		// apikey names the entry by index, "[2].sha256: …": add the list's
		// name and who the entry is.
		var out []error
		for _, e := range unjoin(err) {
			msg := e.Error()
			var i int
			if _, serr := fmt.Sscanf(msg, "[%d]", &i); serr == nil && i >= 0 && i < len(f.Tokens) {
				field, rest, _ := strings.Cut(msg[strings.IndexByte(msg, ']')+1:], ":")
				msg = fmt.Sprintf("[%d]%s (%s):%s", i, field, who(i), rest)
			}
			out = append(out, fmt.Errorf("tokens%s (see `feedloop inbox token`)", msg))
		}
		return nil, errors.Join(out...)
	}
	return &Tokens{set: set, delegates: delegates}, nil
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// Load reads and parses the tokens file at path.
func Load(path string) (*Tokens, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data)
}

// Lookup returns the principal of token and when it expires (zero: never),
// or an error wrapping apikey.ErrUnknown, ErrExpired or ErrRevoked.
func (t *Tokens) Lookup(token string, now time.Time) (Principal, time.Time, error) {
	var set *apikey.Set
	if t != nil {
		set = t.set
	}
	e, err := set.Lookup(token, now)
	if err != nil {
		return Principal{}, time.Time{}, err
	}
	return Principal{Team: e.Scope, Name: e.Name, Expires: e.Expires, Delegate: t.delegates[Hash(token)]}, e.Expires, nil
}

// Len is the number of tokens, revoked and expired ones included.
func (t *Tokens) Len() int {
	if t == nil {
		return 0
	}
	return t.set.Len()
}

// Source is the tokens in force and how to learn that they changed; the
// tokens file kept in step by filewatch (a *filewatch.Watcher[*Tokens]) is
// one.
type Source interface {
	Get() *Tokens
	// Changed returns a channel that is closed at the next change.
	Changed() <-chan struct{}
}

// Static is a Source that never changes.
type Static struct{ T *Tokens }

func (s Static) Get() *Tokens             { return s.T }
func (s Static) Changed() <-chan struct{} { return nil }

type ctxKey struct{}

// FromContext returns the principal an interceptor authenticated.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// refusal is the Unauthenticated status of a lookup error. The messages
// say what to do; they never repeat the token.
func refusal(err error) error {
	switch {
	case errors.Is(err, apikey.ErrExpired):
		// err reads "key expired on <time>".
		on := strings.TrimPrefix(err.Error(), apikey.ErrExpired.Error())
		return status.Errorf(codes.Unauthenticated, "team token expired%s; ask for a new one", on)
	case errors.Is(err, apikey.ErrRevoked):
		return status.Error(codes.Unauthenticated, "team token revoked; ask for a new one")
	default:
		return status.Error(codes.Unauthenticated, unknownToken)
	}
}

// unknownToken is the refusal of a token the tokens file does not
// list. The usual cause is a token of another setup: feedloop dev keeps
// its own per --data directory.
const unknownToken = "unknown team token: this router's tokens file does not list it; ask whoever runs the router for one, " +
	"or, against 'feedloop dev', use a token from <data>/dev-team-tokens.yaml of the --data it runs with ('feedloop inbox --as TEAM' reads it)"

// bearer reads the token of a call.
func bearer(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return "", status.Error(codes.Unauthenticated, "missing authorization metadata: send \"authorization: Bearer <team token>\"")
	}
	token, ok := apikey.Bearer(vals[0])
	if !ok {
		return "", status.Error(codes.Unauthenticated, "authorization: want \"Bearer <team token>\"")
	}
	return token, nil
}

// actor applies a call's ActorHeader to p: a delegate token acts as
// "<person> (via <holder>)", so the record names the person and how they
// came; any other token naming someone is refused, so an ordinary token
// cannot impersonate.
func actor(ctx context.Context, p Principal) (Principal, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(ActorHeader)
	if len(vals) == 0 {
		return p, nil
	}
	if !p.Delegate {
		return Principal{}, status.Errorf(codes.PermissionDenied, "%s: this team token may not act for someone else (only a token marked delegate: true may)", ActorHeader)
	}
	person, err := url.PathUnescape(vals[0])
	person = strings.TrimSpace(person)
	if len(vals) > 1 || err != nil || !validPerson(person) {
		return Principal{}, status.Errorf(codes.InvalidArgument, "%s: want one percent-encoded UTF-8 name of 1-128 printable characters", ActorHeader)
	}
	p.Name = person + " (via " + p.Name + ")"
	return p, nil
}

func validPerson(s string) bool {
	n := utf8.RuneCountInString(s)
	return n >= 1 && n <= 128 && utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) })
}

// Interceptors guard every method whose full name starts with prefix (e.g.
// "/feedloop.v1.TeamService/"); health and reflection stay open. The
// tokens of src are read per call so a reloaded file takes effect at once;
// an open stream is checked again whenever src changes and ends with
// Unauthenticated when its token is revoked, removed or expires. now is
// the clock (nil: time.Now).
func Interceptors(prefix string, src Source, now func() time.Time) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	if now == nil {
		now = time.Now
	}
	authenticate := func(ctx context.Context) (string, Principal, error) {
		token, err := bearer(ctx)
		if err != nil {
			return "", Principal{}, err
		}
		p, _, err := src.Get().Lookup(token, now())
		if err != nil {
			return "", Principal{}, refusal(err)
		}
		if p, err = actor(ctx, p); err != nil {
			return "", Principal{}, err
		}
		return token, p, nil
	}
	unary := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if !strings.HasPrefix(info.FullMethod, prefix) {
			return h(ctx, req)
		}
		_, p, err := authenticate(ctx)
		if err != nil {
			return nil, err
		}
		return h(WithPrincipal(ctx, p), req)
	}
	stream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if !strings.HasPrefix(info.FullMethod, prefix) {
			return h(srv, ss)
		}
		token, p, err := authenticate(ss.Context())
		if err != nil {
			return err
		}
		ctx, cancel := context.WithCancelCause(WithPrincipal(ss.Context(), p))
		defer cancel(nil)
		go guard(ctx, cancel, src, token, now)
		err = h(srv, &principalStream{ServerStream: ss, ctx: ctx})
		if ended, ok := context.Cause(ctx).(*endedError); ok {
			// Whatever the handler made of its cancelled context, the
			// caller learns why the stream ended.
			return ended.status
		}
		return err
	}
	return unary, stream
}

// endedError is the cause a guard cancels a stream with.
type endedError struct{ status error }

func (e *endedError) Error() string { return e.status.Error() }

// guard cancels an open stream's context when its token stops being valid:
// at its expiry, or at a change of the tokens that no longer admits it.
func guard(ctx context.Context, cancel context.CancelCauseFunc, src Source, token string, now func() time.Time) {
	for {
		changed := src.Changed()
		// Look the token up after taking the channel, so a change between
		// the two is not missed.
		_, exp, err := src.Get().Lookup(token, now())
		if err != nil {
			cancel(&endedError{refusal(err)})
			return
		}
		var expired <-chan time.Time
		var timer *time.Timer
		if !exp.IsZero() {
			timer = time.NewTimer(exp.Sub(now()))
			expired = timer.C
		}
		select {
		case <-ctx.Done():
		case <-changed:
		case <-expired:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

type principalStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *principalStream) Context() context.Context { return s.ctx }
