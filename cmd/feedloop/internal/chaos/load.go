package chaos

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/natsauth"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// runLoad drives the items through intake while the faults of the
// schedule fall, and records what the driver saw.
func (h *harness) runLoad(ctx context.Context) error {
	d, closeDriver, err := h.newDriver()
	if err != nil {
		return err
	}
	defer closeDriver()
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()

	faultsDone := make(chan error, 1)
	var waitingFor atomic.Pointer[string] // the fault not yet due
	go func() { faultsDone <- h.injectFaults(lctx, d.submitted.Load, &waitingFor) }()
	ticker := time.NewTicker(5 * time.Second)
	defer ticker.Stop()
	loadDone := make(chan struct{})
	go func() { d.drive(lctx); close(loadDone) }()
	report := func() {
		h.progress("submitted %d/%d, retries %d, rate-limited %d, poison %d", d.submitted.Load(), h.o.Items, d.retries.Load(), d.rateLimited.Load(), d.poisonSent.Load())
	}
	for loadDone != nil {
		select {
		case <-loadDone:
			loadDone = nil
		case <-ticker.C:
			report()
		}
	}
	report()
	if err := d.err(); err != nil {
		return err
	}
	// A fault waiting on the pipeline (the notifier's, on its first
	// messages) is due soon after the load at the latest; if it never is,
	// the pipeline is broken and the logs say why.
	select {
	case err := <-faultsDone:
		if err != nil {
			return err
		}
	case <-time.After(faultDueTimeout):
		name := "?"
		if p := waitingFor.Load(); p != nil {
			name = *p
		}
		return fmt.Errorf("chaos: fault %q not due %s after the last item was accepted (the customer sink has %d messages, %d bad requests)",
			name, faultDueTimeout, h.sink.customerDeliveries(), h.sink.badRequests())
	}
	h.ids = d.feedbackIDs()
	h.res.Submitted = len(h.ids)
	h.res.SubmitRetries = int(d.retries.Load())
	h.res.RateLimitedRetries = int(d.rateLimited.Load())
	h.res.ResubmissionsDuplicate = int(d.duplicates.Load())
	h.res.PoisonSent = int(d.poisonSent.Load())
	return ctx.Err()
}

// newDriver connects the driver: a gRPC client of intake with the run's API
// key, and a NATS connection as the poison source; closeDriver closes both.
func (h *harness) newDriver() (d *driver, closeDriver func(), err error) {
	conn, err := dialIntake(h.intakeAdr)
	if err != nil {
		return nil, nil, fmt.Errorf("chaos: intake client: %w", err)
	}
	defer func() {
		if err != nil {
			conn.Close()
		}
	}()
	opts, err := h.natsOptions(natsauth.SourceUser(PoisonSource))
	if err != nil {
		return nil, nil, err
	}
	pnc, err := bus.Connect(h.natsURL(), "feedloop-chaos-"+PoisonSource, opts...)
	if err != nil {
		return nil, nil, err
	}
	pjs, err := jetstream.New(pnc)
	if err != nil {
		pnc.Close()
		return nil, nil, fmt.Errorf("chaos: %w", err)
	}
	d = &driver{
		run: runID(), items: h.o.Items, concurrency: h.o.Concurrency, rate: h.o.Rate, poisonEvery: 100,
		intake: feedloopv1.NewIntakeServiceClient(conn), apiKey: h.apiKey, poisonJS: pjs, ids: map[string]int{},
	}
	return d, func() { conn.Close(); pnc.Close() }, nil
}
