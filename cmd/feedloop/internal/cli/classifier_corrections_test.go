package cli

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/testkit"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// routedEvent is a Routed event for team; from, if set, makes it a reroute.
func routedEvent(fbID, text, redacted, team, from string, at time.Time, topics ...string) *feedloopv1.Event {
	cls := &feedloopv1.Classification{RedactedText: redacted}
	for _, t := range topics {
		cls.Topics = append(cls.Topics, &feedloopv1.TopicScore{Topic: t, Confidence: 0.9})
	}
	route := "root/" + team
	if from != "" {
		route = "reroute"
	}
	return &feedloopv1.Event{
		Id:         bus.NewID(),
		FeedbackId: fbID,
		OccurredAt: timestamppb.New(at),
		Payload: &feedloopv1.Event_Routed{Routed: &feedloopv1.Routed{
			Feedback:       &feedloopv1.Feedback{Id: fbID, Text: text},
			Classification: cls,
			Assignment:     &feedloopv1.Assignment{Team: team, Route: route, ReroutedFrom: from},
		}},
	}
}

func readCSVRows(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestClassifierCorrections(t *testing.T) {
	url := testkit.NATS(t)
	b := testkit.BusAt(t, url)
	out := filepath.Join(t.TempDir(), "corrections.csv")

	// An empty stream gives a header and nothing else.
	code, stdout, stderr := run(t, "classifier", "corrections", "--out", out, "--server", url)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if rows := readCSVRows(t, out); len(rows) != 1 || !slices.Equal(rows[0], correctionColumns) {
		t.Errorf("empty stream: %q", rows)
	}

	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	events := []*feedloopv1.Event{
		// Routed as classified: no correction.
		routedEvent("fb-1", "I was charged twice", "", "billing", "", t0, "billing"),
		// Billing moves a delivery question to logistics; teams saw the
		// redacted text, and so does the training data.
		routedEvent("fb-2", "Parcel for jane@example.com is late", "", "billing", "", t0, "billing"),
		routedEvent("fb-2", "Parcel for jane@example.com is late", "Parcel for [email] is late", "logistics", "billing", t0.Add(time.Hour), "billing", "app"),
		// Moved twice: product → billing → payments; only the last counts.
		routedEvent("fb-3", "The card payment fails in the app", "", "payments", "billing", t0.Add(3*time.Hour), "app"),
		// No redacted text (an older event): the feedback text.
		routedEvent("fb-4", "Please close my account", "", "accounts", "support", t0.Add(4*time.Hour), "unknown"),
		// No text at all: nothing to learn from.
		routedEvent("fb-5", "", "", "billing", "triage", t0.Add(5*time.Hour)),
	}
	// fb-3's first reroute comes before its second in the stream.
	events = slices.Insert(events, 3, routedEvent("fb-3", "The card payment fails in the app", "", "billing", "product", t0.Add(2*time.Hour), "app"))
	ctx := context.Background()
	for _, ev := range events {
		if _, err := b.Publish(ctx, bus.RoutedSubject(ev.GetRouted().GetAssignment().GetTeam()), ev); err != nil {
			t.Fatal(err)
		}
	}
	// Other events on the stream are not read as reroutes.
	if _, err := b.Publish(ctx, bus.SubjectReceived, &feedloopv1.Event{Id: bus.NewID(), FeedbackId: "fb-9",
		Payload: &feedloopv1.Event_Received{Received: &feedloopv1.Received{Feedback: &feedloopv1.Feedback{Id: "fb-9", Text: "hi"}}}}); err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr = run(t, "classifier", "corrections", "--out", out, "--server", url)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := [][]string{
		correctionColumns,
		{"Parcel for [email] is late", "logistics", "billing;app", "billing", "fb-2", "2026-03-01T10:00:00Z"},
		{"The card payment fails in the app", "payments", "app", "billing", "fb-3", "2026-03-01T12:00:00Z"},
		{"Please close my account", "accounts", "unknown", "support", "fb-4", "2026-03-01T13:00:00Z"},
	}
	if got := readCSVRows(t, out); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("corrections:\n got %q\nwant %q", got, want)
	}
	if w := "3 corrections from 7 routed events (5 reroutes; 1 rerouted again later, 1 without text: left out)"; !strings.Contains(stdout, w) {
		t.Errorf("summary = %q, want %q", stdout, w)
	}

	// The file is training data, alone or with other files.
	model := filepath.Join(t.TempDir(), "m.model")
	code, stdout, stderr = run(t, "classifier", "train", "--data", intentsFixture, "--data", out,
		"--text-col", "text", "--label-col", "label", "--out", model, "--folds", "2", "--c", "1")
	if code != 0 {
		t.Fatalf("train on corrections: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "9 classes, 123 examples from intents.csv, corrections.csv") {
		t.Errorf("train summary: %s", stdout)
	}
}

func TestClassifierCorrectionsErrors(t *testing.T) {
	out := filepath.Join(t.TempDir(), "c.csv")
	if code, _, stderr := run(t, "classifier", "corrections", "--out", out, "--server", "http://x"); code != 2 || !strings.Contains(stderr, "--server: want nats://") {
		t.Errorf("bad URL: exit %d: %s", code, stderr)
	}
	if code, _, stderr := run(t, "classifier", "corrections", "--server", "nats://127.0.0.1:1"); code == 0 || !strings.Contains(stderr, `"out" not set`) {
		t.Errorf("no --out: exit %d: %s", code, stderr)
	}
	// Nobody listens on the port: fails, and writes nothing.
	port := testkit.FreePort(t)
	code, _, stderr := run(t, "classifier", "corrections", "--out", out, "--server", "nats://127.0.0.1:"+strconv.Itoa(port), "--timeout", "500ms")
	if code != 1 || !strings.Contains(stderr, "--server nats://127.0.0.1:") {
		t.Errorf("no server: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a file was written without a server: %v", err)
	}
}

// Without --server or NATS_URL, corrections reads the running feedloop dev
// of --dev-data, as its tools user, by itself; with no dev there it says
// so instead of reading whatever listens on the default port.
func TestClassifierCorrectionsFindsFeedloopDev(t *testing.T) {
	t.Setenv(envNATS, "")
	t.Setenv("NATS_NKEY_SEED_FILE", "")
	out := filepath.Join(t.TempDir(), "c.csv")
	if code, _, stderr := run(t, "classifier", "corrections", "--out", out, "--dev-data", t.TempDir()); code != 2 || !strings.Contains(stderr, "no NATS server") {
		t.Fatalf("no dev: exit %d: %s", code, stderr)
	}

	data := t.TempDir()
	dev := startDev(t, data)
	pasteCurlLine(t, dev)
	t.Setenv(envServer, regexp.MustCompile(`(?m)^  export FEEDLOOP_SERVER=(\S+)$`).FindStringSubmatch(dev.String())[1])
	t.Setenv(envDevData, data)
	id := theOneItem(t, "--as", "billing")
	if code, _, stderr := run(t, "inbox", "reroute", id, "--as", "billing", "--to", "logistics", "--internal-note", "a parcel question"); code != 0 {
		t.Fatalf("reroute: exit %d: %s", code, stderr)
	}
	testkit.Eventually(t, "the reroute exported", func() bool {
		code, stdout, _ := run(t, "classifier", "corrections", "--out", out, "--dev-data", data)
		return code == 0 && strings.Contains(stdout, "1 corrections from")
	})
}
