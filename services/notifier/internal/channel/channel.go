// Package channel defines what the notifier sends and the contract every
// delivery channel (webhook, email, console) implements.
package channel

import (
	"context"
	"errors"

	"github.com/feedloop/feedloop/services/notifier/internal/steps"
)

// Channel names, as recorded in Notified.channel and in delivery keys.
const (
	Webhook = "webhook"
	Email   = "email"
	Console = "console"
)

// ErrRejected marks a delivery the receiver refused in a way no retry can
// fix (HTTP 4xx, SMTP 5xx, an unsafe header): the caller must not retry.
var ErrRejected = errors.New("rejected")

// Message is one rendered message to one recipient.
type Message struct {
	// Key is the delivery's idempotency key: deterministic per (feedback,
	// step, scope, channel, recipient), the same on every retry.
	Key string
	// To is the recipient: an email address for email, the recipient name
	// for other channels.
	To string
	// ToName is the recipient's display name, if any.
	ToName string
	// Subject, Text and HTML are the rendered message.
	Subject string
	Text    string
	HTML    string
	// Data are the facts the message was rendered from, for channels that
	// send structure (the webhook body).
	Data steps.Data
}

// Sender delivers messages over one channel to one endpoint. Send returns
// nil once the receiver accepted the message, an error wrapping ErrRejected
// when retrying is pointless, and any other error when a later retry may
// succeed.
type Sender interface {
	Send(ctx context.Context, m Message) error
}
