package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/feedloop/feedloop/pkg/apikey"
	"github.com/feedloop/feedloop/services/intake/access"
)

// envAPIKey holds the intake API key `feedloop submit` sends.
const envAPIKey = "FEEDLOOP_API_KEY"

func newIntakeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "intake",
		Short: "Administer intake: API keys",
		Args:  noArgs,
	}
	cmd.AddCommand(newIntakeKeyCmd(time.Now))
	return cmd
}

func newIntakeKeyCmd(now func() time.Time) *cobra.Command {
	var source, name, expires string
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "key --source S [--name N] [--expires 90d]",
		Short: "Make a new intake API key and the keys-file line that admits it",
		Long: `Make a new random API key (32 random bytes, base64url) for one source and
print it with the line to add under "keys:" in intake's keys file
(INTAKE_API_KEYS_FILE). The file keeps only the key's SHA-256, so the key is
shown this once: hand it to the system that submits as that source. --name
says who holds it (it is logged); --expires is a duration (90d, 36h) or a
date (2027-03-01 or RFC 3339). Intake reloads the file by itself: to rotate,
add the new key, switch the system over, then mark the old one revoked.`,
		Example: `  feedloop intake key --source helpdesk --name zendesk-prod --expires 90d
  feedloop intake key --source crm --name salesforce --json | jq -r .line`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := access.CheckSource(source); err != nil {
				return &exitError{2, fmt.Errorf("--source: %w", err)}
			}
			if err := access.CheckName(name); err != nil {
				return &exitError{2, fmt.Errorf("--name: %w", err)}
			}
			var exp time.Time
			if expires != "" {
				var err error
				if exp, err = parseExpiry(expires, now()); err != nil {
					return &exitError{2, fmt.Errorf("--expires: %w", err)}
				}
			}
			key, err := apikey.Generate()
			if err != nil {
				return err
			}
			line := access.Line(source, name, apikey.Hash(key), exp)
			if jsonOut {
				out := map[string]string{"source": source, "name": name, "key": key, "sha256": apikey.Hash(key), "line": line}
				if !exp.IsZero() {
					out["expires"] = exp.UTC().Format(time.RFC3339)
				}
				return printJSON(cmd, out)
			}
			what := "source " + source
			if name != "" {
				what += ", held by " + name
			}
			if !exp.IsZero() {
				what += ", expiring " + exp.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(cmd.OutOrStdout(), `# A new API key for %s. It is shown only now: hand it over privately.
export %s=%s
# Add this line under "keys:" in intake's keys file (INTAKE_API_KEYS_FILE):
  %s
`, what, envAPIKey, key, line)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&source, "source", "", "the source the key may submit for (required)")
	f.StringVar(&name, "name", "", "who holds it, e.g. zendesk-prod (logged)")
	f.StringVar(&expires, "expires", "", "when it stops working: 90d, 36h, 2027-03-01 or RFC 3339 (default: never)")
	f.BoolVar(&jsonOut, "json", false, "print JSON for scripts")
	return cmd
}

// parseExpiry reads "90d", a Go duration ("36h"), a date or an RFC 3339
// time, relative to now; the result must lie ahead.
func parseExpiry(s string, now time.Time) (time.Time, error) {
	var t time.Time
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return t, fmt.Errorf("want a positive number of days such as 90d, got %q", s)
		}
		t = now.AddDate(0, 0, n)
	} else if d, err := time.ParseDuration(s); err == nil {
		t = now.Add(d)
	} else if t, err = time.Parse(time.DateOnly, s); err != nil {
		if t, err = time.Parse(time.RFC3339, s); err != nil {
			return t, fmt.Errorf("want a duration (90d, 36h), a date (2027-03-01) or an RFC 3339 time, got %q", s)
		}
	}
	if !t.After(now) {
		return t, fmt.Errorf("must lie in the future, got %s", t.UTC().Format(time.RFC3339))
	}
	return t.UTC().Truncate(time.Second), nil
}
