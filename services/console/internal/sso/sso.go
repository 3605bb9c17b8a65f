// Package sso signs people in to the console through OpenID Connect: the
// authorization code flow with state, nonce and PKCE, the ID token checked
// by go-oidc (signature, issuer, audience, expiry) and its nonce here, and
// a claim naming the person's teams. Which teams those are is all the
// console learns; what a team may do is still decided by the router, which
// gets the team's token (from the console's team tokens file) and the
// person's name as the actor.
package sso

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"gopkg.in/yaml.v3"

	"github.com/feedloop/feedloop/pkg/bus"
)

// Errors of Exchange, for the callback to answer in words.
var (
	// ErrCode: the issuer refused the code (expired, used, not its own).
	ErrCode = errors.New("sso: the sign-in service refused the code")
	// ErrToken: the ID token is missing or does not verify (signature,
	// issuer, audience, expiry, nonce).
	ErrToken = errors.New("sso: the ID token does not verify")
	// ErrUnavailable: the issuer could not be reached.
	ErrUnavailable = errors.New("sso: the sign-in service is unavailable")
)

// Config is what the console's CONSOLE_OIDC_* variables give.
type Config struct {
	Issuer, ClientID, ClientSecret, RedirectURL string
	// TeamsClaim names the ID token claim listing the person's teams (a
	// string or an array of strings).
	TeamsClaim string
	// TeamPrefix, when set, keeps only claim values with this prefix and
	// strips it ("feedloop-billing" → "billing").
	TeamPrefix string
	// Tokens maps a team to the token the console uses for its people.
	Tokens map[string]string
}

// Identity is a signed-in person.
type Identity struct {
	Subject, Name, Email string
	// Teams are the person's teams that have a token, sorted.
	Teams []string
}

// Actor is how the router should record the person: their name, else
// their e-mail, else their subject; at most 128 printable characters.
func (id Identity) Actor() string {
	a := id.Name
	if a == "" {
		a = id.Email
	}
	if a == "" {
		a = id.Subject
	}
	a = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, strings.TrimSpace(a))
	if r := []rune(a); len(r) > 128 {
		a = string(r[:128])
	}
	return a
}

// Client talks to one issuer. Discovery happens at the first sign-in and
// is retried until it succeeds, so the console starts (and serves token
// sign-in) while the issuer is unreachable.
type Client struct {
	cfg  Config
	http *http.Client

	mu       sync.Mutex
	provider *oidc.Provider
	scopes   []string
}

// New returns a client; httpClient nil uses a client with a 10 s timeout.
func New(cfg Config, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 10 * time.Second}
	}
	return &Client{cfg: cfg, http: httpClient}
}

// ParseTokens reads the team tokens file: a YAML map of team to token,
// either at the top ("billing: <token>") or under a key tokens
// ("tokens: {billing: <token>}"). A team cannot be called tokens with a
// map for a value, so the two never mix up.
func ParseTokens(data []byte) (map[string]string, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("want a YAML map of team to team token: %w", err)
	}
	node := &root
	if len(root.Content) == 1 {
		if top := root.Content[0]; top.Kind == yaml.MappingNode && len(top.Content) == 2 &&
			top.Content[0].Value == "tokens" && top.Content[1].Kind == yaml.MappingNode {
			node = top.Content[1]
		}
	}
	var m map[string]string
	if node.Kind != 0 {
		if err := node.Decode(&m); err != nil {
			return nil, fmt.Errorf("want a YAML map of team to team token: %w", err)
		}
	}
	if len(m) == 0 {
		return nil, errors.New("no team: want a YAML map of team to team token, e.g. \"billing: <token>\"")
	}
	var errs []error
	for team, tok := range m {
		if !bus.ValidToken(team) {
			errs = append(errs, fmt.Errorf("team %q: must be 1-64 characters of a-z 0-9 _ -", team))
		}
		if strings.TrimSpace(tok) == "" {
			errs = append(errs, fmt.Errorf("team %s: empty token", team))
		}
	}
	return m, errors.Join(errs...)
}

// Token is the team token the console uses for team's people.
func (c *Client) Token(team string) (string, bool) {
	t, ok := c.cfg.Tokens[team]
	return t, ok
}

func (c *Client) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, c.http)
}

// discover returns the issuer's provider, fetching its discovery document
// the first time it is needed.
func (c *Client) discover(ctx context.Context) (*oidc.Provider, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.provider != nil {
		return c.provider, nil
	}
	// The key set keeps the HTTP client of this context, not its deadline.
	p, err := oidc.NewProvider(c.ctx(ctx), c.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("%w: discovery at %s: %w", ErrUnavailable, c.cfg.Issuer, err)
	}
	// profile and email give the name recorded as the actor. A scope
	// named like the teams claim (Keycloak's, Dex's, Okta's "groups") is
	// asked for only when the issuer offers it: some refuse unknown
	// scopes and put the claim in by their own configuration.
	var disc struct {
		Scopes []string `json:"scopes_supported"`
	}
	_ = p.Claims(&disc)
	c.scopes = []string{oidc.ScopeOpenID, "profile", "email"}
	if slices.Contains(disc.Scopes, c.cfg.TeamsClaim) && !slices.Contains(c.scopes, c.cfg.TeamsClaim) {
		c.scopes = append(c.scopes, c.cfg.TeamsClaim)
	}
	c.provider = p
	return p, nil
}

func (c *Client) oauth(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{
		ClientID: c.cfg.ClientID, ClientSecret: c.cfg.ClientSecret, RedirectURL: c.cfg.RedirectURL,
		Endpoint: p.Endpoint(), Scopes: c.scopes,
	}
}

// AuthURL is where to send the browser: the issuer's authorization
// endpoint with state, nonce and the PKCE challenge of verifier.
func (c *Client) AuthURL(ctx context.Context, state, nonce, verifier string) (string, error) {
	p, err := c.discover(ctx)
	if err != nil {
		return "", err
	}
	return c.oauth(p).AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), nil
}

// Exchange redeems code (with the PKCE verifier), verifies the ID token and
// its nonce, and reads the person and their teams.
func (c *Client) Exchange(ctx context.Context, code, verifier, nonce string) (Identity, error) {
	p, err := c.discover(ctx)
	if err != nil {
		return Identity{}, err
	}
	tok, err := c.oauth(p).Exchange(c.ctx(ctx), code, oauth2.VerifierOption(verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return Identity{}, fmt.Errorf("%w: %w", ErrCode, err)
		}
		return Identity{}, fmt.Errorf("%w: token exchange: %w", ErrUnavailable, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, fmt.Errorf("%w: the token response has no id_token", ErrToken)
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: c.cfg.ClientID}).Verify(c.ctx(ctx), raw)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrToken, err)
	}
	// go-oidc leaves the nonce to the caller: it ties the token to this
	// browser's attempt, so a token replayed from another is refused.
	if nonce == "" || idt.Nonce != nonce {
		return Identity{}, fmt.Errorf("%w: nonce does not match this sign-in attempt", ErrToken)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return Identity{}, fmt.Errorf("%w: claims: %w", ErrToken, err)
	}
	str := func(k string) string { s, _ := claims[k].(string); return s }
	id := Identity{Subject: idt.Subject, Name: str("name"), Email: str("email")}
	if id.Name == "" {
		id.Name = str("preferred_username")
	}
	id.Teams = c.teams(claims[c.cfg.TeamsClaim])
	return id, nil
}

// teams maps a claim's values to the teams the console has tokens for.
func (c *Client) teams(v any) []string {
	var vals []string
	switch v := v.(type) {
	case string:
		vals = []string{v}
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok {
				vals = append(vals, s)
			}
		}
	}
	var out []string
	for _, s := range vals {
		if c.cfg.TeamPrefix != "" {
			var ok bool
			if s, ok = strings.CutPrefix(s, c.cfg.TeamPrefix); !ok {
				continue
			}
		}
		if _, ok := c.cfg.Tokens[s]; ok {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
