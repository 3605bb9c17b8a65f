// Package teamauth authenticates team API calls: every call carries
// "authorization: Bearer <token>", the token's SHA-256 must be one of the
// configured hashes, and the hash names the team (and who holds it). Tokens
// themselves are never stored, compared in clear or logged.
package teamauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"gopkg.in/yaml.v3"

	"github.com/feedloop/feedloop/pkg/bus"
)

// Principal is who a token belongs to.
type Principal struct {
	// Team the token acts for.
	Team string
	// Name of the holder (a person or a bot), recorded as the actor.
	Name string
}

// Tokens is the set of configured token hashes.
type Tokens struct {
	byHash map[[sha256.Size]byte]Principal
}

// file is the tokens file: ROUTER_TEAM_TOKENS_FILE.
type file struct {
	Tokens []struct {
		Team   string `yaml:"team"`
		Name   string `yaml:"name"`
		SHA256 string `yaml:"sha256"`
	} `yaml:"tokens"`
}

// Hash is the hex SHA-256 of token, as the tokens file holds it.
func Hash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// Parse reads a tokens file. Errors name the entry at fault.
func Parse(data []byte) (*Tokens, error) {
	var f file
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	t := &Tokens{byHash: make(map[[sha256.Size]byte]Principal, len(f.Tokens))}
	var errs []error
	for i, e := range f.Tokens {
		at := fmt.Sprintf("tokens[%d]", i)
		if !bus.ValidToken(e.Team) {
			errs = append(errs, fmt.Errorf("%s.team: must be 1-64 characters of a-z 0-9 _ -, got %q", at, e.Team))
		}
		raw, err := hex.DecodeString(e.SHA256)
		if err != nil || len(raw) != sha256.Size {
			errs = append(errs, fmt.Errorf("%s.sha256: must be 64 hex digits (the SHA-256 of the token, see `feedloop inbox token`)", at))
			continue
		}
		key := [sha256.Size]byte(raw)
		if _, dup := t.byHash[key]; dup {
			errs = append(errs, fmt.Errorf("%s.sha256: the same token is listed twice", at))
		}
		name := e.Name
		if name == "" {
			name = e.Team
		}
		t.byHash[key] = Principal{Team: e.Team, Name: name}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}

// Load reads and parses the tokens file at path.
func Load(path string) (*Tokens, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data)
}

// Lookup returns the principal of token.
func (t *Tokens) Lookup(token string) (Principal, bool) {
	if t == nil || token == "" {
		return Principal{}, false
	}
	// Looking up by hash leaks at most timing about the hash, never about
	// the token, so no constant-time comparison is needed.
	p, ok := t.byHash[sha256.Sum256([]byte(token))]
	return p, ok
}

// Len is the number of tokens.
func (t *Tokens) Len() int { return len(t.byHash) }

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

// authenticate finds the caller of a call to a guarded method.
func authenticate(ctx context.Context, tokens *Tokens) (Principal, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return Principal{}, status.Error(codes.Unauthenticated, "missing authorization metadata: send \"authorization: Bearer <team token>\"")
	}
	scheme, token, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(token) == "" {
		return Principal{}, status.Error(codes.Unauthenticated, "authorization: want \"Bearer <team token>\"")
	}
	p, ok := tokens.Lookup(strings.TrimSpace(token))
	if !ok {
		return Principal{}, status.Error(codes.Unauthenticated, "unknown team token")
	}
	return p, nil
}

// Interceptors guard every method whose full name starts with prefix (e.g.
// "/feedloop.v1.TeamService/"); health and reflection stay open. tokens is
// called per call so a reloaded file takes effect at once.
func Interceptors(prefix string, tokens func() *Tokens) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	unary := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if !strings.HasPrefix(info.FullMethod, prefix) {
			return h(ctx, req)
		}
		p, err := authenticate(ctx, tokens())
		if err != nil {
			return nil, err
		}
		return h(WithPrincipal(ctx, p), req)
	}
	stream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if !strings.HasPrefix(info.FullMethod, prefix) {
			return h(srv, ss)
		}
		p, err := authenticate(ss.Context(), tokens())
		if err != nil {
			return err
		}
		return h(srv, &principalStream{ServerStream: ss, ctx: WithPrincipal(ss.Context(), p)})
	}
	return unary, stream
}

type principalStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *principalStream) Context() context.Context { return s.ctx }
