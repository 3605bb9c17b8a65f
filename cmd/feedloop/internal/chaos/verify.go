package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/lifecycle"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/router"
	"github.com/feedloop/feedloop/services/router/routing"
)

// quiesce waits until no consumer has anything pending or unacknowledged
// and the stream has stopped growing, for three checks a second apart.
func (h *harness) quiesce(ctx context.Context) bool {
	deadline := time.Now().Add(h.o.QuiesceTimeout)
	stable, last := 0, uint64(0)
	lastReport := time.Now()
	for time.Now().Before(deadline) {
		busy, lag := h.consumerLag(ctx)
		seq := h.streamLastSeq(ctx)
		if busy == "" && seq == last && seq > 0 {
			stable++
			if stable >= 3 {
				return true
			}
		} else {
			stable = 0
		}
		last = seq
		if time.Since(lastReport) > 5*time.Second {
			lastReport = time.Now()
			h.progress("waiting for the consumers: %s busy, %d messages behind, stream at %d", busy, lag, seq)
		}
		if !sleep(ctx, time.Second) {
			return false
		}
	}
	return false
}

// consumerLag returns the last of the durables with messages pending or
// unacknowledged (or whose state cannot be read, with the error), "" when
// none, and how many messages they have in all.
func (h *harness) consumerLag(ctx context.Context) (busy string, lag uint64) {
	for _, d := range durables {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := h.bus.JetStream().Consumer(cctx, d.stream, d.name)
		if err == nil {
			info, ierr := c.Info(cctx)
			err = ierr
			if err == nil && (info.NumPending > 0 || info.NumAckPending > 0) {
				busy = d.name
				lag += info.NumPending + uint64(info.NumAckPending)
			}
		}
		cancel()
		if err != nil {
			busy = d.name + " (" + err.Error() + ")"
		}
	}
	return busy, lag
}

// streamLastSeq is the FEEDBACK stream's last sequence, 0 when it cannot
// be read.
func (h *harness) streamLastSeq(ctx context.Context) uint64 {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := h.bus.JetStream().Stream(cctx, bus.StreamFeedback)
	if err != nil {
		return 0
	}
	info, err := st.Info(cctx)
	if err != nil {
		return 0
	}
	return info.State.LastSeq
}

func (h *harness) verify(ctx context.Context) error {
	h.progress("all %d items accepted; waiting for quiescence (at most %s)", h.res.Submitted, h.o.QuiesceTimeout)
	h.res.Quiescent = h.quiesce(ctx)
	h.mu.Lock()
	h.stopping = true
	h.mu.Unlock()
	<-h.superv

	tree, err := routing.Load(filepath.Join(h.root, "deploy", "examples", "routes.yaml"))
	if err != nil {
		return fmt.Errorf("chaos: routes: %w", err)
	}
	rec, err := readRecord(ctx, h.bus.JetStream())
	if err != nil {
		return err
	}
	h.res.Events = rec.events
	rf := checkRoutes(tree, h.ids, rec, h.sink)
	h.res.MissingRoutes, h.res.Unclassified = rf.missing, rf.unclassified
	h.res.RoutedExtra, h.res.TeamAlertsDuplicate = rf.streamExtra, rf.sinkDuplicates
	mf := checkMessages(h.ids, h.sink)
	h.res.MissingMessages, h.res.DuplicateMessages, h.res.ResentSameKey = mf.missing, mf.duplicates, mf.resentSameKey
	h.res.examples = append(rf.examples, mf.examples...)
	if n := h.sink.badRequests(); n > 0 {
		h.res.examples = append(h.res.examples, fmt.Sprintf("%d webhook requests with a bad signature or body", n))
	}

	poison, other, err := deadLetters(ctx, h.bus.JetStream())
	if err != nil {
		return err
	}
	h.res.DeadLettered, h.res.DeadLettersOther = len(poison), other
	if h.res.DeadLettersOther == nil {
		h.res.DeadLettersOther = []string{}
	}
	if h.res.UnexpectedExits == nil {
		h.res.UnexpectedExits = []string{}
	}

	// The services stop first (gracefully) so nothing writes while the read
	// model is compared.
	h.stopServices()
	fresh := redis.NewClient(&redis.Options{Addr: hostPort(h.redisPort), DB: 1})
	defer fresh.Close()
	h.progress("rebuilding the read model from the stream into redis db 1 and comparing")
	diff, err := compareReadModel(ctx, h.bus, h.rdb, fresh, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	h.res.ReadModelEqual, h.res.readModelDiff = diff == "", diff
	return nil
}

// record is what the FEEDBACK stream holds about the harness's items.
type record struct {
	classified map[string]*feedloopv1.Classified // by feedback id, the first one stored
	routed     map[delivery]int                  // routed events per (feedback id, team)
	received   map[string]int                    // received events per feedback id
	events     int
}

// readStream reads stream from its first message to the last stored now
// with an ordered consumer, handing each message to f.
func readStream(ctx context.Context, js jetstream.JetStream, stream string, f func(jetstream.Msg)) error {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("chaos: stream %s: %w", stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return fmt.Errorf("chaos: stream %s info: %w", stream, err)
	}
	if info.State.Msgs == 0 {
		return nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return fmt.Errorf("chaos: read %s: %w", stream, err)
	}
	for {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return fmt.Errorf("chaos: read %s: %w", stream, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			f(m)
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("chaos: read %s: %w", stream, err)
			}
			if md.Sequence.Stream >= info.State.LastSeq || md.NumPending == 0 {
				return nil
			}
		}
		if err := batch.Error(); err != nil {
			return fmt.Errorf("chaos: read %s: %w", stream, err)
		}
		if n == 0 {
			return fmt.Errorf("chaos: read %s: nothing more after a fetch wait, before sequence %d", stream, info.State.LastSeq)
		}
	}
}

func readRecord(ctx context.Context, js jetstream.JetStream) (*record, error) {
	r := &record{classified: map[string]*feedloopv1.Classified{}, routed: map[delivery]int{}, received: map[string]int{}}
	err := readStream(ctx, js, bus.StreamFeedback, func(m jetstream.Msg) {
		r.events++
		ev := &feedloopv1.Event{}
		if proto.Unmarshal(m.Data(), ev) != nil {
			return
		}
		switch p := ev.GetPayload().(type) {
		case *feedloopv1.Event_Received:
			r.received[ev.GetFeedbackId()]++
		case *feedloopv1.Event_Classified:
			if r.classified[ev.GetFeedbackId()] == nil {
				r.classified[ev.GetFeedbackId()] = p.Classified
			}
		case *feedloopv1.Event_Routed:
			r.routed[delivery{ev.GetFeedbackId(), bus.LastToken(m.Subject())}]++
		}
	})
	return r, err
}

// deadLetters reads FEEDBACK_DLQ: the poison messages it holds (distinct
// numbers) and a description of every other dead letter, each a finding.
func deadLetters(ctx context.Context, js jetstream.JetStream) (poison map[string]int, other []string, err error) {
	poison = map[string]int{}
	err = readStream(ctx, js, bus.StreamDLQ, func(m jetstream.Msg) {
		h := m.Headers()
		if k := h.Get(HeaderPoison); k != "" && m.Subject() == bus.DLQSubject(bus.ConsumerIntake) {
			poison[k]++
			return
		}
		other = append(other, fmt.Sprintf("%s from %s: %s", m.Subject(), h.Get(bus.HeaderDLQSubject), h.Get(bus.HeaderDLQError)))
	})
	return poison, other, err
}

// routesFindings compares, for every accepted item, the teams its route
// names (the routing tree evaluated on its classified event from the
// stream) with its routed events in the stream and its alerts at the sink.
type routesFindings struct {
	missing        int // items short of at least one team (stream or sink)
	unclassified   int // items without a classified event
	streamExtra    int // routed events beyond one per (item, team)
	sinkDuplicates int // team alerts beyond one per (item, team)
	examples       []string
}

func checkRoutes(tree *routing.Tree, ids map[string]int, rec *record, s *sink) routesFindings {
	var f routesFindings
	note := func(format string, args ...any) {
		if len(f.examples) < 10 {
			f.examples = append(f.examples, fmt.Sprintf(format, args...))
		}
	}
	for id, n := range ids {
		c := rec.classified[id]
		if c == nil {
			f.missing++
			f.unclassified++
			note("item %d (%s): no feedback.classified in the stream", n, id)
			continue
		}
		missed := false
		for _, m := range tree.Match(c.GetFeedback(), c.GetClassification()) {
			inStream, atSink := rec.routed[delivery{id, m.Team}], s.teamCount(id, m.Team)
			if inStream == 0 || atSink == 0 {
				missed = true
				note("item %d (%s): team %s: %d routed events, %d alerts", n, id, m.Team, inStream, atSink)
			}
			f.streamExtra += max(0, inStream-1)
			f.sinkDuplicates += max(0, atSink-1)
		}
		if missed {
			f.missing++
		}
	}
	return f
}

// messagesFindings counts the customers' acknowledgements (step received)
// at the sink as a receiver honouring Idempotency-Key sees them: exactly
// one per item is the guarantee.
type messagesFindings struct {
	missing, duplicates int
	// resentSameKey counts raw deliveries that repeated an earlier
	// delivery's key: dropped by such a receiver, reported only.
	resentSameKey int
	examples      []string
}

func checkMessages(ids map[string]int, s *sink) messagesFindings {
	var f messagesFindings
	note := func(format string, args ...any) {
		if len(f.examples) < 10 {
			f.examples = append(f.examples, fmt.Sprintf(format, args...))
		}
	}
	for id, n := range ids {
		c := s.customerCount(id, "received")
		seen := c.seen()
		switch {
		case seen == 0:
			f.missing++
			note("item %d (%s): no acknowledgement", n, id)
		case seen > 1:
			f.duplicates += seen - 1
			note("item %d (%s): %d acknowledgements a receiver honouring Idempotency-Key accepts (%d deliveries, %d keys, %d without a key)", n, id, seen, c.raw, c.keys, c.unkeyed)
		}
		f.resentSameKey += c.raw - seen
	}
	return f
}

// compareReadModel rebuilds the router's read model from the stream into
// fresh (another Redis database, emptied first) and compares it with live.
// It returns a description of the first differences, "" when equal.
func compareReadModel(ctx context.Context, b *bus.Bus, live, fresh *redis.Client, log *slog.Logger) (string, error) {
	if err := fresh.FlushDB(ctx).Err(); err != nil {
		return "", fmt.Errorf("chaos: empty the rebuild database: %w", err)
	}
	if _, err := router.Rebuild(ctx, &lifecycle.Infra{Bus: b, Redis: fresh, Log: log}, 0.8); err != nil {
		return "", fmt.Errorf("chaos: rebuild: %w", err)
	}
	got, err := router.DumpReadModel(ctx, live)
	if err != nil {
		return "", fmt.Errorf("chaos: dump the live read model: %w", err)
	}
	want, err := router.DumpReadModel(ctx, fresh)
	if err != nil {
		return "", fmt.Errorf("chaos: dump the rebuilt read model: %w", err)
	}
	return diffDumps(got, want), nil
}

// diffDumps describes up to ten differences of got from want and how many
// keys differ in all.
func diffDumps(got, want map[string]string) string {
	var lines []string
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			lines = append(lines, "missing "+k)
		case g != w:
			lines = append(lines, fmt.Sprintf("differs %s:\n%s", k, lineDiff(g, w)))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			lines = append(lines, "extra "+k)
		}
	}
	if len(lines) == 0 {
		return ""
	}
	slices.Sort(lines)
	n := len(lines)
	if n > 10 {
		lines = lines[:10]
	}
	return fmt.Sprintf("%d keys differ (live %d keys, rebuilt %d), e.g.\n%s", n, len(got), len(want), strings.Join(lines, "\n"))
}

// lineDiff shows where two normal-form values part: the lines of each
// from the first that differs (a few), after the common ones.
func lineDiff(live, rebuilt string) string {
	a, b := strings.Split(live, "\n"), strings.Split(rebuilt, "\n")
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	tail := func(l []string) string {
		l = l[min(i, len(l)):]
		if len(l) > 6 {
			l = append(l[:6], "…")
		}
		return strings.Join(l, "\n           ")
	}
	return fmt.Sprintf("  after %d equal lines\n  live:    %s\n  rebuilt: %s", i, tail(a), tail(b))
}
