// Package console is the feedloop web console: where department teams
// (billing clerks, product managers) work their feedback items in a browser.
// It is server-rendered (html/template, a little vendored JavaScript as
// progressive enhancement) and a gRPC client of the router's TeamService:
// every request calls the router with the signed-in team's token, so every
// authorization decision stays in the router. Sessions are cookies sealed
// with AES-GCM, so replicas share no store.
package console

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/pkg/tlsfiles"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/console/internal/httpport"
	"github.com/feedloop/feedloop/services/console/internal/session"
	"github.com/feedloop/feedloop/services/console/internal/sso"
	"github.com/feedloop/feedloop/services/notifier/preview"
)

// Config is the console's configuration: from the environment (LoadConfig)
// or built in Go from DefaultConfig.
type Config struct {
	// HTTPAddr is where the console listens; port 0 picks a free port (see
	// Service.URL).
	HTTPAddr string `env:"CONSOLE_HTTP_ADDR" envDefault:":7006"`
	// TeamAPIAddr is the router's gRPC address (TeamService).
	TeamAPIAddr string `env:"CONSOLE_TEAM_API_ADDR" envDefault:"router:7003"`
	// TeamAPICAFile is the CA of the router's TLS certificate; empty
	// connects in plaintext (a mesh or loopback).
	TeamAPICAFile string `env:"CONSOLE_TEAM_API_CA_FILE"`
	// TemplatesDir holds the notifier's message templates: previews render
	// with them, so it must be the notifier's directory.
	TemplatesDir string `env:"CONSOLE_TEMPLATES_DIR" envDefault:"/etc/feedloop/templates"`
	// StatusURL is the base of customer status links, the notifier's
	// NOTIFIER_STATUS_URL, so previews show the link customers get.
	StatusURL string `env:"CONSOLE_STATUS_URL"`
	// SessionKeyFile holds at least 32 random bytes sealing the session
	// cookies; every replica needs the same. Required unless Dev is set.
	SessionKeyFile string `env:"CONSOLE_SESSION_KEY_FILE"`
	// SessionTTL is how long a sign-in lasts (less when the team token
	// expires sooner).
	SessionTTL time.Duration `env:"CONSOLE_SESSION_TTL" envDefault:"8h"`
	// PublicURL is the console's address as browsers reach it; https makes
	// cookies Secure (so does serving TLS).
	PublicURL string `env:"CONSOLE_PUBLIC_URL"`
	// TLSCertFile and TLSKeyFile make the console serve HTTPS.
	TLSCertFile string `env:"TLS_CERT_FILE"`
	TLSKeyFile  string `env:"TLS_KEY_FILE"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `env:"LOG_LEVEL" envDefault:"info"`
	// MetricsAddr serves GET /metrics for Prometheus (wired by main);
	// empty serves nothing.
	MetricsAddr string `env:"METRICS_ADDR" envDefault:":9464"`

	// Single sign-on through OpenID Connect, off unless configured: set
	// the issuer, the client id, its secret file and the team tokens file
	// together.
	OIDCIssuer           string `env:"CONSOLE_OIDC_ISSUER"`
	OIDCClientID         string `env:"CONSOLE_OIDC_CLIENT_ID"`
	OIDCClientSecretFile string `env:"CONSOLE_OIDC_CLIENT_SECRET_FILE"`
	// OIDCRedirectURL is the callback registered at the issuer; default
	// <CONSOLE_PUBLIC_URL>/oidc/callback (the console's own address
	// without a public URL).
	OIDCRedirectURL string `env:"CONSOLE_OIDC_REDIRECT_URL"`
	// OIDCTeamsClaim is the ID token claim (a string or an array of
	// strings) whose values are the person's teams.
	OIDCTeamsClaim string `env:"CONSOLE_OIDC_TEAMS_CLAIM" envDefault:"groups"`
	// OIDCTeamPrefix, when set, keeps only claim values with this prefix
	// and strips it: "feedloop-billing" is team billing.
	OIDCTeamPrefix string `env:"CONSOLE_OIDC_TEAM_PREFIX"`
	// OIDCTeamTokensFile is a YAML map of team to the team token the
	// console uses for that team's people, at the top or under a key
	// tokens ("tokens: {billing: <token>}"). Mark those tokens
	// delegate: true in the router's tokens file, so actions are recorded
	// as the person's.
	OIDCTeamTokensFile string `env:"CONSOLE_OIDC_TEAM_TOKENS_FILE"`

	// Dev turns on the developer conveniences; never set from the
	// environment, only by `feedloop dev` in Go.
	Dev *Dev `env:"-"`
	// TracerProvider receives the console's spans (its pages, its calls to
	// the team API and the identity provider); nil is the global one.
	// `feedloop dev` sets it, so the console keeps its own service.name
	// beside the other services in one process.
	TracerProvider trace.TracerProvider `env:"-"`
}

// Dev holds what only a developer's machine may have.
type Dev struct {
	// Tokens maps a team to its token: GET /dev/signin/{team} signs the
	// browser in as that team in one click.
	Tokens map[string]string
	// Mailbox, when set, is shown at /dev/mailbox: every message sent.
	Mailbox Mailbox
}

// Mailbox is the messages a development SMTP sink caught.
type Mailbox interface {
	// Messages returns every message caught, in any order.
	Messages() []Mail
}

// Mail is one caught message.
type Mail struct {
	ID            string
	At            time.Time
	From          string
	To            []string
	Subject, Text string
	HTML          string
}

// DefaultConfig is the configuration of an empty environment: the env
// tags' defaults, the one source of them.
func DefaultConfig() Config { return lifecycle.MustDefaults[Config]() }

// LoadConfig reads the environment over those defaults and validates it.
func LoadConfig() (Config, error) {
	cfg, err := lifecycle.LoadEnv[Config]()
	if err != nil {
		return cfg, err
	}
	// An empty METRICS_ADDR means no metrics server, not the default.
	if v, set := os.LookupEnv("METRICS_ADDR"); set && v == "" {
		cfg.MetricsAddr = ""
	}
	return cfg, cfg.Validate()
}

// oidc reports whether single sign-on is configured at all: any OIDC
// variable but the claim, which has a default.
func (c Config) oidc() bool {
	return c.OIDCIssuer != "" || c.OIDCClientID != "" || c.OIDCClientSecretFile != "" ||
		c.OIDCRedirectURL != "" || c.OIDCTeamPrefix != "" || c.OIDCTeamTokensFile != ""
}

// validateOIDC: all or nothing, so a half-configured single sign-on is a
// start-up error rather than a sign-in button that fails.
func (c Config) validateOIDC() []error {
	if !c.oidc() {
		return nil
	}
	var errs []error
	for _, v := range []struct{ name, val string }{
		{"CONSOLE_OIDC_ISSUER", c.OIDCIssuer}, {"CONSOLE_OIDC_CLIENT_ID", c.OIDCClientID},
		{"CONSOLE_OIDC_CLIENT_SECRET_FILE", c.OIDCClientSecretFile}, {"CONSOLE_OIDC_TEAM_TOKENS_FILE", c.OIDCTeamTokensFile},
	} {
		if v.val == "" {
			errs = append(errs, fmt.Errorf("%s: required for single sign-on (another CONSOLE_OIDC_* variable is set)", v.name))
		}
	}
	if c.OIDCIssuer != "" {
		// Plain http only on loopback: the issuer's keys vouch for who signs in.
		u, err := url.Parse(c.OIDCIssuer)
		if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
			errs = append(errs, fmt.Errorf("CONSOLE_OIDC_ISSUER: must be an https:// URL (http:// on loopback only), got %q", c.OIDCIssuer))
		}
	}
	if c.OIDCRedirectURL != "" {
		if u, err := url.Parse(c.OIDCRedirectURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("CONSOLE_OIDC_REDIRECT_URL: must be an http:// or https:// URL, got %q", c.OIDCRedirectURL))
		}
	}
	if c.OIDCTeamsClaim == "" {
		errs = append(errs, errors.New("CONSOLE_OIDC_TEAMS_CLAIM: must not be empty (the ID token claim listing the person's teams, e.g. groups)"))
	}
	return errs
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Validate checks every field and names the variable at fault. Files are
// read by New, whose errors name the variable too.
func (c Config) Validate() error {
	var errs []error
	if err := lifecycle.CheckAddr(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("CONSOLE_HTTP_ADDR: %w", err))
	}
	if _, _, err := net.SplitHostPort(c.TeamAPIAddr); err != nil {
		errs = append(errs, fmt.Errorf("CONSOLE_TEAM_API_ADDR: must be host:port, got %q", c.TeamAPIAddr))
	}
	if c.TemplatesDir == "" {
		errs = append(errs, errors.New("CONSOLE_TEMPLATES_DIR: must not be empty (the notifier's templates, for previews)"))
	}
	if c.SessionKeyFile == "" && c.Dev == nil {
		errs = append(errs, errors.New("CONSOLE_SESSION_KEY_FILE: required: a file of at least 32 random bytes sealing the session cookies (e.g. head -c 32 /dev/urandom)"))
	}
	if c.SessionTTL < time.Minute || c.SessionTTL > 30*24*time.Hour {
		errs = append(errs, fmt.Errorf("CONSOLE_SESSION_TTL: must be between 1m and 720h, got %s", c.SessionTTL))
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("CONSOLE_PUBLIC_URL: must be an http:// or https:// URL, got %q", c.PublicURL))
		}
	}
	if c.StatusURL != "" {
		if u, err := url.Parse(c.StatusURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("CONSOLE_STATUS_URL: must be an http:// or https:// URL, got %q", c.StatusURL))
		}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("TLS_CERT_FILE, TLS_KEY_FILE: must be set together"))
	}
	if _, err := lifecycle.ParseLevel(c.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("LOG_LEVEL: %w", err))
	}
	if c.MetricsAddr != "" {
		if err := lifecycle.CheckAddr(c.MetricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("METRICS_ADDR: %w", err))
		}
	}
	errs = append(errs, c.validateOIDC()...)
	return errors.Join(errs...)
}

// secure reports whether cookies must be Secure.
func (c Config) secure() bool {
	return c.TLSCertFile != "" || strings.HasPrefix(c.PublicURL, "https://")
}

// Service is a console ready to serve.
type Service struct {
	cfg     Config
	log     *slog.Logger
	conn    *grpc.ClientConn
	lis     net.Listener
	handler http.Handler
	web     *httpport.Server
}

// New validates cfg (start one in Go from DefaultConfig), reads the session
// key and the templates, connects (lazily) to the router and opens the
// listener.
func New(cfg Config, log *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	key, err := sessionKey(cfg)
	if err != nil {
		return nil, fmt.Errorf("console: CONSOLE_SESSION_KEY_FILE: %w", err)
	}
	sealer, err := session.NewSealer(key, cfg.secure(), nil)
	if err != nil {
		return nil, fmt.Errorf("console: CONSOLE_SESSION_KEY_FILE: %w", err)
	}
	pv, err := preview.Load(cfg.TemplatesDir)
	if err != nil {
		return nil, fmt.Errorf("console: CONSOLE_TEMPLATES_DIR: %w", err)
	}
	creds := insecure.NewCredentials()
	if cfg.TeamAPICAFile != "" {
		tc, err := tlsfiles.Client{CAFile: cfg.TeamAPICAFile}.Config()
		if err != nil {
			return nil, fmt.Errorf("console: CONSOLE_TEAM_API_CA_FILE: %w", err)
		}
		creds = credentials.NewTLS(tc)
	}
	if cfg.TracerProvider == nil {
		cfg.TracerProvider = otel.GetTracerProvider()
	}
	tp := cfg.TracerProvider
	conn, err := grpc.NewClient(cfg.TeamAPIAddr, grpc.WithTransportCredentials(creds),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithTracerProvider(tp))))
	if err != nil {
		return nil, fmt.Errorf("console: CONSOLE_TEAM_API_ADDR: %w", err)
	}
	s := &Service{cfg: cfg, log: log, conn: conn}
	deps := httpport.Deps{
		Team:      feedloopv1.NewTeamServiceClient(conn),
		Health:    healthpb.NewHealthClient(conn),
		Sealer:    sealer,
		TTL:       cfg.SessionTTL,
		Preview:   pv,
		StatusURL: cfg.StatusURL,
		Log:       log,

		TracerProvider: tp,
	}
	if cfg.Dev != nil {
		deps.DevTokens = cfg.Dev.Tokens
		if mb := cfg.Dev.Mailbox; mb != nil {
			deps.Mailbox = func() []httpport.Mail { return convertMail(mb.Messages()) }
		}
	}
	srvTLS := tlsfiles.Server{CertFile: cfg.TLSCertFile, KeyFile: cfg.TLSKeyFile}
	if err := srvTLS.Check(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("console: TLS_CERT_FILE, TLS_KEY_FILE: %w", err)
	}
	if s.lis, err = srvTLS.Listen(cfg.HTTPAddr); err != nil {
		conn.Close()
		return nil, fmt.Errorf("console: CONSOLE_HTTP_ADDR: listen %s: %w", cfg.HTTPAddr, err)
	}
	if cfg.oidc() {
		// After Listen: without a public URL the callback is on the bound port.
		if deps.SSO, err = s.ssoClient(); err != nil {
			s.lis.Close()
			conn.Close()
			return nil, fmt.Errorf("console: %w", err)
		}
	}
	s.web = httpport.New(deps)
	s.handler = s.web.Handler()
	log.Info("console ready", "url", s.URL(), "team_api", cfg.TeamAPIAddr, "dev", cfg.Dev != nil, "single_sign_on", cfg.OIDCIssuer)
	return s, nil
}

// ssoClient reads the single sign-on files and builds the client; the
// issuer is asked for its discovery document at the first sign-in.
func (s *Service) ssoClient() (*sso.Client, error) {
	cfg := s.cfg
	secret, err := os.ReadFile(cfg.OIDCClientSecretFile)
	if err != nil {
		return nil, fmt.Errorf("CONSOLE_OIDC_CLIENT_SECRET_FILE: %w", err)
	}
	if strings.TrimSpace(string(secret)) == "" {
		return nil, fmt.Errorf("CONSOLE_OIDC_CLIENT_SECRET_FILE: %s is empty", cfg.OIDCClientSecretFile)
	}
	data, err := os.ReadFile(cfg.OIDCTeamTokensFile)
	if err != nil {
		return nil, fmt.Errorf("CONSOLE_OIDC_TEAM_TOKENS_FILE: %w", err)
	}
	tokens, err := sso.ParseTokens(data)
	if err != nil {
		return nil, fmt.Errorf("CONSOLE_OIDC_TEAM_TOKENS_FILE: %s: %w", cfg.OIDCTeamTokensFile, err)
	}
	redirect := cfg.OIDCRedirectURL
	if redirect == "" {
		base := cfg.PublicURL
		if base == "" {
			base = s.URL()
		}
		redirect = strings.TrimRight(base, "/") + "/oidc/callback"
	}
	return sso.New(sso.Config{
		Issuer: cfg.OIDCIssuer, ClientID: cfg.OIDCClientID, ClientSecret: strings.TrimSpace(string(secret)),
		RedirectURL: redirect, TeamsClaim: cfg.OIDCTeamsClaim, TeamPrefix: cfg.OIDCTeamPrefix, Tokens: tokens,
	}, &http.Client{Timeout: 10 * time.Second, Transport: otelhttp.NewTransport(http.DefaultTransport, otelhttp.WithTracerProvider(cfg.TracerProvider))}), nil
}

// sessionKey reads the key file, or makes a random key in dev (sessions
// then end with the process, which is fine on a developer's machine).
func sessionKey(cfg Config) ([]byte, error) {
	if cfg.SessionKeyFile == "" {
		return []byte(rand.Text() + rand.Text()), nil
	}
	key, err := os.ReadFile(cfg.SessionKeyFile)
	if err != nil {
		return nil, err
	}
	if len(key) < session.MinKeyLen {
		return nil, fmt.Errorf("%s has %d bytes, want at least %d random bytes", cfg.SessionKeyFile, len(key), session.MinKeyLen)
	}
	return key, nil
}

func convertMail(ms []Mail) []httpport.Mail {
	out := make([]httpport.Mail, len(ms))
	for i, m := range ms {
		out[i] = httpport.Mail{ID: m.ID, At: m.At, From: m.From, To: m.To, Subject: m.Subject, Text: m.Text, HTML: m.HTML}
	}
	return out
}

// URL is the base URL of the bound listener, e.g. http://127.0.0.1:41234.
func (s *Service) URL() string {
	scheme := "http"
	if s.cfg.TLSCertFile != "" {
		scheme = "https"
	}
	addr := s.lis.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "localhost"
	}
	return scheme + "://" + net.JoinHostPort(host, fmt.Sprint(addr.Port))
}

// DevSignInURL is the one-click sign-in link of team, "" without Dev.
func (s *Service) DevSignInURL(team string) string {
	if s.cfg.Dev == nil {
		return ""
	}
	base := s.cfg.PublicURL
	if base == "" {
		base = s.URL()
	}
	return strings.TrimRight(base, "/") + "/dev/signin/" + url.PathEscape(team)
}

// Handler is the console's HTTP handler (for tests and embedding).
func (s *Service) Handler() http.Handler { return s.handler }

// Run serves until ctx is cancelled, then stops gracefully: open live
// streams end, requests in flight finish (within 5 s).
func (s *Service) Run(ctx context.Context) error {
	defer s.conn.Close()
	streams, endStreams := context.WithCancel(context.Background())
	defer endStreams()
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		// No WriteTimeout: the live stream (/events) is long; other
		// handlers are bounded by their gRPC deadlines.
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 32 << 10,
		BaseContext:    func(net.Listener) context.Context { return streams },
	}
	stop := context.AfterFunc(ctx, func() {
		endStreams() // an SSE handler never ends on its own
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	defer stop()
	if err := srv.Serve(s.lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("console: serve: %w", err)
	}
	return nil
}
