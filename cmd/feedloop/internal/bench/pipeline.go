package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/feedloop/feedloop/cmd/feedloop/internal/stack"
	"github.com/feedloop/feedloop/pkg/bus"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// pipeline is the whole of feedloop in this process, as `feedloop dev`
// runs it, with the team channels pointed at the sink.
type pipeline struct {
	s      *stack.Stack
	sink   *sink
	conn   *grpc.ClientConn
	intake feedloopv1.IntakeServiceClient
	dir    string
	stop   context.CancelFunc
	done   chan error
}

func startPipeline(ctx context.Context, o Options) (_ *pipeline, err error) {
	p := &pipeline{}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	if p.dir, err = os.MkdirTemp("", "feedloop-bench-pipeline-"); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	if p.sink, err = newSink(); err != nil {
		return nil, err
	}
	teams := filepath.Join(p.dir, "teams.yaml")
	if err := os.WriteFile(teams, []byte("teams:\n  default:\n    - type: webhook\n      url: "+p.sink.URL()+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)

	cfg := stack.DevConfig(o.Examples, filepath.Join(p.dir, "jetstream"))
	cfg.RedisURL = o.RedisURL
	cfg.NATSSyncAlways = o.SyncAlways
	cfg.Console = nil // the bench measures the pipeline; nobody browses
	cfg.Notifier.TeamsFile = teams
	cfg.Notifier.WebhookSecret = hex.EncodeToString(secret)
	cfg.Notifier.ConsoleOutput = io.Discard
	cfg.Log = o.Log
	if p.s, err = stack.Start(ctx, cfg); err != nil {
		return nil, fmt.Errorf("bench: start the pipeline: %w", err)
	}
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	p.stop, p.done = stop, make(chan error, 1)
	go func() { p.done <- p.s.Run(rctx) }()

	if p.conn, err = grpc.NewClient(p.s.Intake.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		return nil, fmt.Errorf("bench: intake client: %w", err)
	}
	p.intake = feedloopv1.NewIntakeServiceClient(p.conn)
	return p, nil
}

// errDuplicate: intake took a bench item for one it had seen, so it never
// travels the path; the run ids are random, so this is a fault.
var errDuplicate = errors.New("bench: intake answered duplicate")

// sender submits items of run through the gRPC intake; the key is the
// feedback id, which the team webhook carries.
func (p *pipeline) sender(run string) sendFunc {
	return func(ctx context.Context, n int) (string, error) {
		res, err := p.intake.Submit(ctx, &feedloopv1.SubmitRequest{Feedback: itemAt(run, n)})
		if err != nil {
			return "", err
		}
		if res.GetDuplicate() {
			return "", errDuplicate
		}
		return res.GetFeedbackId(), nil
	}
}

// consumers are the pipeline's durable consumers on FEEDBACK.
var consumers = []string{bus.ConsumerClassifier, bus.ConsumerRouter, bus.ConsumerRouterProjector, bus.ConsumerNotifier}

// backlog samples, until ctx ends, the messages each durable consumer has
// pending or unacknowledged, and returns the largest backlog of each: the
// stage that holds one is the bottleneck.
func (p *pipeline) backlog(ctx context.Context) func() map[string]uint64 {
	peak := map[string]uint64{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, d := range consumers {
				c, err := p.s.Bus.JetStream().Consumer(ctx, bus.StreamFeedback, d)
				if err != nil {
					continue
				}
				if info, err := c.Info(ctx); err == nil {
					peak[d] = max(peak[d], info.NumPending+uint64(info.NumAckPending))
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() map[string]uint64 { <-done; return peak }
}

// close stops the services (they drain), then NATS and Redis.
func (p *pipeline) close() error {
	var err error
	if p.stop != nil {
		p.stop()
		err = <-p.done
	}
	if p.conn != nil {
		_ = p.conn.Close()
	}
	if p.sink != nil {
		p.sink.close()
	}
	if p.dir != "" {
		_ = os.RemoveAll(p.dir)
	}
	return err
}
