package chaos

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Defaults of Options.
const (
	DefaultItems          = 20000
	DefaultConcurrency    = 16
	DefaultQuiesceTimeout = 5 * time.Minute
	// IntakeRateLimit is intake's per-source limit in the run
	// (INTAKE_RATE_LIMIT): on, as in a deployment, above the default
	// 100/s that one source driving the whole run would exceed; the driver
	// waits out RESOURCE_EXHAUSTED's RetryInfo when it goes faster.
	IntakeRateLimit = "250/s"
)

// Options configure a run. Zero values take the defaults.
type Options struct {
	// Items is how many items are submitted through the gRPC intake.
	Items int
	// Concurrency is how many gRPC clients submit at once.
	Concurrency int
	// Rate bounds submissions (items/s); 0 is as fast as intake takes them.
	// A small run uses it to spread its faults over its load.
	Rate float64
	// Dir is the repository root (go.work); empty: found from the working
	// directory upwards.
	Dir string
	// Keep leaves the run directory (logs, JetStream store) in place; it is
	// also kept when an assertion fails.
	Keep bool
	// Skip leaves faults out by name (FaultNames), to tell which fault
	// causes a finding.
	Skip []string
	// QuiesceTimeout bounds the wait for every consumer to catch up at the end.
	QuiesceTimeout time.Duration
	// Progress receives a progress line now and then (default: nowhere).
	Progress io.Writer
}

func (o Options) withDefaults() Options {
	if o.Items == 0 {
		o.Items = DefaultItems
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.QuiesceTimeout == 0 {
		o.QuiesceTimeout = DefaultQuiesceTimeout
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return o
}

// Validate checks o after defaults.
func (o Options) Validate() error {
	o = o.withDefaults()
	var errs []error
	if o.Items < 100 {
		errs = append(errs, fmt.Errorf("items: must be at least 100 (1%% of them is poison), got %d", o.Items))
	}
	if o.Concurrency < 1 || o.Concurrency > 1000 {
		errs = append(errs, fmt.Errorf("concurrency: must be 1..1000, got %d", o.Concurrency))
	}
	if o.Rate < 0 {
		errs = append(errs, fmt.Errorf("rate: must not be negative, got %g", o.Rate))
	}
	for _, n := range o.Skip {
		if !slices.Contains(FaultNames, n) {
			errs = append(errs, fmt.Errorf("skip: unknown fault %q (%s)", n, strings.Join(FaultNames, ", ")))
		}
	}
	if o.QuiesceTimeout < time.Second {
		errs = append(errs, fmt.Errorf("quiesce timeout: must be at least 1s, got %s", o.QuiesceTimeout))
	}
	return errors.Join(errs...)
}
