package cli

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	"github.com/feedloop/feedloop/cmd/feedloop/internal/stack"
	"github.com/feedloop/feedloop/pkg/atomicfile"
	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/pkg/natsauth"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// correctionColumns is the header of a corrections file: text and label
// are what `classifier train --text-col text --label-col label` reads.
var correctionColumns = []string{"text", "label", "original_topics", "rerouted_from", "feedback_id", "time"}

// envNATS names the NATS server corrections reads from, as for the services.
const envNATS = "NATS_URL"

type classifierCorrectionsOpts struct {
	out, server, devData string
	timeout              time.Duration
}

func newClassifierCorrectionsCmd() *cobra.Command {
	o := &classifierCorrectionsOpts{}
	cmd := &cobra.Command{
		Use:   "corrections --out FILE.csv [--server nats://HOST:PORT | --dev-data DIR]",
		Short: "Export every reroute as a labelled example for training",
		Long: `Read the routed events of the FEEDBACK stream (feedback.routed.*, from the
first one stored) and write each reroute, a share a team moved to another
team, as one labelled example: a CSV file with a header row and the columns

  text             what teams saw: the redacted text, else the feedback text
  label            the team the item was rerouted to
  original_topics  the classifier's topics, separated by ";"
  rerouted_from    the team that moved it
  feedback_id      the feedback item
  time             when it was rerouted (RFC 3339, UTC)

A reroute that was itself rerouted later (billing → payments → refunds) is
left out: the team it reached (payments) said it was not theirs, and the
later reroute is the example. Items without text are left out too.

The server is --server, else $NATS_URL, else the running 'feedloop dev' of
--dev-data (default .feedloop), whose NATS URL and tools user's seed it
finds there by itself; with none of them it is an error, never a guess.
With NATS authorization, connect as the tools user: NATS_NKEY_SEED_FILE
names its seed (NATS_TLS_CA_FILE, NATS_TLS_CERT_FILE, NATS_TLS_KEY_FILE for
TLS), as for the services.

The labels are teams: train on the file together with other data labelled
by team, e.g.
  feedloop classifier train --data history.csv --data corrections.csv \
    --text-col text --label-col label --out topic.model`,
		Example: `  feedloop classifier corrections --out corrections.csv --server nats://127.0.0.1:4222`,
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	f := cmd.Flags()
	f.StringVar(&o.out, "out", "", "CSV file to write (required)")
	f.StringVar(&o.server, "server", os.Getenv(envNATS), "NATS server URL (env "+envNATS+"; default: the running feedloop dev of --dev-data)")
	f.StringVar(&o.devData, "dev-data", ".feedloop", "feedloop dev's --data directory, used when no server is given")
	f.DurationVar(&o.timeout, "timeout", 10*time.Second, "how long to wait for the NATS server")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

func (o *classifierCorrectionsOpts) run(cmd *cobra.Command) error {
	seed := os.Getenv("NATS_NKEY_SEED_FILE")
	if o.server == "" {
		ends, err := stack.ReadDevEndpoints(o.devData)
		if err != nil {
			return &exitError{2, fmt.Errorf("no NATS server: give --server or %s, or run feedloop dev (looked for %s: %w)", envNATS, filepath.Join(o.devData, stack.DevEndpointsFile), err)}
		}
		o.server = ends.NATSURL
		if seed == "" {
			seed = ends.ToolsSeed
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "feedloop: reading feedloop dev's NATS at %s (from %s)\n", o.server, o.devData)
	}
	if !strings.HasPrefix(o.server, "nats://") && !strings.HasPrefix(o.server, "tls://") {
		return &exitError{2, fmt.Errorf("--server: want nats://HOST:PORT or tls://HOST:PORT, got %q", o.server)}
	}
	if o.timeout <= 0 {
		return &exitError{2, fmt.Errorf("--timeout: must be positive, got %s", o.timeout)}
	}
	// Credentials and TLS come from the services' variables; the tools
	// user may read the routed events and nothing else.
	creds := lifecycle.Common{
		NATSNKeySeedFile: seed,
		NATSTLSCAFile:    os.Getenv("NATS_TLS_CA_FILE"),
		NATSTLSCertFile:  os.Getenv("NATS_TLS_CERT_FILE"),
		NATSTLSKeyFile:   os.Getenv("NATS_TLS_KEY_FILE"),
	}
	opts, err := creds.NATSOptions(natsauth.Tools)
	if err != nil {
		return &exitError{2, err}
	}
	nc, err := nats.Connect(o.server, append(opts, nats.Name("feedloop-classifier-corrections"), nats.Timeout(o.timeout))...)
	if err != nil {
		hint := ""
		if strings.Contains(err.Error(), "Authorization") && seed == "" {
			hint = " (the server requires credentials: set NATS_NKEY_SEED_FILE to the tools user's seed; feedloop dev keeps it under --data/nats-auth/tools.nk)"
		}
		return fmt.Errorf("--server %s: %w%s", o.server, err, hint)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("--server %s: %w", o.server, err)
	}
	rows, st, err := readCorrections(cmd.Context(), js, o.timeout)
	if err != nil {
		return err
	}
	if err := writeCSVFile(o.out, correctionColumns, rows); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s: %d corrections from %d routed events (%d reroutes; %d rerouted again later, %d without text: left out)\n",
		o.out, len(rows), st.routed, st.reroutes, st.superseded, st.noText)
	return nil
}

// correctionStats counts what readCorrections saw.
type correctionStats struct {
	routed, reroutes, superseded, noText int
}

// readCorrections reads every routed event stored when it starts and
// returns the reroutes as CSV rows, in stream order.
func readCorrections(ctx context.Context, js jetstream.JetStream, timeout time.Duration) ([][]string, correctionStats, error) {
	var st correctionStats
	infoCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stream, err := js.Stream(infoCtx, bus.StreamFeedback)
	if err != nil {
		return nil, st, fmt.Errorf("stream %s: %w", bus.StreamFeedback, err)
	}
	info, err := stream.Info(infoCtx, jetstream.WithSubjectFilter(bus.AllRouted))
	if err != nil {
		return nil, st, fmt.Errorf("stream %s: %w", bus.StreamFeedback, err)
	}
	stored := uint64(0)
	for _, n := range info.State.Subjects {
		stored += n
	}
	if stored == 0 {
		return nil, st, nil // an ordered consumer would wait for the first one
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{bus.AllRouted},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, st, fmt.Errorf("read %s: %w", bus.AllRouted, err)
	}
	msgs, err := cons.Messages()
	if err != nil {
		return nil, st, fmt.Errorf("read %s: %w", bus.AllRouted, err)
	}
	defer msgs.Stop()
	defer context.AfterFunc(ctx, msgs.Stop)() // unblocks Next on cancel

	type row struct {
		fields         []string
		feedback, team string
		superseded     bool
	}
	var rows []*row
	for {
		m, err := msgs.Next()
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return nil, st, fmt.Errorf("read %s: %w", bus.AllRouted, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return nil, st, fmt.Errorf("read %s: %w", bus.AllRouted, err)
		}
		ev := &feedloopv1.Event{}
		// Messages that are no events are the consumers' problem (dead
		// letters); an export skips them.
		if proto.Unmarshal(m.Data(), ev) == nil && ev.GetRouted() != nil {
			st.routed++
			r := ev.GetRouted()
			a, fbID := r.GetAssignment(), ev.GetFeedbackId()
			if fbID == "" {
				fbID = r.GetFeedback().GetId()
			}
			if from := a.GetReroutedFrom(); from != "" {
				st.reroutes++
				// The team it came from had it by an earlier reroute: that
				// one was wrong.
				for _, prev := range rows {
					if prev.feedback == fbID && prev.team == from && !prev.superseded {
						prev.superseded = true
						st.superseded++
					}
				}
				text := r.GetClassification().GetRedactedText()
				if text == "" {
					text = r.GetFeedback().GetText()
				}
				if strings.TrimSpace(text) == "" {
					st.noText++
				} else {
					var topics []string
					for _, t := range r.GetClassification().GetTopics() {
						topics = append(topics, t.GetTopic())
					}
					rows = append(rows, &row{feedback: fbID, team: a.GetTeam(), fields: []string{
						text, a.GetTeam(), strings.Join(topics, ";"), from, fbID,
						ev.GetOccurredAt().AsTime().UTC().Format(time.RFC3339),
					}})
				}
			}
		}
		if md.NumPending == 0 {
			break
		}
	}
	out := make([][]string, 0, len(rows))
	for _, r := range rows {
		if !r.superseded {
			out = append(out, r.fields)
		}
	}
	return out, st, nil
}

// writeCSVFile writes header and rows to path atomically (a temporary
// file renamed into place).
func writeCSVFile(path string, header []string, rows [][]string) error {
	return atomicfile.WriteFunc(path, 0o644, func(f io.Writer) error {
		w := csv.NewWriter(f)
		if err := w.Write(header); err != nil {
			return err
		}
		return w.WriteAll(rows) // flushes and reports the error
	})
}
