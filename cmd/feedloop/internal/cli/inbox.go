package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/cmd/feedloop/internal/stack"
	"github.com/feedloop/feedloop/cmd/feedloop/internal/teamtoken"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// envToken holds the team token every inbox command sends; envAs names a
// team of feedloop dev instead (--as).
const (
	envToken   = "FEEDLOOP_TOKEN"
	envAs      = "FEEDLOOP_AS"
	envDevData = "FEEDLOOP_DEV_DATA"
)

// defaultTeamServer is the router's gRPC address in `feedloop dev` and the
// router's default port.
const defaultTeamServer = "127.0.0.1:7003"

type inboxOpts struct {
	server  string
	jsonOut bool
	timeout time.Duration
	tls     tlsFlags
	// as names a team of a running `feedloop dev` whose token is read
	// from devData's tokens file, instead of $FEEDLOOP_TOKEN.
	as, devData string
}

func newInboxCmd() *cobra.Command {
	o := &inboxOpts{}
	cmd := &cobra.Command{
		Use:   "inbox",
		Short: "Work a team's feedback: list, watch, show, acknowledge, plan, resolve, decline, reroute, comment",
		Long: `Work the feedback routed to a team through the router's team API.

Every command sends the team token in $FEEDLOOP_TOKEN (feedloop dev prints one
per example team; 'feedloop inbox token' makes new ones) and acts as that
token's team: a team sees and changes only items routed to it. The server is
--server, else $FEEDLOOP_SERVER, else ` + defaultTeamServer + `.

The token is a secret: to a server that is not on this machine it is sent
only over TLS (--tls, or --ca-file for a private CA; --cert-file and
--key-file when the server requires a client certificate). --insecure sends
it in clear text anyway.

--json prints the API's answer as protojson (one object per line for watch).
Exit codes: 0 success, 1 failure (not found, not allowed, illegal transition,
server unreachable), 2 invalid input.`,
		Example: `  export FEEDLOOP_TOKEN=…   # printed by feedloop dev
  feedloop inbox list
  feedloop inbox show 0d6f…
  feedloop inbox ack 0d6f…
  feedloop inbox plan 0d6f --due 2030-11-30 --customer-message "The fix ships with the November release."
  feedloop inbox comment 0d6f --internal-note "Waiting for FIN-42."
  feedloop inbox resolve 0d6f --customer-message "Fixed in 4.2; thank you for telling us."

An ID may be given by its first characters (at least 4) when they name one
of the team's items.`,
	}
	pf := cmd.PersistentFlags()
	serverFlag(pf, &o.server, envServer, defaultTeamServer, "router team API gRPC address")
	pf.BoolVar(&o.jsonOut, "json", false, "print protojson for scripts")
	pf.DurationVar(&o.timeout, "timeout", 10*time.Second, "request timeout (watch runs until interrupted)")
	pf.StringVar(&o.as, "as", os.Getenv(envAs), "act as this team of a running 'feedloop dev', with the token it keeps under --dev-data (env "+envAs+"; instead of "+envToken+")")
	devData := os.Getenv(envDevData)
	if devData == "" {
		devData = ".feedloop"
	}
	pf.StringVar(&o.devData, "dev-data", devData, "feedloop dev's --data directory, for --as (env "+envDevData+")")
	o.tls.register(pf)
	cmd.AddCommand(
		o.listCmd(), o.watchCmd(), o.showCmd(),
		o.ackCmd(), o.planCmd(), o.resolveCmd(), o.declineCmd(), o.rerouteCmd(), o.commentCmd(),
		o.statsCmd(), o.tokenCmd(),
	)
	return cmd
}

// session is one connection to the team API carrying the team token.
type session struct {
	conn   *grpc.ClientConn
	client feedloopv1.TeamServiceClient
}

// connect reads the token and dials the server; the token travels only as
// call metadata, never into output or errors.
func (o *inboxOpts) connect() (*session, error) {
	token := strings.TrimSpace(os.Getenv(envToken))
	if o.as != "" {
		var err error
		if token, err = o.devToken(); err != nil {
			return nil, err
		}
	}
	if token == "" {
		return nil, &exitError{2, fmt.Errorf("%s is not set: export your team's token (feedloop dev prints one per example team; 'feedloop inbox token' makes new ones)", envToken)}
	}
	creds, err := o.tls.creds(o.server, "team token")
	if err != nil {
		return nil, err
	}
	auth := func(ctx context.Context) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	conn, err := grpc.NewClient(o.server,
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultServiceConfig(teamServiceConfig),
		grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, inv grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			return inv(auth(ctx), method, req, reply, cc, opts...)
		}),
		grpc.WithStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, s grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			return s(auth(ctx), desc, cc, method, opts...)
		}),
	)
	if err != nil {
		return nil, &exitError{2, fmt.Errorf("--server %q: %w", o.server, err)}
	}
	return &session{conn: conn, client: feedloopv1.NewTeamServiceClient(conn)}, nil
}

// devToken is the token of team o.as in feedloop dev's tokens file.
func (o *inboxOpts) devToken() (string, error) {
	path := filepath.Join(o.devData, stack.DevTokensFile)
	toks, err := stack.ReadDevTokens(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", &exitError{2, fmt.Errorf("--as %s: no %s: is feedloop dev running with --data %s? (else set --dev-data, or %s)", o.as, path, o.devData, envToken)}
	}
	if err != nil {
		return "", &exitError{2, fmt.Errorf("--as %s: %w", o.as, err)}
	}
	tok, ok := toks[o.as]
	if !ok {
		return "", &exitError{2, fmt.Errorf("--as %s: feedloop dev has no team %s (teams: %s)", o.as, o.as, strings.Join(slices.Sorted(maps.Keys(toks)), ", "))}
	}
	return tok, nil
}

// teamServiceConfig retries UNAVAILABLE a few times with backoff: the
// router answers so while it rebuilds its read model after losing Redis
// ("try again shortly"), and a router replica may be restarting. A call
// refused as UNAVAILABLE did nothing, so trying again is safe.
const teamServiceConfig = `{"methodConfig": [{
  "name": [{"service": "feedloop.v1.TeamService"}],
  "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.25s", "maxBackoff": "2s",
                  "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}`

// unary runs one call of a command: connect, call with the timeout, print
// the answer as protojson or through human, close.
func (o *inboxOpts) unary(cmd *cobra.Command, call func(context.Context, feedloopv1.TeamServiceClient) (proto.Message, error), human func(io.Writer, proto.Message)) error {
	s, err := o.connect()
	if err != nil {
		return err
	}
	defer s.conn.Close()
	ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
	defer cancel()
	resp, err := call(ctx, s.client)
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	if err != nil {
		return o.rpcError(err)
	}
	out := cmd.OutOrStdout()
	if o.jsonOut {
		return writeProtoJSON(out, resp)
	}
	human(printable{out}, resp)
	return nil
}

// unaryID is unary for a command on one item: the id given may be a unique
// prefix of the full id, resolved first among the team's items.
func (o *inboxOpts) unaryID(cmd *cobra.Command, given string, call func(ctx context.Context, c feedloopv1.TeamServiceClient, id string) (proto.Message, error), human func(w io.Writer, m proto.Message, id string)) error {
	var id string
	return o.unary(cmd, func(ctx context.Context, c feedloopv1.TeamServiceClient) (proto.Message, error) {
		var err error
		if id, err = resolveID(ctx, c, given); err != nil {
			return nil, err
		}
		return call(ctx, c, id)
	}, func(w io.Writer, m proto.Message) { human(w, m, id) })
}

// Feedback ids are UUIDs; a prefix must be long enough to be worth a search.
const (
	fullIDLen   = 36
	minIDPrefix = 4
)

// resolveID turns a unique prefix of a feedback id into the id, looking
// among every item routed to the caller's team (the only ones it may name).
// A full-length id, or one that is some item's whole id, is taken as it is.
func resolveID(ctx context.Context, c feedloopv1.TeamServiceClient, given string) (string, error) {
	id := strings.ToLower(strings.TrimSpace(given))
	if len(id) >= fullIDLen {
		return id, nil
	}
	if len(id) < minIDPrefix {
		return "", &exitError{2, fmt.Errorf("feedback id %q: give at least %d characters of it", given, minIDPrefix)}
	}
	all, _ := parseStatuses([]string{"all"})
	var matches []string
	for tok := ""; ; {
		resp, err := c.List(ctx, &feedloopv1.ListRequest{Statuses: all, PageSize: 500, PageToken: tok})
		if err != nil {
			return "", err
		}
		for _, it := range resp.GetItems() {
			switch fid := it.GetFeedbackId(); {
			case fid == id:
				return fid, nil
			case strings.HasPrefix(fid, id) && !slices.Contains(matches, fid):
				matches = append(matches, fid)
			}
		}
		if tok = resp.GetNextPageToken(); tok == "" {
			break
		}
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		return "", &exitError{1, fmt.Errorf("feedback id %q: no item of your team's starts with it", given)}
	default:
		if len(matches) > 3 {
			matches = append(matches[:3], "…")
		}
		return "", &exitError{2, fmt.Errorf("feedback id %q: the start of several items (%s); give more of it", given, strings.Join(matches, ", "))}
	}
}

// rpcError is describeRPCError with a hint on what to check for the codes
// a wrong setup produces.
func (o *inboxOpts) rpcError(err error) error {
	hint := ""
	switch status.Code(err) {
	case codes.Unauthenticated:
		if o.as != "" {
			// The token came from dev's file, so the router is some other
			// feedloop dev (or none): another --data has other tokens.
			hint = fmt.Sprintf("--as %s sent the token in %s, which the router at %s does not take: is that the 'feedloop dev' started with --data %s? "+
				"If it runs with another --data, set --dev-data (or %s) to it", o.as, filepath.Join(o.devData, stack.DevTokensFile), o.server, o.devData, envDevData)
			break
		}
		hint = "check " + envToken + ": the router's tokens file must list its SHA-256; against 'feedloop dev', copy a token line from its banner " +
			"(dev tokens stay the same for one --data directory, kept in <data>/" + stack.DevTokensFile + "; a new --data makes new ones)"
	case codes.Unavailable:
		hint = fmt.Sprintf("is the router's team API at %s? set --server or %s", o.server, envServer)
	case codes.Unimplemented:
		hint = fmt.Sprintf("%s does not serve the team API; --server must be the router's gRPC address", o.server)
	}
	return describeRPCError(err, hint)
}

// writeProtoJSON prints m as one line of protojson, every field present so
// scripts need not guess defaults.
func writeProtoJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

// The two audiences of an action's words have one flag name each, on every
// command: --customer-message is read by the customer, --internal-note only
// by teams. The names they replace (--message, --reason, --text) meant one
// or the other depending on the command; they still work, with a warning.
func customerMessage(cmd *cobra.Command, p *string, what string) {
	f := cmd.Flags()
	f.StringVar(p, "customer-message", "", what+": the customer reads this (required)")
	old := "message"
	if cmd.Name() == "decline" {
		old = "reason"
	}
	oldFlag(cmd, p, old, "--customer-message (the customer reads it)")
}

func internalNote(cmd *cobra.Command, p *string, what, old string) {
	cmd.Flags().StringVar(p, "internal-note", "", what+": internal, never shown to the customer (required)")
	oldFlag(cmd, p, old, "--internal-note (never shown to the customer)")
}

// oldFlag keeps --old writing to p, hidden, with a warning naming its
// successor when used. (pflag's own deprecation notice goes to a buffer
// cobra keeps for flag errors, so nobody would see it.)
func oldFlag(cmd *cobra.Command, p *string, old, use string) {
	cmd.Flags().StringVar(p, old, "", "")
	_ = cmd.Flags().MarkHidden(old)
	cmd.PreRun = func(c *cobra.Command, _ []string) {
		if c.Flags().Changed(old) {
			fmt.Fprintf(c.ErrOrStderr(), "feedloop: --%s is deprecated here: use %s\n", old, use)
		}
	}
}

// oneID accepts exactly one argument, the feedback id.
func oneID(_ *cobra.Command, args []string) error {
	if len(args) != 1 || strings.TrimSpace(args[0]) == "" {
		return &exitError{2, fmt.Errorf("want one feedback id, got %d arguments", len(args))}
	}
	return nil
}

func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return &exitError{2, fmt.Errorf("unexpected arguments %q", args)}
	}
	return nil
}

// statusAliases are what --status accepts besides a single status.
var statusAliases = map[string][]feedloopv1.Status{
	"open":   {feedloopv1.Status_STATUS_ROUTED, feedloopv1.Status_STATUS_ACKNOWLEDGED, feedloopv1.Status_STATUS_PLANNED, feedloopv1.Status_STATUS_REOPENED},
	"closed": {feedloopv1.Status_STATUS_RESOLVED, feedloopv1.Status_STATUS_DECLINED, feedloopv1.Status_STATUS_REROUTED},
}

// parseStatuses reads --status values: a status name (routed, acknowledged,
// planned, resolved, declined, rerouted, reopened), open, closed or all.
func parseStatuses(vals []string) ([]feedloopv1.Status, error) {
	var out []feedloopv1.Status
	add := func(ss ...feedloopv1.Status) {
		for _, s := range ss {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	for _, v := range vals {
		v = strings.ToLower(strings.TrimSpace(v))
		if v == "all" {
			add(statusAliases["open"]...)
			add(statusAliases["closed"]...)
			continue
		}
		if ss, ok := statusAliases[v]; ok {
			add(ss...)
			continue
		}
		n, ok := feedloopv1.Status_value["STATUS_"+strings.ToUpper(v)]
		if !ok || n == 0 {
			return nil, &exitError{2, fmt.Errorf("--status: unknown status %q (routed, acknowledged, planned, resolved, declined, rerouted, reopened, open, closed, all)", v)}
		}
		add(feedloopv1.Status(n))
	}
	return out, nil
}

func (o *inboxOpts) listCmd() *cobra.Command {
	var (
		team, pageToken, query string
		statuses               []string
		pageSize               int32
		all                    bool
	)
	cmd := &cobra.Command{
		Use:   "list [--team T] [--status S ...] [--query WORDS] [--page-size N] [--all]",
		Short: "List the team's items, soonest due first",
		Long: `List the team's items, soonest due first: id, status, next due time,
priority, topics and the start of the (redacted) text.

Without --status the open items are listed (routed, acknowledged, planned,
reopened). --status takes a status, open, closed or all, repeated or comma
separated. --query keeps the items whose redacted text, subject, topics or
customer (id, name, email) hold every word. One page is printed (--page-size, default 50) with the token of
the next; --all fetches every page.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sts, err := parseStatuses(statuses)
			if err != nil {
				return err
			}
			req := &feedloopv1.ListRequest{Team: team, Statuses: sts, PageSize: pageSize, PageToken: pageToken, Query: query}
			return o.unary(cmd, func(ctx context.Context, c feedloopv1.TeamServiceClient) (proto.Message, error) {
				if !all {
					return c.List(ctx, req)
				}
				merged := &feedloopv1.ListResponse{}
				for {
					page, err := c.List(ctx, req)
					if err != nil {
						return nil, err
					}
					merged.Items = append(merged.Items, page.GetItems()...)
					merged.Total = page.GetTotal()
					if page.GetNextPageToken() == "" {
						return merged, nil
					}
					req.PageToken = page.GetNextPageToken()
				}
			}, func(w io.Writer, m proto.Message) { printList(w, m.(*feedloopv1.ListResponse), time.Now()) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&team, "team", "", "team to list (default: the token's team; another team is refused)")
	f.StringSliceVar(&statuses, "status", nil, "status to include: routed, acknowledged, planned, resolved, declined, rerouted, reopened, open, closed or all (repeatable)")
	f.StringVar(&query, "query", "", "words every listed item holds (text, subject, topics or customer), case-insensitive")
	f.Int32Var(&pageSize, "page-size", 0, "items per page, 1-500 (default 50)")
	f.StringVar(&pageToken, "page-token", "", "page to start at, as printed by the previous page")
	f.BoolVar(&all, "all", false, "fetch every page")
	return cmd
}

func (o *inboxOpts) showCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show an item: the feedback, every team's share, the full timeline and the customer's other items",
		Args:  oneID,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.unaryID(cmd, args[0], func(ctx context.Context, c feedloopv1.TeamServiceClient, id string) (proto.Message, error) {
				return c.Get(ctx, &feedloopv1.GetRequest{FeedbackId: id})
			}, func(w io.Writer, m proto.Message, _ string) { printItem(w, m.(*feedloopv1.GetResponse)) })
		},
	}
}

func (o *inboxOpts) ackCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "ack ID",
		Aliases: []string{"acknowledge"},
		Short:   "Acknowledge an item: the team has seen it",
		Args:    oneID,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.unaryID(cmd, args[0], func(ctx context.Context, c feedloopv1.TeamServiceClient, id string) (proto.Message, error) {
				return c.Acknowledge(ctx, &feedloopv1.AcknowledgeRequest{FeedbackId: id})
			}, func(w io.Writer, m proto.Message, id string) {
				printChanged(w, id, m.(*feedloopv1.AcknowledgeResponse).GetAssignment())
			})
		},
	}
}

// parseDue reads --due YYYY-MM-DD as that calendar day at 00:00 UTC. The
// customer is promised a day, not an hour: the notifier and the status page
// print the UTC day, so 00:00 UTC shows the same date everywhere, and the
// router accepts today (it refuses days before today, UTC).
func parseDue(s string) (*timestamppb.Timestamp, error) {
	if s == "" {
		return nil, nil // the server names the missing field
	}
	if n, ok := strings.CutPrefix(s, "+"); ok {
		days, err := strconv.Atoi(strings.TrimSuffix(n, "d"))
		if err != nil || !strings.HasSuffix(n, "d") || days < 0 || days > 3660 {
			return nil, &exitError{2, fmt.Errorf("--due: want +Nd (days from today, N up to 3660) or YYYY-MM-DD, got %q", s)}
		}
		today := time.Now().UTC().Truncate(24 * time.Hour)
		return timestamppb.New(today.AddDate(0, 0, days)), nil
	}
	d, err := time.ParseInLocation(time.DateOnly, s, time.UTC)
	if err != nil {
		return nil, &exitError{2, fmt.Errorf("--due: want a date YYYY-MM-DD or +Nd (days from today), got %q", s)}
	}
	return timestamppb.New(d), nil
}

func (o *inboxOpts) planCmd() *cobra.Command {
	var due, message string
	cmd := &cobra.Command{
		Use:   "plan ID --due YYYY-MM-DD --customer-message TEXT",
		Short: "Promise the customer a date and say what the team will do",
		Long: `Promise the customer a date and say what the team will do; both are required
and the customer reads them. --due is a calendar day (taken as 00:00 UTC of
that day): today or later. Planning again with another date tells the
customer the date moved.`,
		Args: oneID,
		RunE: func(cmd *cobra.Command, args []string) error {
			dueAt, err := parseDue(due)
			if err != nil {
				return err
			}
			return o.unaryID(cmd, args[0], func(ctx context.Context, c feedloopv1.TeamServiceClient, id string) (proto.Message, error) {
				return c.Plan(ctx, &feedloopv1.PlanRequest{FeedbackId: id, DueAt: dueAt, CustomerMessage: message})
			}, func(w io.Writer, m proto.Message, id string) {
				printChanged(w, id, m.(*feedloopv1.PlanResponse).GetAssignment())
			})
		},
	}
	cmd.Flags().StringVar(&due, "due", "", "the day promised: YYYY-MM-DD, or +Nd for N days from today (required)")
	customerMessage(cmd, &message, "what the team will do")
	return cmd
}

func (o *inboxOpts) resolveCmd() *cobra.Command {
	var message string
	cmd := &cobra.Command{
		Use:   "resolve ID --customer-message TEXT",
		Short: "Resolve the team's share, telling the customer what was done",
		Args:  oneID,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.unaryID(cmd, args[0], func(ctx context.Context, c feedloopv1.TeamServiceClient, id string) (proto.Message, error) {
				return c.Resolve(ctx, &feedloopv1.ResolveRequest{FeedbackId: id, CustomerMessage: message})
			}, func(w io.Writer, m proto.Message, id string) {
				printChanged(w, id, m.(*feedloopv1.ResolveResponse).GetAssignment())
			})
		},
	}
	customerMessage(cmd, &message, "what was done")
	return cmd
}

func (o *inboxOpts) declineCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "decline ID --customer-message TEXT",
		Short: "Decline the team's share; the customer reads the reason",
		Args:  oneID,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.unaryID(cmd, args[0], func(ctx context.Context, c feedloopv1.TeamServiceClient, id string) (proto.Message, error) {
				return c.Decline(ctx, &feedloopv1.DeclineRequest{FeedbackId: id, CustomerMessage: reason})
			}, func(w io.Writer, m proto.Message, id string) {
				printChanged(w, id, m.(*feedloopv1.DeclineResponse).GetAssignment())
			})
		},
	}
	customerMessage(cmd, &reason, "why the team will not act")
	return cmd
}

func (o *inboxOpts) rerouteCmd() *cobra.Command {
	var to, reason string
	cmd := &cobra.Command{
		Use:   "reroute ID --to TEAM --internal-note TEXT",
		Short: "Hand the team's share to another team (recorded as a correction for the classifier)",
		Args:  oneID,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.unaryID(cmd, args[0], func(ctx context.Context, c feedloopv1.TeamServiceClient, id string) (proto.Message, error) {
				return c.Reroute(ctx, &feedloopv1.RerouteRequest{FeedbackId: id, Team: to, InternalNote: reason})
			}, func(w io.Writer, m proto.Message, id string) {
				printChanged(w, id, m.(*feedloopv1.RerouteResponse).GetAssignment())
			})
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the team that should own it (required)")
	internalNote(cmd, &reason, "why it belongs to that team", "reason")
	return cmd
}

func (o *inboxOpts) commentCmd() *cobra.Command {
	var text string
	cmd := &cobra.Command{
		Use:   "comment ID --internal-note TEXT",
		Short: "Add an internal note to the item's timeline (never shown to the customer)",
		Args:  oneID,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.unaryID(cmd, args[0], func(ctx context.Context, c feedloopv1.TeamServiceClient, id string) (proto.Message, error) {
				return c.Comment(ctx, &feedloopv1.CommentRequest{FeedbackId: id, InternalNote: text})
			}, func(w io.Writer, m proto.Message, id string) {
				fmt.Fprintf(w, "%s: internal note added (event %s)\n", id, m.(*feedloopv1.CommentResponse).GetEventId())
			})
		},
	}
	internalNote(cmd, &text, "the note", "text")
	return cmd
}

func (o *inboxOpts) statsCmd() *cobra.Command {
	var team string
	cmd := &cobra.Command{
		Use:   "stats [--team T]",
		Short: "Show the team's closed-loop figures: volumes, SLA, time to acknowledge and close, CSAT",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.unary(cmd, func(ctx context.Context, c feedloopv1.TeamServiceClient) (proto.Message, error) {
				return c.Stats(ctx, &feedloopv1.StatsRequest{Team: team})
			}, func(w io.Writer, m proto.Message) { printStats(w, m.(*feedloopv1.StatsResponse)) })
		},
	}
	cmd.Flags().StringVar(&team, "team", "", "team (default: the token's team; another team is refused)")
	return cmd
}

func (o *inboxOpts) watchCmd() *cobra.Command {
	var team string
	cmd := &cobra.Command{
		Use:   "watch [--team T]",
		Short: "Print each item newly routed to the team as it arrives, until interrupted",
		Long: `Print each item newly routed to the team as it arrives, until interrupted
(Ctrl-C). The router keeps a durable consumer per team, so items routed
while no one watched come first. If the router goes away after the stream
started, watch reconnects.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.watch(cmd, team) },
	}
	cmd.Flags().StringVar(&team, "team", "", "team (default: the token's team; another team is refused)")
	return cmd
}

// Reconnect delays of watch after the router went away.
const (
	watchRetryMin = 500 * time.Millisecond
	watchRetryMax = 15 * time.Second
)

func (o *inboxOpts) watch(cmd *cobra.Command, team string) error {
	s, err := o.connect()
	if err != nil {
		return err
	}
	defer s.conn.Close()
	ctx := cmd.Context()
	out, errw := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if !o.jsonOut {
		fmt.Fprintln(errw, "watching for newly routed items — Ctrl-C to stop")
	}
	// Reconnect only once a stream has been open: a wrong address or token
	// at the start is an error to report, not to wait out.
	opened, delay := false, watchRetryMin
	for {
		err := o.watchOnce(ctx, s.client, team, out, &opened, &delay)
		if ctx.Err() != nil {
			return nil // interrupted: the normal way out
		}
		if !opened || (err != nil && status.Code(err) != codes.Unavailable) {
			return o.rpcError(err)
		}
		reason := "the router ended the stream"
		if err != nil {
			reason = status.Convert(err).Message()
		}
		fmt.Fprintf(errw, "feedloop: %s; reconnecting in %s\n", reason, delay)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(2*delay, watchRetryMax)
	}
}

// watchOnce runs one Watch stream to its end; nil means the server closed
// it. opened is set once a stream is established; delay is reset by every
// item received.
func (o *inboxOpts) watchOnce(ctx context.Context, c feedloopv1.TeamServiceClient, team string, out io.Writer, opened *bool, delay *time.Duration) error {
	stream, err := c.Watch(ctx, &feedloopv1.WatchRequest{Team: team})
	if err != nil {
		return err
	}
	*opened = true
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		*delay = watchRetryMin
		if o.jsonOut {
			if err := writeProtoJSON(out, resp); err != nil {
				return err
			}
			continue
		}
		printRouted(printable{out}, resp)
	}
}

func (o *inboxOpts) tokenCmd() *cobra.Command {
	var team, name, expires string
	cmd := &cobra.Command{
		Use:   "token --team T [--name N] [--expires 90d]",
		Short: "Make a new team token and the tokens-file line that admits it",
		Long: `Make a new random team token (32 random bytes, base64url) and print it with
the line to add under "tokens:" in the router's tokens file
(ROUTER_TEAM_TOKENS_FILE). The file keeps only the token's SHA-256, so the
token is shown this once: hand it to its holder privately. --name is who
holds it (a person or a bot); it is recorded as the actor of their actions.
--expires makes the token stop working after that long (90d, 36h) or at
that RFC 3339 time; the line carries the expiry. The router reloads the
file by itself. To rotate a token: add a new one, hand it over, then remove
the old line or mark it "revoked: true".`,
		Example: `  feedloop inbox token --team billing --name alice --expires 90d
  feedloop inbox token --team billing --name triage-bot --json | jq -r .line`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tok := teamtoken.New()
			e := teamtoken.Entry{Team: team, Name: name, SHA256: teamtoken.Hash(tok)}
			if err := e.Check(); err != nil {
				return &exitError{2, fmt.Errorf("--%w", err)} // Check names the field: --team, --name
			}
			if expires != "" {
				at, err := teamtoken.ParseExpiry(expires, time.Now())
				if err != nil {
					return &exitError{2, fmt.Errorf("--%w", err)}
				}
				e.Expires = at
			}
			out := cmd.OutOrStdout()
			if o.jsonOut {
				j := map[string]string{"team": e.Team, "name": e.Name, "token": tok, "sha256": e.SHA256, "line": e.Line(), "expires": ""}
				if !e.Expires.IsZero() {
					j["expires"] = e.Expires.Format(time.RFC3339)
				}
				return printJSON(cmd, j)
			}
			holder := ""
			if name != "" {
				holder = ", held by " + name
			}
			if !e.Expires.IsZero() {
				holder += ", valid until " + e.Expires.Format(time.RFC3339)
			}
			fmt.Fprintf(out, `# A new token for team %s%s. It is shown only now: hand it over privately.
export %s=%s
# Add this line under "tokens:" in the router's tokens file (ROUTER_TEAM_TOKENS_FILE):
  %s
`, e.Team, holder, envToken, tok, e.Line())
			return nil
		},
	}
	cmd.Flags().StringVar(&team, "team", "", "the team the token acts for (required)")
	cmd.Flags().StringVar(&name, "name", "", "who holds it, recorded as the actor (default: the team)")
	cmd.Flags().StringVar(&expires, "expires", "", "when it stops working: 90d, 36h or an RFC 3339 time (default: never)")
	return cmd
}
