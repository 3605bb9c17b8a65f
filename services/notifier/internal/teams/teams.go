// Package teams reads the team-channel file: for each team the channels its
// alerts go to, and a "default" entry for teams not listed.
//
//	teams:
//	  billing:
//	    - type: webhook
//	      name: billing-alerts          # optional; recorded as the recipient
//	      url: https://hooks.example.com/billing
//	    - type: email
//	      to: [billing@example.com, finance-lead@example.com]
//	  default:
//	    - type: email
//	      to: support-leads@example.com
package teams

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"net/url"
	"os"
	"sort"
	"strings"

	"github.com/feedloop/feedloop/pkg/bus"
	"go.yaml.in/yaml/v3"
)

// Default is the entry used for teams the file does not list.
const Default = "default"

// Channel types.
const (
	TypeWebhook = "webhook"
	TypeEmail   = "email"
)

// ErrInvalid marks a file that breaks a rule.
var ErrInvalid = errors.New("invalid teams file")

// Channel is one channel of a team.
type Channel struct {
	// Type is "webhook" or "email".
	Type string `yaml:"type"`
	// Name names a webhook in records; defaults to "<team>-webhook" (with
	// "-2", "-3"… for further webhooks of the same entry).
	Name string `yaml:"name"`
	// URL is the webhook's http(s) URL.
	URL string `yaml:"url"`
	// To lists the email addresses (a single string is accepted too).
	To StringList `yaml:"to"`
}

// StringList is a YAML list of strings that also accepts a single string.
type StringList []string

// UnmarshalYAML accepts "a" as well as ["a", "b"].
func (l *StringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = StringList{n.Value}
		return nil
	}
	var s []string
	if err := n.Decode(&s); err != nil {
		return err
	}
	*l = s
	return nil
}

// File is the parsed team-channel file.
type File struct {
	Teams map[string][]Channel `yaml:"teams"`
}

// Load reads and validates the file at path.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("teams: %w", err)
	}
	f, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("teams: %s: %w", path, err)
	}
	return f, nil
}

// Parse parses and validates a team-channel file, filling in webhook names.
func Parse(b []byte) (*File, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := f.validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

func (f *File) validate() error {
	var errs []error
	for _, team := range f.Names() {
		chans := f.Teams[team]
		if team != Default && !bus.ValidToken(team) {
			errs = append(errs, fmt.Errorf("%w: teams.%s: team name must be 1-64 characters of [a-z0-9_-]", ErrInvalid, team))
		}
		if len(chans) == 0 {
			errs = append(errs, fmt.Errorf("%w: teams.%s: lists no channel", ErrInvalid, team))
		}
		names := map[string]bool{}
		webhooks := 0
		for i := range chans {
			c := &chans[i]
			at := fmt.Sprintf("teams.%s[%d]", team, i)
			switch c.Type {
			case TypeWebhook:
				webhooks++
				if len(c.To) > 0 {
					errs = append(errs, fmt.Errorf("%w: %s: a webhook channel takes url, not to", ErrInvalid, at))
				}
				if err := CheckURL(c.URL); err != nil {
					errs = append(errs, fmt.Errorf("%w: %s: url: %w", ErrInvalid, at, err))
				}
				if c.Name == "" {
					c.Name = team + "-webhook"
					if webhooks > 1 {
						c.Name = fmt.Sprintf("%s-webhook-%d", team, webhooks)
					}
				}
				if names[c.Name] {
					errs = append(errs, fmt.Errorf("%w: %s: webhook name %q used twice in teams.%s", ErrInvalid, at, c.Name, team))
				}
				names[c.Name] = true
			case TypeEmail:
				if c.URL != "" || c.Name != "" {
					errs = append(errs, fmt.Errorf("%w: %s: an email channel takes to, not url or name", ErrInvalid, at))
				}
				if len(c.To) == 0 {
					errs = append(errs, fmt.Errorf("%w: %s: an email channel needs to (one or more addresses)", ErrInvalid, at))
				}
				for j, a := range c.To {
					if err := CheckAddress(a); err != nil {
						errs = append(errs, fmt.Errorf("%w: %s.to[%d]: %w", ErrInvalid, at, j, err))
					}
				}
			default:
				errs = append(errs, fmt.Errorf("%w: %s: type must be webhook or email, got %q", ErrInvalid, at, c.Type))
			}
		}
	}
	return errors.Join(errs...)
}

// Names lists the entries of the file, sorted.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.Teams))
	for t := range f.Teams {
		names = append(names, t)
	}
	sort.Strings(names)
	return names
}

// For returns the channels of team: its own entry, or the default entry,
// or nothing.
func (f *File) For(team string) []Channel {
	if c, ok := f.Teams[team]; ok {
		return c
	}
	return f.Teams[Default]
}

// Has reports whether any entry has a channel of type typ.
func (f *File) Has(typ string) bool {
	for _, chans := range f.Teams {
		for _, c := range chans {
			if c.Type == typ {
				return true
			}
		}
	}
	return false
}

// CheckURL accepts absolute http and https URLs. Its errors never repeat
// the URL: a webhook URL often holds the secret that lets one post to it,
// and configuration errors end up in logs.
func CheckURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("must be an absolute http(s) URL, got one that does not parse")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be an absolute http(s) URL, got scheme %q and host %q", u.Scheme, u.Host)
	}
	return nil
}

// CheckAddress accepts one bare email address (no display name, no line breaks).
func CheckAddress(s string) error {
	if strings.ContainsAny(s, "\r\n") {
		return fmt.Errorf("email address must not contain line breaks, got %q", s)
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s {
		return fmt.Errorf("must be a bare email address like team@example.com, got %q", s)
	}
	return nil
}
