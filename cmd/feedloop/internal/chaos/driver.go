package chaos

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/feedloop/feedloop/pkg/bus"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// Source is the source of every item the harness submits; poison goes to
// feedback.submit.<PoisonSource>.
const (
	Source       = "chaos"
	PoisonSource = "chaos-poison"
	// HeaderPoison numbers a poison message, so the dead letters can be
	// matched to what was sent.
	HeaderPoison = "Chaos-Poison"
)

// shape is one kind of item: with the example rules and routes its text,
// score and attributes send it to the teams in the comment, several of
// them for most shapes (continue: true fan-out).
type shape struct {
	subject, text string
	channel       feedloopv1.Channel
	nps           *int32
	attrs         map[string]string
}

func score(n int32) *int32 { return &n }

var shapes = []shape{
	// billing, logistics-dach, customer-success (detractor)
	{"Late again", "My parcel arrived two weeks late and I was charged twice for the delivery.", feedloopv1.Channel_CHANNEL_SURVEY, score(3), map[string]string{"plan": "pro", "region": "ch"}},
	// product/mobile (app review)
	{"Crash", "The app crashes on my iphone since the last app update.", feedloopv1.Channel_CHANNEL_APP_REVIEW, nil, nil},
	// product (ideas)
	{"Idea", "Please add an export button, it would be nice to have.", feedloopv1.Channel_CHANNEL_EMAIL, nil, nil},
	// marketing (praise)
	{"Thanks", "Great service, thank you so much for the quick help!", feedloopv1.Channel_CHANNEL_CHAT, score(10), nil},
	// accounts (access), billing
	{"Locked out", "I am locked out of my account and my invoice shows the wrong amount.", feedloopv1.Channel_CHANNEL_EMAIL, nil, map[string]string{"plan": "enterprise"}},
	// logistics
	{"Damaged", "My package arrived damaged and the box was crushed.", feedloopv1.Channel_CHANNEL_WEB, nil, map[string]string{"region": "uk"}},
	// support-escalations, billing (refunds)
	{"Refund", "This is fraud, I want a refund or I will call my lawyer.", feedloopv1.Channel_CHANNEL_PHONE, nil, nil},
	// triage
	{"Hello", "Hello, just checking in about something.", feedloopv1.Channel_CHANNEL_OTHER, nil, nil},
}

// item returns the n-th item of run.
func item(run string, n int) *feedloopv1.Feedback {
	sh := shapes[n%len(shapes)]
	id := run + "-" + strconv.Itoa(n)
	return &feedloopv1.Feedback{
		Source:     Source,
		ExternalId: id,
		Channel:    sh.channel,
		Customer: &feedloopv1.Customer{
			Id:      "cus-" + id,
			Name:    "Ada Lovelace",
			Email:   "ada+" + id + "@example.com",
			Locale:  "en",
			Consent: &feedloopv1.Consent{Contact: true},
		},
		Subject:    sh.subject,
		Text:       sh.text,
		Nps:        sh.nps,
		Product:    "webshop",
		Attributes: sh.attrs,
	}
}

// driver submits the items through the gRPC intake, retrying what the
// system could not take under the same (source, external_id), and
// publishes the poison messages.
type driver struct {
	run         string
	items       int
	concurrency int
	rate        float64
	poisonEvery int

	intake feedloopv1.IntakeServiceClient
	// apiKey goes with every Submit (authorization: Bearer).
	apiKey string
	// poisonJS is connected as the poison source's NATS user.
	poisonJS jetstream.JetStream

	submitted  atomic.Int64 // accepted by intake (new or duplicate)
	duplicates atomic.Int64 // accepted as a resubmission of an item it had
	retries    atomic.Int64 // Unavailable and connection errors retried
	// rateLimited counts ResourceExhausted answers waited out (RetryInfo)
	// and retried.
	rateLimited atomic.Int64
	poisonSent  atomic.Int64
	failures    atomic.Int64 // errors no retry can fix: a harness bug
	firstErr    atomic.Pointer[error]

	mu  sync.Mutex
	ids map[string]int // feedback id → item number
}

func dialIntake(addr string) (*grpc.ClientConn, error) {
	// Reconnect fast after intake is killed: the default backoff grows to
	// two minutes, which would measure gRPC rather than feedloop.
	return grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: 2 * time.Second,
		}))
}

// drive sends every item and returns when all are accepted (or ctx ends).
func (d *driver) drive(ctx context.Context) {
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range d.concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				n := int(next.Add(1)) - 1
				if n >= d.items {
					return
				}
				if d.rate > 0 {
					due := start.Add(time.Duration(float64(n) / d.rate * float64(time.Second)))
					if !sleep(ctx, time.Until(due)) {
						return
					}
				}
				if d.poisonEvery > 0 && n%d.poisonEvery == d.poisonEvery/2 {
					d.poison(ctx, n/d.poisonEvery)
				}
				d.submit(ctx, n)
			}
		})
	}
	wg.Wait()
}

// retryable reports whether a Submit error means "not taken, try again":
// intake down or restarting (Unavailable, connection refused), or NATS or
// Redis down behind it (intake answers Unavailable).
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted:
		return true
	}
	return false
}

// rateLimited returns the delay intake asks for when err is its rate
// limit (ResourceExhausted with RetryInfo). A ResourceExhausted without
// the detail (a message over the size limit) is not retried.
func rateLimited(err error) (time.Duration, bool) {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.ResourceExhausted {
		return 0, false
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			return ri.GetRetryDelay().AsDuration(), true
		}
	}
	return 0, false
}

// submit sends item n until intake accepts it, always under the same
// (source, external_id): a retry of an item intake had is answered
// duplicate, never taken twice.
func (d *driver) submit(ctx context.Context, n int) {
	fb := item(d.run, n)
	wait := 50 * time.Millisecond
	for ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cctx = metadata.AppendToOutgoingContext(cctx, "authorization", "Bearer "+d.apiKey)
		res, err := d.intake.Submit(cctx, &feedloopv1.SubmitRequest{Feedback: fb})
		cancel()
		if err == nil {
			d.mu.Lock()
			d.ids[res.GetFeedbackId()] = n
			d.mu.Unlock()
			d.submitted.Add(1)
			if res.GetDuplicate() {
				d.duplicates.Add(1)
			}
			return
		}
		if delay, ok := rateLimited(err); ok {
			d.rateLimited.Add(1)
			if !sleep(ctx, delay) {
				return
			}
			continue
		}
		if !retryable(err) {
			d.failures.Add(1)
			err = fmt.Errorf("submit item %d: %w", n, err)
			d.firstErr.CompareAndSwap(nil, &err)
			return
		}
		d.retries.Add(1)
		if !sleep(ctx, wait) {
			return
		}
		wait = min(2*wait, time.Second)
	}
}

// poisonData is not a protobuf message: 0xff starts a field with wire type
// 7, which does not exist, so every decoder rejects it.
var poisonData = []byte{0xff, 0xff, 0xff, 0xff, 'p', 'o', 'i', 's', 'o', 'n'}

// poison publishes the k-th poison message to feedback.submit.chaos-poison,
// connected as that source's NATS user (it may publish there and nowhere
// else), until the stream acknowledges it (NATS may be restarting); its
// Nats-Msg-Id makes a retry after a lost ack harmless.
func (d *driver) poison(ctx context.Context, k int) {
	msg := &nats.Msg{
		Subject: bus.SubmitSubject(PoisonSource),
		Data:    poisonData,
		Header:  nats.Header{},
	}
	msg.Header.Set(nats.MsgIdHdr, "chaos-poison-"+d.run+"-"+strconv.Itoa(k))
	msg.Header.Set(HeaderPoison, strconv.Itoa(k))
	wait := 50 * time.Millisecond
	for ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := d.poisonJS.PublishMsg(cctx, msg)
		cancel()
		if err == nil {
			d.poisonSent.Add(1)
			return
		}
		if !sleep(ctx, wait) {
			return
		}
		wait = min(2*wait, time.Second)
	}
}

func (d *driver) err() error {
	if p := d.firstErr.Load(); p != nil {
		return *p
	}
	return nil
}

// feedbackIDs returns the ids intake gave the accepted items.
func (d *driver) feedbackIDs() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.ids)
}

// sleep waits for d or ctx; false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
