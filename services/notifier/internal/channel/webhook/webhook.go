// Package webhook delivers notifications as signed HTTP POSTs of JSON.
//
// Each request carries:
//
//	Content-Type: application/json
//	Idempotency-Key: <uuid>     the same for every attempt and redelivery of one
//	                            (feedback, step, recipient) delivery: drop repeats
//	X-Feedloop-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>]
//	                            hex(HMAC-SHA256(secret, "<t>.<body>")) over the
//	                            exact body bytes, per secret (package webhooksig)
//	X-Feedloop-Step: <step>     e.g. received, planned, routed, digest
//
// Receivers verify by recomputing the HMAC of "<t>.<raw body>" with the
// shared secret (NOTIFIER_WEBHOOK_SECRET), comparing in constant time, and
// refusing a t too far from their clock (a replay); webhooksig.Verify does
// all of it. Every attempt is signed afresh, so a retry carries a new t
// and the same Idempotency-Key. The body is Payload as JSON. A 2xx answer accepts the delivery; 429, 5xx and
// network errors are retried with exponential backoff (a bounded number of
// attempts per call, Retry-After honoured up to the cap); any other answer
// (4xx, 3xx: redirects are not followed) rejects it for good.
package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/feedloop/feedloop/services/notifier/internal/channel"
	"github.com/feedloop/feedloop/services/notifier/webhooksig"
)

// Header names.
const (
	HeaderSignature      = webhooksig.Header
	HeaderIdempotencyKey = "Idempotency-Key"
	// The step, audience and feedback id repeat the body's so that a
	// receiver can route, filter and deduplicate without parsing it.
	HeaderStep       = "X-Feedloop-Step"
	HeaderAudience   = "X-Feedloop-Audience"
	HeaderFeedbackID = "X-Feedloop-Feedback-Id"
)

// ErrUnavailable marks a delivery that failed after every attempt with a
// retryable cause (5xx, 429, network); a later retry may succeed.
var ErrUnavailable = errors.New("webhook unavailable")

// Payload is the JSON body of every webhook request (version 1).
type Payload struct {
	Version        int    `json:"version"`
	IdempotencyKey string `json:"idempotency_key"`
	// Step is the step of the loop, e.g. "received" or "routed".
	Step string `json:"step"`
	// Audience is "customer" or "team".
	Audience   string   `json:"audience"`
	FeedbackID string   `json:"feedback_id"`
	Team       string   `json:"team,omitempty"`
	Customer   Customer `json:"customer"`
	Source     string   `json:"source,omitempty"`
	Subject    string   `json:"subject,omitempty"`
	// Text is the customer's text for customer steps and the redacted text
	// for team steps.
	Text       string    `json:"text"`
	ReceivedAt time.Time `json:"received_at,omitzero"`
	// Message is the rendered message, for receivers that show it as is.
	Message Message `json:"message"`
	// StatusURL is the customer's status link, absent when not configured.
	StatusURL      string          `json:"status_url,omitempty"`
	Classification *Classification `json:"classification,omitempty"`
	Assignment     *Assignment     `json:"assignment,omitempty"`
	// CustomerMessage is the team's message to the customer (planned,
	// plan_changed, resolved).
	CustomerMessage string `json:"customer_message,omitempty"`
	// Reason is why a team declined (declined) or reopened (reopened).
	Reason string `json:"reason,omitempty"`
	// Actor is who made the change (reopened).
	Actor string `json:"actor,omitempty"`
	// DueAt is the promised date (planned, plan_changed); PreviousDueAt the
	// date promised before (plan_changed).
	DueAt         time.Time `json:"due_at,omitzero"`
	PreviousDueAt time.Time `json:"previous_due_at,omitzero"`
	// ReroutedFrom is the team that passed the item on (routed).
	ReroutedFrom string `json:"rerouted_from,omitempty"`
	// Teams are the teams that handled the item (survey).
	Teams []string `json:"teams,omitempty"`
	// Survey are the one-click CSAT answers (survey).
	Survey []SurveyLink `json:"survey,omitempty"`
	// Escalation describes an SLA warning or breach (escalated).
	Escalation *Escalation `json:"escalation,omitempty"`
	// Digest lists the messages held back by the daily cap (digest).
	Digest []DigestItem `json:"digest,omitempty"`
}

// SurveyLink is one CSAT answer of the survey.
type SurveyLink struct {
	Score int    `json:"score"`
	URL   string `json:"url"`
}

// Escalation is an SLA warning (level 0) or breach (level 1 and up).
type Escalation struct {
	Kind       string    `json:"kind"`
	Level      int       `json:"level"`
	EscalateTo string    `json:"escalate_to,omitempty"`
	Deadline   string    `json:"deadline,omitempty"`
	DueAt      time.Time `json:"due_at,omitzero"`
}

// DigestItem is one held message of a digest.
type DigestItem struct {
	FeedbackID string `json:"feedback_id"`
	Step       string `json:"step"`
	Subject    string `json:"subject"`
	Text       string `json:"text"`
}

// Customer identifies the customer.
type Customer struct {
	ID     string `json:"id,omitempty"`
	Name   string `json:"name,omitempty"`
	Email  string `json:"email,omitempty"`
	Locale string `json:"locale,omitempty"`
}

// Message is the rendered message.
type Message struct {
	Subject string `json:"subject"`
	Text    string `json:"text"`
	HTML    string `json:"html"`
}

// Classification summarises the classifier's findings (team steps).
type Classification struct {
	Topics    []string `json:"topics,omitempty"`
	Sentiment string   `json:"sentiment,omitempty"`
	Urgency   string   `json:"urgency,omitempty"`
	Language  string   `json:"language,omitempty"`
}

// Assignment is the team's assignment (team steps).
type Assignment struct {
	Route         string    `json:"route,omitempty"`
	Priority      string    `json:"priority,omitempty"`
	AcknowledgeBy time.Time `json:"acknowledge_by,omitzero"`
	ResolveBy     time.Time `json:"resolve_by,omitzero"`
}

// NewPayload builds the body for m.
func NewPayload(m channel.Message) Payload {
	d := m.Data
	p := Payload{
		Version:        1,
		IdempotencyKey: m.Key,
		Step:           d.Step,
		Audience:       d.Audience,
		FeedbackID:     d.FeedbackID,
		Team:           d.Team,
		Customer:       Customer{ID: d.Customer.ID, Name: d.Customer.Name, Email: d.Customer.Email, Locale: d.Customer.Locale},
		Source:         d.Source,
		Subject:        d.Subject,
		Text:           d.Text,
		ReceivedAt:     d.ReceivedAt,
		Message:        Message{Subject: m.Subject, Text: m.Text, HTML: m.HTML},
		StatusURL:      d.StatusURL,

		CustomerMessage: d.Message,
		Reason:          d.Reason,
		Actor:           d.Actor,
		DueAt:           d.DueAt,
		PreviousDueAt:   d.PreviousDueAt,
		ReroutedFrom:    d.RerouteFrom,
		Teams:           d.Teams,
	}
	for _, l := range d.SurveyLinks {
		p.Survey = append(p.Survey, SurveyLink{Score: l.Score, URL: l.URL})
	}
	if e := d.Escalation; !e.IsZero() {
		p.Escalation = &Escalation{Kind: e.Kind, Level: e.Level, EscalateTo: e.EscalateTo, Deadline: e.Deadline, DueAt: e.DueAt}
	}
	for _, it := range d.Digest {
		p.Digest = append(p.Digest, DigestItem{FeedbackID: it.FeedbackID, Step: it.Step, Subject: it.Subject, Text: it.Text})
	}
	if !d.Classification.IsZero() {
		c := d.Classification
		p.Classification = &Classification{Topics: c.Topics, Sentiment: c.Sentiment, Urgency: c.Urgency, Language: c.Language}
	}
	if !d.Assignment.IsZero() {
		a := d.Assignment
		p.Assignment = &Assignment{Route: a.Route, Priority: a.Priority, AcknowledgeBy: a.AcknowledgeBy, ResolveBy: a.ResolveBy}
	}
	return p
}

// Options configure a Client.
type Options struct {
	// URL receives the POSTs.
	URL string
	// Secret signs the bodies.
	Secret []byte
	// PreviousSecret, during a rotation, signs them too (a second v1), so
	// receivers that still hold it keep verifying.
	PreviousSecret []byte
	// Now is the clock of the signatures (default time.Now).
	Now func() time.Time
	// Timeout bounds one attempt (default 10s).
	Timeout time.Duration
	// Attempts bounds the attempts of one Send (default 3).
	Attempts int
	// Backoff is the wait before the second attempt, doubled after each
	// further one (default 500ms).
	Backoff time.Duration
	// MaxBackoff caps a wait, Retry-After included (default 5s).
	MaxBackoff time.Duration
	// HTTP is the client used (default: a client that does not follow redirects).
	HTTP *http.Client
	// Concurrency is how many Sends may run at once (the notifier's
	// NOTIFIER_CONCURRENCY): the default client keeps as many idle
	// connections, so that none is closed and dialled again between
	// bursts (default 64).
	Concurrency int
	// UserAgent is sent as User-Agent (default "feedloop-notifier").
	UserAgent string
	// TracerProvider receives the default client's spans (default: the
	// global one).
	TracerProvider trace.TracerProvider
}

// Client posts messages to one webhook URL.
type Client struct {
	o      Options
	signer *webhooksig.Signer
}

// New returns a Client for o.
func New(o Options) (*Client, error) {
	if o.URL == "" {
		return nil, errors.New("webhook: no URL")
	}
	if len(o.Secret) == 0 {
		return nil, errors.New("webhook: no secret")
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Attempts <= 0 {
		o.Attempts = 3
	}
	if o.Backoff <= 0 {
		o.Backoff = 500 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 64
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{
			// A redirect of a signed POST is a misconfiguration, not something to follow.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			// Each POST is a client span of the item's trace, and carries
			// traceparent to a receiver that traces too.
			Transport: tracedTransport(transport(o.Concurrency), o.TracerProvider),
		}
	}
	if o.UserAgent == "" {
		o.UserAgent = "feedloop-notifier"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	secrets := [][]byte{o.Secret}
	if len(o.PreviousSecret) > 0 {
		secrets = append(secrets, o.PreviousSecret)
	}
	return &Client{o: o, signer: webhooksig.NewSigner(secrets...)}, nil
}

// Send posts m, retrying transient failures within the call.
func (c *Client) Send(ctx context.Context, m channel.Message) error {
	p := NewPayload(m)
	body, err := p.encode()
	if err != nil {
		return fmt.Errorf("webhook: encode: %w: %w", channel.ErrRejected, err)
	}
	wait := c.o.Backoff
	var last error
	for attempt := 1; ; attempt++ {
		retryAfter, err := c.post(ctx, body, m)
		if err == nil || errors.Is(err, channel.ErrRejected) {
			return err
		}
		last = err
		if attempt >= c.o.Attempts {
			break
		}
		d := wait
		if retryAfter > 0 {
			d = retryAfter
		}
		d = min(d, c.o.MaxBackoff)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w: %w (last: %w)", ErrUnavailable, ctx.Err(), last)
		case <-t.C:
		}
		wait *= 2
	}
	return fmt.Errorf("%w: %d attempts: %w", ErrUnavailable, c.o.Attempts, last)
}

// post makes one attempt. It returns the server's Retry-After, if any.
func (c *Client) post(ctx context.Context, body []byte, m channel.Message) (time.Duration, error) {
	actx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, c.o.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("webhook: %w: %w", channel.ErrRejected, err)
	}
	// Signed per attempt: the timestamp is when this request left, so a
	// retry is not refused as a replay.
	vals := [...]string{"application/json", c.o.UserAgent, c.sign(body), m.Key, m.Data.Step, m.Data.Audience, m.Data.FeedbackID}
	// One array for the values and room for the trace headers otelhttp
	// adds: a slice and a map growth per header otherwise. The names are
	// canonical already, as Header.Set would make them.
	req.Header = make(http.Header, len(vals)+3)
	for i, k := range [...]string{"Content-Type", "User-Agent", HeaderSignature, HeaderIdempotencyKey, HeaderStep, HeaderAudience, HeaderFeedbackID} {
		req.Header[k] = vals[i : i+1 : i+1]
	}
	resp, err := c.o.HTTP.Do(req)
	if err != nil {
		// *url.Error repeats the full URL, query tokens included: keep its cause only.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, fmt.Errorf("webhook: post %s: %w", redact(c.o.URL), err)
	}
	defer resp.Body.Close()
	// Read a bounded part of the answer: it explains a refusal, and reading
	// to the end lets the connection be reused. An acceptance needs no
	// explaining: its body is only read.
	if code := resp.StatusCode; code >= 200 && code < 300 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 512+64<<10))
		return 0, nil
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch code := resp.StatusCode; {
	case code == http.StatusTooManyRequests || code >= 500:
		return parseRetryAfter(resp.Header.Get("Retry-After")),
			fmt.Errorf("webhook: %s answered %s: %s", redact(c.o.URL), resp.Status, strings.TrimSpace(string(snippet)))
	default:
		return 0, fmt.Errorf("webhook: %w: %s answered %s: %s", channel.ErrRejected, redact(c.o.URL), resp.Status, strings.TrimSpace(string(snippet)))
	}
}

// sign is the signature header of body, now, by every secret.
func (c *Client) sign(body []byte) string {
	return c.signer.Sign(c.o.Now(), body)
}

// parseRetryAfter reads a Retry-After in seconds; dates and junk give 0.
func parseRetryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

// redact shows a URL for logs and traces as its scheme and host only:
// its query, user info and path often hold the secret that lets one post
// to it (a chat webhook is https://hooks.example/services/T0/B0/<secret>).
// A path becomes "/…".
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparsable URL)"
	}
	shown := u.Scheme + "://" + u.Host
	if u.Path != "" && u.Path != "/" {
		shown += "/…"
	}
	return shown
}

var _ channel.Sender = (*Client)(nil)

// transport keeps an idle connection for each of the conns deliveries that
// may run at once (the default keeps 2; with fewer than conns, every burst
// closes the surplus and dials it again: a TCP handshake and two
// goroutines per connection on both sides).
//
// Its write buffer holds a whole request: with the default 4 KiB, a
// message's request (about 5 KiB for a team alert, its HTML escaped in
// JSON) left in two writes, two system calls and two segments for the
// receiver to take in.
func transport(conns int) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = conns
	t.MaxIdleConns = max(t.MaxIdleConns, conns)
	t.WriteBufferSize = writeBuffer
	return t
}

// writeBuffer is the transport's write buffer per connection; a larger
// request (a long digest) is written in more than one go, as before.
const writeBuffer = 16 << 10
