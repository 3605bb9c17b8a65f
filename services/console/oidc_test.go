package console_test

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/feedloop/feedloop/pkg/apikey"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/console"
)

// The console's delegate tokens, one per team it signs people in to.
var consoleTokens = map[string]string{"billing": "console-billing-0123456789", "logistics": "console-logistics-0123456789"}

// person is a user of the test issuer: ID token claims of our choosing,
// including ones that must be refused (another audience, another nonce).
type person struct {
	sub, name, email string
	groups           any    // the teams claim: []string or a string
	aud, nonce       string // overrides, to forge a bad token
}

type personClaims struct {
	*mockoidc.IDTokenClaims
	Name   string `json:"name,omitempty"`
	Email  string `json:"email,omitempty"`
	Groups any    `json:"groups,omitempty"`
}

func (p person) ID() string                          { return p.sub }
func (p person) Userinfo(_ []string) ([]byte, error) { return []byte(`{"sub":"` + p.sub + `"}`), nil }
func (p person) Claims(_ []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	if p.aud != "" {
		base.Audience = []string{p.aud}
	}
	if p.nonce != "" {
		base.Nonce = p.nonce
	}
	return &personClaims{IDTokenClaims: base, Name: p.name, Email: p.email, Groups: p.groups}, nil
}

// oidcEnv is the pipeline of start with a console signing people in
// through a real OpenID Connect issuer on loopback.
type oidcEnv struct {
	*env
	issuer *mockoidc.MockOIDC
}

func startOIDC(t *testing.T) *oidcEnv {
	t.Helper()
	e := start(t)
	// The router learns the console's tokens: delegate, so they may name
	// the person acting.
	var b strings.Builder
	b.WriteString("tokens:\n")
	for team, tok := range tokens {
		fmt.Fprintf(&b, "  - {team: %s, name: %s-lead, sha256: %s}\n", team, team, apikey.Hash(tok))
	}
	for team, tok := range consoleTokens {
		fmt.Fprintf(&b, "  - {team: %s, name: console, delegate: true, sha256: %s}\n", team, apikey.Hash(tok))
	}
	writeFile(t, e.tokens, b.String())
	c := e.team("billing")
	c.tok = consoleTokens["billing"]
	testkit.Eventually(t, "the router accepts the console's token", func() bool {
		_, err := c.Me(c.ctx(), &feedloopv1.MeRequest{})
		return err == nil
	})

	m, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	dir := t.TempDir()
	// The map under tokens (sso's tests read the top-level form too).
	var teamTokens strings.Builder
	teamTokens.WriteString("tokens:\n")
	for team, tok := range consoleTokens {
		fmt.Fprintf(&teamTokens, "  %s: %s\n", team, tok)
	}
	cfg := testConfig(e.router.GRPCAddr(), templatesDir)
	cfg.StatusURL = statusBase
	cfg.SessionKeyFile = writeFile(t, filepath.Join(dir, "session-key"), rand.Text()+rand.Text())
	cfg.OIDCIssuer, cfg.OIDCClientID = m.Issuer(), m.ClientID
	cfg.OIDCClientSecretFile = writeFile(t, filepath.Join(dir, "client-secret"), m.ClientSecret+"\n")
	cfg.OIDCTeamTokensFile = writeFile(t, filepath.Join(dir, "team-tokens.yaml"), teamTokens.String())
	cfg.OIDCTeamPrefix = "feedloop-"
	cs, err := console.New(cfg, nil)
	if err != nil {
		t.Fatalf("console.New: %v", err)
	}
	testkit.Run(t, cs.Run)
	oe := *e
	oe.console, oe.url = cs, cs.URL()
	return &oidcEnv{env: &oe, issuer: m}
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path+".tmp", []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	return path
}

// signInAs goes through the whole single sign-on as p and returns the
// page the browser lands on.
func (e *oidcEnv) signInAs(b *browser, p person) resp {
	e.t.Helper()
	e.issuer.QueueUser(p)
	return b.get("/oidc/login")
}

func (b *browser) signedOut() bool {
	b.t.Helper()
	return b.get("/").url == "/signin"
}

// A person in group feedloop-billing signs in through the issuer, sees
// billing's inbox under their own name, and what they do is recorded in
// the router as theirs (via the console's token), not as the token's.
func TestOIDCSignInActsAsThePerson(t *testing.T) {
	e := startOIDC(t)
	id := e.submit(fb{subject: "Charged twice", text: "I was charged twice.", topic: "billing"})
	parcel := e.submit(fb{subject: "Parcel lost", text: "My parcel never came.", topic: "delivery"})
	b := e.browser()
	if r := b.get("/signin"); !strings.Contains(r.body, `href="/oidc/login"`) || !strings.Contains(r.body, "Sign in with your company account") {
		t.Fatalf("the sign-in page offers no single sign-on:\n%s", r.body)
	}
	r := e.signInAs(b, person{sub: "u-ada", name: "Ada Lovelace", email: "ada@acme.example", groups: []string{"staff", "feedloop-billing", "billing-admins"}})
	if r.code != http.StatusOK || r.url != "/" || !strings.Contains(r.body, "Ada Lovelace · team <strong>billing</strong>") {
		t.Fatalf("after single sign-on: %d at %s:\n%s", r.code, r.url, r.body)
	}
	if got := rowIDs(r.body); len(got) != 1 || got[0] != id {
		t.Fatalf("inbox rows %v, want billing's item %s only (not %s)", got, id, parcel)
	}
	if strings.Contains(r.body, "Switch team") {
		t.Error("a person in one team is offered to switch teams")
	}
	for _, c := range b.c.Jar.Cookies(mustURL(e.url)) {
		if strings.Contains(c.Value, consoleTokens["billing"]) {
			t.Error("a cookie holds the console's team token in clear")
		}
	}
	b.get("/items/" + id)
	if r := b.post("/items/"+id+"/acknowledge", url.Values{}); !strings.Contains(r.body, "Acknowledged.") {
		t.Fatalf("acknowledge: %d\n%s", r.code, r.body)
	}
	c := e.team("billing")
	res, err := c.Get(c.ctx(), &feedloopv1.GetRequest{FeedbackId: id})
	if err != nil {
		t.Fatal(err)
	}
	var actors []string
	for _, te := range res.GetItem().GetTimeline() {
		if te.GetKind() == feedloopv1.TimelineKind_TIMELINE_KIND_STATUS_CHANGED && te.GetTo() == feedloopv1.Status_STATUS_ACKNOWLEDGED {
			actors = append(actors, te.GetActor())
		}
	}
	if len(actors) != 1 || actors[0] != "Ada Lovelace (via console)" {
		t.Fatalf("acknowledged by %q, want the person via the console", actors)
	}
	// The item page shows the same.
	if r := b.get("/items/" + id); !strings.Contains(r.body, "Ada Lovelace (via console)") {
		t.Errorf("the item's timeline does not name the person")
	}
	// Signing out ends it like any session.
	if r := b.post("/signout", url.Values{}); r.url != "/signin" || !b.signedOut() {
		t.Fatalf("sign-out: at %s", r.url)
	}
}

// A person in two teams chooses one (a POST with the CSRF token), can
// switch to the other from the header, and to no team outside their
// groups; until they choose, they act for no team.
func TestOIDCChooseAndSwitchTeam(t *testing.T) {
	e := startOIDC(t)
	billing := e.submit(fb{subject: "Charged twice", text: "I was charged twice.", topic: "billing"})
	parcel := e.submit(fb{subject: "Parcel lost", text: "My parcel never came.", topic: "delivery"})
	b := e.browser()
	// feedloop-triage: a team without a console token is not offered.
	r := e.signInAs(b, person{sub: "u-grace", name: "Grace Hopper", groups: []string{"feedloop-logistics", "feedloop-billing", "feedloop-triage"}})
	if r.url != "/oidc/team" || !strings.Contains(r.body, `value="billing"`) || !strings.Contains(r.body, `value="logistics"`) || strings.Contains(r.body, `value="triage"`) {
		t.Fatalf("chooser: %d at %s:\n%s", r.code, r.url, r.body)
	}
	if r := b.get("/"); r.url != "/oidc/team" {
		t.Fatalf("before choosing, / went to %s, want the chooser", r.url)
	}
	if r := b.post("/oidc/team", url.Values{"team": {"logistics"}, "csrf_token": {""}}); r.code != http.StatusForbidden || !strings.Contains(r.body, "Form refused") {
		t.Fatalf("choice without CSRF token: %d\n%s", r.code, r.body)
	}
	b.get("/oidc/team")
	r = b.post("/oidc/team", url.Values{"team": {"logistics"}})
	if r.url != "/" || !strings.Contains(r.body, "Grace Hopper · team <strong>logistics</strong>") || !strings.Contains(r.body, `href="/oidc/team">Switch team`) {
		t.Fatalf("after choosing logistics: %d at %s:\n%s", r.code, r.url, r.body)
	}
	if got := rowIDs(r.body); len(got) != 1 || got[0] != parcel {
		t.Fatalf("logistics inbox %v, want [%s]", got, parcel)
	}
	b.get("/oidc/team")
	if r := b.post("/oidc/team", url.Values{"team": {"triage"}}); r.code != http.StatusForbidden {
		t.Fatalf("switch to a team outside the person's groups: %d\n%s", r.code, r.body)
	}
	if r := b.get("/"); !strings.Contains(r.body, "team <strong>logistics</strong>") {
		t.Fatal("a refused switch changed the team")
	}
	b.get("/oidc/team")
	if r := b.post("/oidc/team", url.Values{"team": {"billing"}}); !strings.Contains(r.body, "team <strong>billing</strong>") || rowIDs(r.body)[0] != billing {
		t.Fatalf("switch to billing: %d at %s", r.code, r.url)
	}
}

// A person in no feedloop team is refused in words, with a 403 and no
// session.
func TestOIDCNoTeamIsRefused(t *testing.T) {
	e := startOIDC(t)
	b := e.browser()
	// billing without the prefix is not a feedloop group.
	r := e.signInAs(b, person{sub: "u-linus", name: "Linus", groups: []string{"staff", "billing"}})
	if r.code != http.StatusForbidden || !strings.Contains(r.body, "your account is not in any feedloop team; ask your administrator") {
		t.Fatalf("no team: %d\n%s", r.code, r.body)
	}
	if !b.signedOut() {
		t.Fatal("a person in no team is signed in")
	}
	// Nor with no teams claim at all, or one that is a single string.
	if r := e.signInAs(b, person{sub: "u-nog", name: "No Groups"}); r.code != http.StatusForbidden {
		t.Fatalf("no claim: %d", r.code)
	}
	if r := e.signInAs(b, person{sub: "u-one", name: "One Group", groups: "feedloop-logistics"}); !strings.Contains(r.body, "team <strong>logistics</strong>") {
		t.Fatalf("a string claim: %d at %s", r.code, r.url)
	}
}

// noFollow is a browser that stops at redirects, to step through the
// flow and tamper with it.
func (b *browser) noFollow() *browser {
	c := *b.c
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{t: b.t, e: b.e, c: &c}
}

// step starts a sign-in as p and returns the callback URL the issuer
// sends the browser to, checking the redirect carries state, nonce and an
// S256 PKCE challenge.
func (e *oidcEnv) step(b *browser, p person) *url.URL {
	e.t.Helper()
	e.issuer.QueueUser(p)
	nf := b.noFollow()
	r := nf.get("/oidc/login")
	auth, err := url.Parse(r.hdr.Get("Location"))
	if r.code != http.StatusFound || err != nil {
		e.t.Fatalf("login: %d %q", r.code, r.hdr.Get("Location"))
	}
	q := auth.Query()
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if q.Get(k) == "" {
			e.t.Fatalf("the authorization request has no %s: %s", k, auth)
		}
	}
	if q.Get("code_challenge_method") != "S256" {
		e.t.Fatalf("PKCE method %q, want S256", q.Get("code_challenge_method"))
	}
	req, _ := http.NewRequest(http.MethodGet, auth.String(), nil)
	r = nf.do(req)
	cb, err := url.Parse(r.hdr.Get("Location"))
	if r.code != http.StatusFound || err != nil || cb.Query().Get("code") == "" {
		e.t.Fatalf("issuer: %d %q\n%s", r.code, r.hdr.Get("Location"), r.body)
	}
	return cb
}

// A tampered state, a token for another nonce or another audience, and a
// code the issuer no longer honours are each refused with a 400 in words,
// and sign nobody in.
func TestOIDCCallbackRefusals(t *testing.T) {
	e := startOIDC(t)
	ada := person{sub: "u-ada", name: "Ada Lovelace", groups: []string{"feedloop-billing"}}
	for _, tc := range []struct {
		what   string
		p      person
		tamper func(q url.Values)
		want   string
	}{
		{"tampered state", ada, func(q url.Values) { q.Set("state", q.Get("state")+"x") }, "does not match this sign-in attempt"},
		{"state missing", ada, func(q url.Values) { q.Del("state") }, "does not match this sign-in attempt"},
		{"expired code", ada, func(q url.Values) { q.Set("code", "a-code-the-issuer-no-longer-honours") }, "has expired or was already used"},
		{"wrong nonce", person{sub: "u-ada", name: "Ada", groups: []string{"feedloop-billing"}, nonce: "another-attempt"}, nil, "could not be verified"},
		{"another audience", person{sub: "u-ada", name: "Ada", groups: []string{"feedloop-billing"}, aud: "another-client"}, nil, "could not be verified"},
	} {
		t.Run(tc.what, func(t *testing.T) {
			b := e.browser()
			b.t = t
			cb := e.step(b, tc.p)
			if tc.tamper != nil {
				q := cb.Query()
				tc.tamper(q)
				cb.RawQuery = q.Encode()
			}
			req, _ := http.NewRequest(http.MethodGet, cb.String(), nil)
			r := b.do(req)
			if r.code != http.StatusBadRequest || !strings.Contains(r.body, tc.want) || !strings.Contains(r.body, "Nothing was signed in") {
				t.Fatalf("%d, want 400 saying %q:\n%s", r.code, tc.want, r.body)
			}
			if !b.signedOut() {
				t.Fatal("signed in after a refused callback")
			}
			// The attempt is spent: the untampered callback fails too.
			if tc.tamper != nil {
				req, _ := http.NewRequest(http.MethodGet, cb.String(), nil)
				if r := b.do(req); r.code != http.StatusBadRequest || !b.signedOut() {
					t.Fatalf("replayed callback: %d", r.code)
				}
			}
		})
	}
	// A callback in a browser that never started a sign-in.
	cb := e.step(e.browser(), ada)
	other := e.browser()
	req, _ := http.NewRequest(http.MethodGet, cb.String(), nil)
	if r := other.do(req); r.code != http.StatusBadRequest || !strings.Contains(r.body, "started in another browser") || !other.signedOut() {
		t.Fatalf("callback in another browser: %d\n%s", r.code, r.body)
	}
}

func TestOIDCConfigAllOrNothing(t *testing.T) {
	base := console.DefaultConfig()
	base.SessionKeyFile, base.TemplatesDir = "/k", "x"
	if err := base.Validate(); err != nil {
		t.Fatalf("no single sign-on, claim defaulted: %v", err)
	}
	half := base
	half.OIDCIssuer = "https://login.acme.example"
	err := half.Validate()
	for _, want := range []string{"CONSOLE_OIDC_CLIENT_ID", "CONSOLE_OIDC_CLIENT_SECRET_FILE", "CONSOLE_OIDC_TEAM_TOKENS_FILE"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("issuer alone: %v, want it to name %s", err, want)
		}
	}
	full := half
	full.OIDCClientID, full.OIDCClientSecretFile, full.OIDCTeamTokensFile = "console", "/s", "/t"
	if err := full.Validate(); err != nil {
		t.Fatalf("complete: %v", err)
	}
	plain := full
	plain.OIDCIssuer = "http://login.acme.example"
	if err := plain.Validate(); err == nil || !strings.Contains(err.Error(), "CONSOLE_OIDC_ISSUER") {
		t.Errorf("plain http issuer off loopback: %v", err)
	}
	dir := t.TempDir()
	bad := testConfig("127.0.0.1:1", templatesDir)
	bad.Dev = &console.Dev{}
	bad.OIDCIssuer, bad.OIDCClientID = "http://127.0.0.1:1", "c"
	bad.OIDCClientSecretFile = writeFile(t, filepath.Join(dir, "s"), "secret")
	bad.OIDCTeamTokensFile = writeFile(t, filepath.Join(dir, "t"), "Billing: x\n")
	if _, err := console.New(bad, nil); err == nil || !strings.Contains(err.Error(), "CONSOLE_OIDC_TEAM_TOKENS_FILE") {
		t.Errorf("bad team tokens file: %v", err)
	}
}
