package chaos

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"
)

// FaultNames name the faults of the schedule, in order.
var FaultNames = []string{"notifier", "intake", "classifier", "router", "nats", "flush"}

// fault is one fault of the schedule, injected once the driver has had
// at (a fraction) of the items accepted, or, with ready, once ready says so.
type fault struct {
	at        float64
	key, name string
	do        func(ctx context.Context) error
	ready     func() bool
}

// due reports whether f may be injected now.
func (f fault) due(submitted int64, items int) bool {
	if f.ready != nil {
		return f.ready()
	}
	return submitted >= int64(f.at*float64(items))
}

// notifierBusy is how many customer acknowledgements the sink must have
// received before the notifier is killed: it is then sending, with
// deliveries claimed and in flight.
const notifierBusy = 10

// faultDueTimeout bounds the wait for the faults still to come once every
// item was accepted.
const faultDueTimeout = 2 * time.Minute

// relaunchTimeout bounds the wait for a process restarted after a fault
// to listen on its port again.
const relaunchTimeout = time.Minute

// restart starts service p again after its fault. One with a port its
// clients know gets it back (relaunch); one that ends at start for another
// reason is left to the supervisor, which starts it again and reports the
// exit, as for any service.
func (h *harness) restart(ctx context.Context, p *proc) error {
	if p.port == 0 {
		return p.start()
	}
	err := h.relaunch(ctx, p, relaunchTimeout)
	if errors.Is(err, errEnded) {
		return nil
	}
	return err
}

func (h *harness) schedule() []fault {
	kill := func(name string) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			p := h.service(name)
			h.setFaulting(p, true)
			defer h.setFaulting(p, false)
			p.kill()
			sleep(ctx, 500*time.Millisecond)
			return h.restart(ctx, p)
		}
	}
	return []fault{
		// The notifier first, as soon as it is sending: a SIGKILLed notifier's
		// claims hold its deliveries for the claim TTL (2 min) and its
		// consumer's redelivery schedule after that, which no run can end
		// before; killed early, that wait passes while the rest runs.
		{ready: func() bool { return h.sink.customerDeliveries() >= notifierBusy }, key: "notifier", name: "SIGKILL notifier", do: kill("notifier")},
		{at: 0.20, key: "intake", name: "SIGKILL intake", do: kill("intake")},
		{at: 0.30, key: "classifier", name: "SIGKILL classifier-1", do: kill("classifier-1")},
		{at: 0.40, key: "router", name: "SIGKILL router-1", do: kill("router-1")},
		{at: 0.50, key: "nats", name: "SIGKILL nats-server, restart on the same store and port", do: func(ctx context.Context) error {
			h.nats.kill()
			sleep(ctx, time.Second)
			if err := h.relaunch(ctx, h.nats, relaunchTimeout); err != nil {
				return err
			}
			return h.waitJetStream(ctx)
		}},
		{at: 0.60, key: "flush", name: "FLUSHALL redis", do: func(ctx context.Context) error {
			return h.rdb.FlushAll(ctx).Err()
		}},
	}
}

// injectFaults injects the faults of the schedule, less those skipped, each
// once it is due (submitted is how many items intake has accepted so far),
// and records each in the result. waitingFor names the fault not yet due.
func (h *harness) injectFaults(ctx context.Context, submitted func() int64, waitingFor *atomic.Pointer[string]) error {
	for _, f := range h.schedule() {
		if slices.Contains(h.o.Skip, f.key) {
			continue
		}
		waitingFor.Store(&f.name)
		for !f.due(submitted(), h.o.Items) {
			if !sleep(ctx, 20*time.Millisecond) {
				return ctx.Err()
			}
		}
		at := time.Since(h.start).Seconds()
		h.progress("fault: %s (at %d submitted)", f.name, submitted())
		if err := f.do(ctx); err != nil {
			return fmt.Errorf("chaos: fault %s: %w", f.name, err)
		}
		h.mu.Lock()
		h.res.Faults = append(h.res.Faults, fmt.Sprintf("%.1fs %s", at, f.name))
		h.mu.Unlock()
	}
	return nil
}
