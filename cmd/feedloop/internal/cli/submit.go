package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

type submitOpts struct {
	server, file, apiKey                 string
	source, externalID, text, subject    string
	channel, email, name, locale, custID string
	product, area, inReplyTo             string
	nps, csat, ces                       int
	consent, surveyConsent, jsonOut      bool
	attrs                                map[string]string
	timeout                              time.Duration
	tls                                  tlsFlags
}

func newSubmitCmd() *cobra.Command {
	o := &submitOpts{}
	cmd := &cobra.Command{
		Use:   "submit [flags]",
		Short: "Send one feedback item to intake and print its id",
		Long: `Send one feedback item to intake over gRPC and print its id.

The item comes from flags, or from a protojson file with --file (flags given
as well override the file's fields). Resubmitting the same --source and
--external-id returns the same id and is reported as a duplicate.`,
		Example: `  feedloop submit --source helpdesk --external-id T-1001 \
    --email ada@example.com --consent --text "I was charged twice"
  feedloop submit --file feedback.json --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	f := cmd.Flags()
	serverFlag(f, &o.server, envIntakeServer, "localhost:7001", "intake gRPC address")
	// Not a default from the environment: --help would print the secret.
	f.StringVar(&o.apiKey, "api-key", "", "intake API key for the item's source (default $"+envAPIKey+"; see 'feedloop intake key')")
	f.StringVar(&o.file, "file", "", "protojson Feedback file (- for stdin)")
	f.StringVar(&o.source, "source", "", "submitting system, e.g. helpdesk")
	f.StringVar(&o.externalID, "external-id", "", "the item's id in the submitting system")
	f.StringVar(&o.text, "text", "", "feedback text")
	f.StringVar(&o.subject, "subject", "", "subject line")
	f.StringVar(&o.channel, "channel", "", "email, chat, phone, survey, app_review, social, web, in_app, other")
	f.StringVar(&o.custID, "customer-id", "", "customer id")
	f.StringVar(&o.email, "email", "", "customer email")
	f.StringVar(&o.name, "name", "", "customer name")
	f.StringVar(&o.locale, "locale", "", "customer locale, e.g. en or de-CH")
	f.BoolVar(&o.consent, "consent", false, "the customer agreed to hear back about this feedback")
	f.BoolVar(&o.surveyConsent, "survey-consent", false, "the customer agreed to a satisfaction survey")
	f.IntVar(&o.nps, "nps", -1, "NPS answer 0..10")
	f.IntVar(&o.csat, "csat", -1, "CSAT answer 1..5")
	f.IntVar(&o.ces, "ces", -1, "CES answer 1..7")
	f.StringVar(&o.product, "product", "", "product")
	f.StringVar(&o.area, "area", "", "product area")
	f.StringVar(&o.inReplyTo, "in-reply-to", "", "feedback id this answers")
	f.StringToStringVar(&o.attrs, "attr", nil, "attribute key=value (repeatable)")
	f.BoolVar(&o.jsonOut, "json", false, "print the response as JSON")
	o.tls.register(f)
	f.DurationVar(&o.timeout, "timeout", 10*time.Second, "request timeout")
	return cmd
}

func (o *submitOpts) feedback(cmd *cobra.Command) (*feedloopv1.Feedback, error) {
	fb := &feedloopv1.Feedback{}
	if o.file != "" {
		var data []byte
		var err error
		if o.file == "-" {
			data, err = readAll(cmd.InOrStdin())
		} else {
			data, err = os.ReadFile(o.file)
		}
		if err != nil {
			return nil, &exitError{2, fmt.Errorf("--file: %w", err)}
		}
		if err := protojson.Unmarshal(data, fb); err != nil {
			return nil, &exitError{2, fmt.Errorf("--file %s: %w", o.file, err)}
		}
	}
	set := func(name string, dst *string, v string) {
		if cmd.Flags().Changed(name) {
			*dst = v
		}
	}
	set("source", &fb.Source, o.source)
	set("external-id", &fb.ExternalId, o.externalID)
	set("text", &fb.Text, o.text)
	set("subject", &fb.Subject, o.subject)
	set("product", &fb.Product, o.product)
	set("area", &fb.Area, o.area)
	set("in-reply-to", &fb.InReplyTo, o.inReplyTo)
	if cmd.Flags().Changed("channel") {
		v, ok := feedloopv1.Channel_value["CHANNEL_"+strings.ToUpper(o.channel)]
		if !ok {
			return nil, &exitError{2, fmt.Errorf("--channel: unknown channel %q", o.channel)}
		}
		fb.Channel = feedloopv1.Channel(v)
	}
	for _, n := range []string{"customer-id", "email", "name", "locale", "consent", "survey-consent"} {
		if cmd.Flags().Changed(n) && fb.Customer == nil {
			fb.Customer = &feedloopv1.Customer{}
		}
	}
	if c := fb.Customer; c != nil {
		set("customer-id", &c.Id, o.custID)
		set("email", &c.Email, o.email)
		set("name", &c.Name, o.name)
		set("locale", &c.Locale, o.locale)
		if cmd.Flags().Changed("consent") || cmd.Flags().Changed("survey-consent") {
			if c.Consent == nil {
				c.Consent = &feedloopv1.Consent{}
			}
			if cmd.Flags().Changed("consent") {
				c.Consent.Contact = o.consent
			}
			if cmd.Flags().Changed("survey-consent") {
				c.Consent.Survey = o.surveyConsent
			}
		}
	}
	score := func(name string, dst **int32, v int) {
		if cmd.Flags().Changed(name) {
			x := int32(v)
			*dst = &x
		}
	}
	score("nps", &fb.Nps, o.nps)
	score("csat", &fb.Csat, o.csat)
	score("ces", &fb.Ces, o.ces)
	if len(o.attrs) > 0 {
		if fb.Attributes == nil {
			fb.Attributes = map[string]string{}
		}
		for k, v := range o.attrs {
			fb.Attributes[k] = v
		}
	}
	return fb, nil
}

func (o *submitOpts) run(cmd *cobra.Command) error {
	fb, err := o.feedback(cmd)
	if err != nil {
		return err
	}
	key := o.apiKey
	if key == "" {
		key = strings.TrimSpace(os.Getenv(envAPIKey))
	}
	// An API key is never sent in clear text off this machine.
	what := ""
	if key != "" {
		what = "API key"
	}
	creds, err := o.tls.creds(o.server, what)
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(o.server, grpc.WithTransportCredentials(creds))
	if err != nil {
		return &exitError{2, fmt.Errorf("--server %q: %w", o.server, err)}
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
	defer cancel()
	if key != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
	}
	resp, err := feedloopv1.NewIntakeServiceClient(conn).Submit(ctx, &feedloopv1.SubmitRequest{Feedback: fb})
	if err != nil {
		hint := ""
		switch status.Code(err) {
		case codes.Unauthenticated:
			hint = "check --api-key or " + envAPIKey + ": intake's keys file must list its SHA-256 ('feedloop intake key' makes one)"
		case codes.PermissionDenied:
			hint = "an API key submits for its own source only"
		}
		return describeRPCError(err, hint)
	}
	out := cmd.OutOrStdout()
	if o.jsonOut {
		b, _ := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(resp)
		fmt.Fprintln(out, string(b))
		return nil
	}
	if resp.GetDuplicate() {
		fmt.Fprintf(out, "%s (duplicate: already submitted, nothing new sent)\n", resp.GetFeedbackId())
		return nil
	}
	fmt.Fprintln(out, resp.GetFeedbackId())
	return nil
}

// describeRPCError turns a gRPC status into an error naming the code and
// listing field violations, with hint (if any) on what to check; invalid
// input exits 2.
func describeRPCError(err error, hint string) error {
	st := status.Convert(err)
	var b strings.Builder
	b.WriteString(st.Message())
	if hint != "" {
		fmt.Fprintf(&b, " (%s)", hint)
	}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				line := v.GetField() + ": " + v.GetDescription()
				if line == st.Message() {
					continue // the message already says it
				}
				fmt.Fprintf(&b, "\n  %s", line)
			}
		}
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			fmt.Fprintf(&b, " (retry after %s)", ri.GetRetryDelay().AsDuration())
		}
	}
	code := 1
	if st.Code() == codes.InvalidArgument {
		code = 2
	}
	return &exitError{code, fmt.Errorf("%s: %s", st.Code(), b.String())}
}

// printJSON writes v as indented JSON.
func printJSON(cmd *cobra.Command, v any) error {
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
