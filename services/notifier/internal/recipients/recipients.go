// Package recipients resolves who a notice goes to and over which
// channels: the customer's channels (email, the company's own messaging
// webhook) for customer steps, the team's channels from the teams file for
// team steps, and the console when configured.
package recipients

import (
	"strings"

	"github.com/feedloop/feedloop/services/notifier/internal/channel"
	"github.com/feedloop/feedloop/services/notifier/internal/steps"
	"github.com/feedloop/feedloop/services/notifier/internal/teams"
)

// CustomerWebhook is the recipient name recorded for the customer webhook.
const CustomerWebhook = "customer-webhook"

// Target is one recipient over one channel.
type Target struct {
	// Channel is "email", "webhook" or "console".
	Channel string
	// Recipient is recorded in Notified and in the delivery key: an email
	// address, a webhook name, a team or a customer.
	Recipient string
	// To and ToName address the message (see channel.Message).
	To     string
	ToName string
	// Sender delivers it.
	Sender channel.Sender
}

// Directory resolves notices to targets. Nil senders are not configured.
type Directory struct {
	// Email sends customer emails and team emails.
	Email channel.Sender
	// CustomerWebhook posts customer messages to the company's messaging system.
	CustomerWebhook channel.Sender
	// Console mirrors every message to a writer.
	Console channel.Sender
	// Teams are the team channels; TeamWebhooks holds a sender per
	// "<entry>/<webhook name>".
	Teams        *teams.File
	TeamWebhooks map[string]channel.Sender
}

// TeamWebhookKey names a team webhook's sender in TeamWebhooks.
func TeamWebhookKey(entry, name string) string { return entry + "/" + name }

// For lists the targets of n, without duplicates. An empty list means the
// recipient has no address on any configured channel.
func (d *Directory) For(n steps.Notice) []Target {
	var out []Target
	switch n.Audience {
	case steps.AudienceCustomer:
		out = d.customer(n.Data.Customer)
	case steps.AudienceTeam:
		out = d.team(n.Team)
	}
	return dedupe(out)
}

func (d *Directory) customer(c steps.Customer) []Target {
	var out []Target
	email := strings.ToLower(strings.TrimSpace(c.Email))
	if d.Email != nil && email != "" {
		out = append(out, Target{Channel: channel.Email, Recipient: email, To: email, ToName: c.Name, Sender: d.Email})
	}
	// The company's messaging system knows the customer by id or email.
	if d.CustomerWebhook != nil && (c.ID != "" || email != "") {
		out = append(out, Target{Channel: channel.Webhook, Recipient: CustomerWebhook, To: CustomerWebhook, ToName: c.Name, Sender: d.CustomerWebhook})
	}
	if d.Console != nil {
		who := email
		if who == "" && c.ID != "" {
			who = "id:" + c.ID
		}
		if who != "" {
			out = append(out, Target{Channel: channel.Console, Recipient: who, To: who, ToName: c.Name, Sender: d.Console})
		}
	}
	return out
}

func (d *Directory) team(team string) []Target {
	var out []Target
	if d.Teams != nil {
		entry := team
		if _, ok := d.Teams.Teams[team]; !ok {
			entry = teams.Default
		}
		for _, c := range d.Teams.For(team) {
			switch c.Type {
			case teams.TypeWebhook:
				if s := d.TeamWebhooks[TeamWebhookKey(entry, c.Name)]; s != nil {
					out = append(out, Target{Channel: channel.Webhook, Recipient: c.Name, To: c.Name, Sender: s})
				}
			case teams.TypeEmail:
				if d.Email == nil {
					continue
				}
				for _, a := range c.To {
					a = strings.ToLower(a)
					out = append(out, Target{Channel: channel.Email, Recipient: a, To: a, ToName: team, Sender: d.Email})
				}
			}
		}
	}
	if d.Console != nil {
		out = append(out, Target{Channel: channel.Console, Recipient: team, To: team, Sender: d.Console})
	}
	return out
}

func dedupe(ts []Target) []Target {
	seen := map[string]bool{}
	out := ts[:0]
	for _, t := range ts {
		k := t.Channel + "\x00" + t.Recipient
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, t)
	}
	return out
}
