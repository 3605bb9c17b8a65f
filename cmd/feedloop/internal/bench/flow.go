package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/google/pprof/profile"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/feedloop/feedloop/cmd/feedloop/internal/stack"
	"github.com/feedloop/feedloop/pkg/bus"
)

// Flow is what one item cost in a phase: the events stored on FEEDBACK,
// the deliveries to durable consumers (redeliveries included) and the mean
// stored event size, which tell a ceiling whose event flow differs from the
// pipeline's from one that matches it; and the CPU time this process (NATS,
// the services, the load generator and the webhook receiver) and the
// phase's redis-server spent per item until every consumer had caught up.
// CPU per item drifts far less between runs than items per second, so it is
// the figure to compare an optimisation by.
type Flow struct {
	WritesPerItem     float64 `json:"writes_per_item"`
	DeliveriesPerItem float64 `json:"deliveries_per_item"`
	EventBytes        float64 `json:"event_bytes"`
	CPUMicros         float64 `json:"cpu_us_per_item"`
	RedisCPUMicros    float64 `json:"redis_cpu_us_per_item,omitempty"`
	// RedisCommands and RedisBytesIn are the commands the redis-server
	// processed and the bytes it read per item (INFO stats): counts, which
	// do not drift as CPU time does, so a change in what the services ask
	// of Redis shows exactly.
	RedisCommands float64 `json:"redis_commands_per_item,omitempty"`
	RedisBytesIn  float64 `json:"redis_bytes_in_per_item,omitempty"`
	// CPUByPart splits CPUMicros (saturation phases) by the part that
	// spent it, from a CPU profile of the same span: a service (in the
	// pass-through phases, the stages standing for it), "nats-server",
	// "nats-client" (the services' connections), "bench" (the load
	// generator, the webhook receiver) or "other" (the GC's workers, the
	// trace exporter). Every saturation phase is profiled alike, so the
	// profiler's cost leaves the ratios between them alone. Empty while
	// another CPU profile (--cpuprofile) runs: that profile carries the
	// same labels (stack.PartLabel).
	CPUByPart map[string]float64 `json:"cpu_us_by_part,omitempty"`
}

// partBench and partOther name, in Flow.CPUByPart, what the bench itself
// runs and what runs unlabelled.
const (
	partBench = "bench"
	partOther = "other"
)

// cpuMeter measures the CPU a phase spends, in this process and in Redis.
type cpuMeter struct {
	rdb       redis.UniversalClient
	proc      time.Duration
	redis     redisStats
	redisSeen bool
	// prof receives the CPU profile that splits the phase by part; nil
	// when not asked for or when another profile runs.
	prof *bytes.Buffer
}

// startCPU starts measuring; byPart also profiles the phase to split it
// by part (see Flow.CPUByPart).
func startCPU(ctx context.Context, rdb redis.UniversalClient, byPart bool) *cpuMeter {
	m := &cpuMeter{rdb: rdb}
	if byPart {
		// Only one CPU profile can run: with --cpuprofile's, none.
		if buf := new(bytes.Buffer); pprof.StartCPUProfile(buf) == nil {
			m.prof = buf
		}
	}
	m.proc = processCPU()
	m.redis, m.redisSeen = readRedisStats(ctx, rdb)
	return m
}

// stop records the CPU spent since start per item into f.
func (m *cpuMeter) stop(ctx context.Context, f *Flow, items int) (err error) {
	if items == 0 {
		if m.prof != nil {
			pprof.StopCPUProfile()
		}
		return nil
	}
	f.CPUMicros = float64((processCPU() - m.proc).Microseconds()) / float64(items)
	if r, ok := readRedisStats(ctx, m.rdb); ok && m.redisSeen {
		f.RedisCPUMicros = float64((r.cpu - m.redis.cpu).Microseconds()) / float64(items)
		f.RedisCommands = float64(r.commands-m.redis.commands) / float64(items)
		f.RedisBytesIn = float64(r.bytesIn-m.redis.bytesIn) / float64(items)
	}
	if m.prof != nil {
		pprof.StopCPUProfile()
		f.CPUByPart, err = cpuByPart(m.prof.Bytes(), items)
	}
	return err
}

// cpuByPart sums the CPU time of a profile's samples by their
// stack.PartLabel, in µs per item.
func cpuByPart(data []byte, items int) (map[string]float64, error) {
	p, err := profile.ParseData(data)
	if err != nil {
		return nil, fmt.Errorf("bench: CPU profile: %w", err)
	}
	at := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" && st.Unit == "nanoseconds" {
			at = i
		}
	}
	if at < 0 {
		return nil, errors.New("bench: CPU profile: no cpu/nanoseconds samples")
	}
	out := map[string]float64{}
	for _, s := range p.Sample {
		part := partOther
		switch v := s.Label[stack.PartLabel]; {
		case len(v) > 0:
			part = v[0]
		case len(s.Label["account"]) > 0:
			// See stack.PartNATSServer.
			part = stack.PartNATSServer
		}
		out[part] += float64(s.Value[at]) / 1e3 / float64(items)
	}
	return out, nil
}

// redisStats is what a Redis server has spent so far.
type redisStats struct {
	cpu               time.Duration // INFO cpu: used_cpu_sys + used_cpu_user
	commands, bytesIn uint64        // INFO stats: total_commands_processed, total_net_input_bytes
}

// readRedisStats reads redisStats from INFO; false for no Redis or one that
// does not tell them all (the in-process stand-in).
func readRedisStats(ctx context.Context, rdb redis.UniversalClient) (redisStats, bool) {
	var st redisStats
	if rdb == nil {
		return st, false
	}
	info, err := rdb.Info(ctx).Result() // the default sections: cpu and stats among them, on every version
	if err != nil {
		return st, false
	}
	var cpu float64
	found := 0
	for line := range strings.Lines(info) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		switch k {
		case "used_cpu_sys", "used_cpu_user":
			s, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return st, false
			}
			cpu += s
		case "total_commands_processed", "total_net_input_bytes":
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return st, false
			}
			if k == "total_commands_processed" {
				st.commands = n
			} else {
				st.bytesIn = n
			}
		default:
			continue
		}
		found++
	}
	st.cpu = time.Duration(cpu * float64(time.Second))
	return st, found == 4
}

// flowMark is where a phase starts on the stream and the durables'
// delivery counters: a phase on a stream in use counts from there.
type flowMark struct {
	msgs, bytes, delivered uint64
}

// markFlow reads the stream and the durables' delivery counters now.
func markFlow(ctx context.Context, b *bus.Bus, durables []string) (flowMark, error) {
	var m flowMark
	_, state, err := feedbackStream(ctx, b)
	if err != nil {
		return m, err
	}
	m.msgs, m.bytes = state.Msgs, state.Bytes
	for _, d := range durables {
		c, err := b.JetStream().Consumer(ctx, bus.StreamFeedback, d)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			continue // a service still starting: nothing delivered yet
		}
		if err != nil {
			return m, fmt.Errorf("bench: consumer %s: %w", d, err)
		}
		ci, err := c.Info(ctx)
		if err != nil {
			return m, fmt.Errorf("bench: consumer %s: %w", d, err)
		}
		m.delivered += ci.Delivered.Consumer
	}
	return m, nil
}

// measureFlow reads what items items stored on the stream and delivered
// to durables since from (the zero mark for a fresh stream).
func measureFlow(ctx context.Context, b *bus.Bus, durables []string, items int, from flowMark) Flow {
	var f Flow
	to, err := markFlow(ctx, b, durables)
	msgs := to.msgs - from.msgs
	if err != nil || msgs == 0 || items == 0 {
		return f
	}
	f.WritesPerItem = float64(msgs) / float64(items)
	f.EventBytes = float64(to.bytes-from.bytes) / float64(msgs)
	f.DeliveriesPerItem = float64(to.delivered-from.delivered) / float64(items)
	return f
}

// settle waits until no durable consumer of durables has a message pending
// or unacked: the backlog a phase left (the projector folds every event)
// must not be measured by the next one.
func settle(ctx context.Context, b *bus.Bus, durables []string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		busy := ""
		for _, d := range durables {
			c, err := b.JetStream().Consumer(ctx, bus.StreamFeedback, d)
			if err != nil {
				busy = d
				break
			}
			info, err := c.Info(ctx)
			if err != nil || info.NumPending > 0 || info.NumAckPending > 0 {
				busy = d
				break
			}
		}
		if busy == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bench: consumer %s still busy after %s", busy, timeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
