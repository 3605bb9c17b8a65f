package rebuild

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/feedloop/feedloop/pkg/bus"
)

// Pause is consumer middleware that holds a message whose handler met
// ErrNotReady until the gate's state is complete, then runs the handler
// again. The message is kept with InProgress every third of ackWait, so it
// is neither redelivered nor charged a delivery however long the rebuild
// takes, and the messages of one item stay in order behind it (PerItemOrder).
// Each run after a pause gets a fresh ackWait deadline.
//
// When stop is closed (shutting down) the error is returned as it is: the
// message is redelivered later, to this or another replica.
func Pause(g *Gate, stop <-chan struct{}, ackWait time.Duration) bus.Middleware {
	return func(next bus.Handler) bus.Handler {
		return func(ctx context.Context, m *bus.Msg) error {
			err := next(ctx, m)
			for errors.Is(err, ErrNotReady) {
				if werr := g.hold(ctx, m, stop, ackWait); werr != nil {
					return fmt.Errorf("%w (%w)", err, werr)
				}
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ackWait)
				err = next(rctx, m)
				cancel()
			}
			return err
		}
	}
}

var errStopping = errors.New("stopping while paused")

// hold waits until the state is complete, keeping m alive meanwhile.
func (g *Gate) hold(ctx context.Context, m *bus.Msg, stop <-chan struct{}, ackWait time.Duration) error {
	every := max(ackWait/3, 10*time.Millisecond)
	for {
		if err := m.InProgress(); err != nil {
			g.cfg.Log.Warn("rebuild: could not keep a paused message; it will be redelivered", "name", g.cfg.Name, "subject", m.Subject, "err", err)
		}
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), every)
		go func() {
			select {
			case <-stop:
				cancel()
			case <-wctx.Done():
			}
		}()
		err := g.WaitReady(wctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-stop:
			return errStopping
		default:
		}
	}
}
