package chaos

import (
	"fmt"
	"strings"
)

// Result is one run. The first seven fields are the assertions;
// the rest say what happened, to explain a failure.
type Result struct {
	// Submitted counts the items intake accepted (each exactly once, after
	// retries; a retry answered "duplicate" counts as accepted).
	Submitted int `json:"submitted"`
	// MissingRoutes counts items that did not reach every team their route
	// names, in the stream or at the team sink: must be 0.
	MissingRoutes int `json:"missing_routes"`
	// DuplicateMessages and MissingMessages count customer acknowledgements
	// beyond or short of exactly one per item, as a receiver honouring
	// Idempotency-Key sees them: a further delivery under a new key (or
	// without one) is a duplicate. Both must be 0.
	DuplicateMessages int `json:"duplicate_messages"`
	MissingMessages   int `json:"missing_messages"`
	// PoisonSent and DeadLettered (distinct poison messages on
	// feedback.dlq.intake) must be equal.
	PoisonSent   int `json:"poison_sent"`
	DeadLettered int `json:"dead_lettered"`
	// ReadModelEqual: the router's read model equals a rebuild from the stream.
	ReadModelEqual bool `json:"read_model_equal"`

	Items int `json:"items"`
	// ResentSameKey counts raw redeliveries of a customer acknowledgement
	// under its first delivery's Idempotency-Key: a receiver honouring the
	// key drops them. Reported, not a failure: a notifier killed after the
	// receiver accepted and before it recorded the send resends so, and no
	// sender can close that window; a FLUSHALL erases the records too.
	ResentSameKey int `json:"resent_same_key"`
	// Unclassified counts accepted items without a classified event.
	Unclassified int `json:"unclassified"`
	// RoutedExtra counts routed events beyond one per (item, team) in the
	// stream; TeamAlertsDuplicate team alerts beyond one at the sink (team
	// alerts are at-least-once, with an Idempotency-Key).
	RoutedExtra         int `json:"routed_events_extra"`
	TeamAlertsDuplicate int `json:"team_alerts_duplicate"`
	// DeadLettersOther are dead letters that are not poison: each a finding.
	DeadLettersOther []string `json:"dead_letters_other"`
	// SubmitRetries counts Unavailable and connection errors retried;
	// ResubmissionsDuplicate the retries intake answered "duplicate".
	SubmitRetries int `json:"submit_retries"`
	// RateLimitedRetries counts ResourceExhausted answers (intake's rate
	// limit, IntakeRateLimit) waited out for their RetryInfo delay and
	// retried under the same (source, external_id).
	RateLimitedRetries     int `json:"rate_limited_retries"`
	ResubmissionsDuplicate int `json:"resubmissions_duplicate"`
	// Faults lists the faults injected, in order, with when.
	Faults []string `json:"faults"`
	// UnexpectedExits lists services that ended by themselves (and were
	// started again, as a supervisor would).
	UnexpectedExits []string `json:"unexpected_exits"`
	// Quiescent: every consumer caught up within the timeout.
	Quiescent bool `json:"quiescent"`
	// Events is how many events the FEEDBACK stream holds.
	Events int `json:"events"`
	// NATSSync is the fsync setting of nats-server in the run.
	NATSSync  string  `json:"nats_sync"`
	DurationS float64 `json:"duration_s"`
	// RunDir holds the logs and the store when kept.
	RunDir string `json:"run_dir,omitempty"`

	readModelDiff string
	examples      []string
}

// OK reports whether every assertion holds.
func (r *Result) OK() bool { return len(r.Failures()) == 0 }

// Failures describes each assertion that failed.
func (r *Result) Failures() []string {
	var out []string
	if r.Submitted != r.Items {
		out = append(out, fmt.Sprintf("submitted %d of %d items", r.Submitted, r.Items))
	}
	if r.MissingRoutes != 0 {
		out = append(out, fmt.Sprintf("missing_routes %d", r.MissingRoutes))
	}
	// Raw resends under the first delivery's key (ResentSameKey) are not
	// counted here: a receiver honouring Idempotency-Key drops them.
	if r.DuplicateMessages != 0 || r.MissingMessages != 0 {
		out = append(out, fmt.Sprintf("customer acknowledgements: %d duplicate (a new or no Idempotency-Key), %d missing", r.DuplicateMessages, r.MissingMessages))
	}
	if r.PoisonSent != r.DeadLettered {
		out = append(out, fmt.Sprintf("poison_sent %d != dead_lettered %d", r.PoisonSent, r.DeadLettered))
	}
	if !r.ReadModelEqual {
		out = append(out, "read model differs from a rebuild from the stream: "+r.readModelDiff)
	}
	if len(r.DeadLettersOther) > 0 {
		out = append(out, fmt.Sprintf("%d dead letters that are not poison", len(r.DeadLettersOther)))
	}
	if !r.Quiescent {
		out = append(out, "the consumers did not catch up within the timeout")
	}
	return out
}

// Examples are up to a few items behind each failed count.
func (r *Result) Examples() []string { return r.examples }

// String is a short human summary of r.
func (r *Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "feedloop chaos: %d items, %d events, %.0fs\n", r.Items, r.Events, r.DurationS)
	for _, f := range r.Faults {
		fmt.Fprintf(&b, "  fault  %s\n", f)
	}
	for _, e := range r.UnexpectedExits {
		fmt.Fprintf(&b, "  exit   %s\n", e)
	}
	fmt.Fprintf(&b, "  submitted %d (retries %d, rate-limited retries %d, answered duplicate %d)\n", r.Submitted, r.SubmitRetries, r.RateLimitedRetries, r.ResubmissionsDuplicate)
	fmt.Fprintf(&b, "  missing routes %d, customer acknowledgements duplicate %d missing %d (resent under the same key %d)\n", r.MissingRoutes, r.DuplicateMessages, r.MissingMessages, r.ResentSameKey)
	fmt.Fprintf(&b, "  poison sent %d, dead-lettered %d, other dead letters %d\n", r.PoisonSent, r.DeadLettered, len(r.DeadLettersOther))
	fmt.Fprintf(&b, "  read model equal to a rebuild: %v; team alerts duplicate %d; routed events extra %d\n", r.ReadModelEqual, r.TeamAlertsDuplicate, r.RoutedExtra)
	for _, f := range r.Failures() {
		fmt.Fprintf(&b, "  FAIL   %s\n", f)
	}
	for _, e := range r.examples {
		fmt.Fprintf(&b, "         %s\n", e)
	}
	for _, e := range r.DeadLettersOther {
		fmt.Fprintf(&b, "  dlq    %s\n", e)
	}
	if r.RunDir != "" {
		fmt.Fprintf(&b, "  logs and store kept in %s\n", r.RunDir)
	}
	return b.String()
}
