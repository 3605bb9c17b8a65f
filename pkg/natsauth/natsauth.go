// Package natsauth is who may do what on feedloop's NATS: one NKey user per
// service, per company source system, for the read-only tools and for
// operators, each with the publish and subscribe permissions it needs and
// nothing more. It derives the permissions from the subjects and durable
// consumers of package bus, keeps the users' seeds in files and renders the
// server's authorization block (public keys only).
package natsauth

import (
	"errors"
	"fmt"
	"slices"

	"github.com/feedloop/feedloop/pkg/bus"
)

// User names. A source system's user is SourceUser(source).
const (
	Intake     = "intake"
	Classifier = "classifier"
	Router     = "router"
	Notifier   = "notifier"
	// Tools reads the routed events (`feedloop classifier corrections`).
	Tools = "tools"
	// Admin may do anything: for operators and `feedloop dev`'s own
	// connection, never for a service.
	Admin = "admin"
)

// Services are the users of the four services.
var Services = []string{Intake, Classifier, Router, Notifier}

// SourceUser is the user of a company source system.
func SourceUser(source string) string { return "source-" + source }

// InboxPrefix is user's inbox prefix: a client sets it
// (nats.CustomInboxPrefix) and may subscribe under it only, so no one
// reads another user's replies (JetStream acks, API answers, pulled
// messages).
func InboxPrefix(user string) string { return "_INBOX." + user }

// Permissions are the subjects a user may publish to and subscribe to;
// everything else is denied.
type Permissions struct {
	Publish   []string
	Subscribe []string
}

// Spec is what the permissions depend on.
type Spec struct {
	// Sources are the company systems that publish on
	// feedback.submit.<source>, one user each.
	Sources []string
	// Teams, when given, limit the router's watch-<team> consumers to
	// these teams; empty allows a watch consumer for any team (the routes
	// file may add teams at run time).
	Teams []string
	// ManageStreams lets the services create and update the three streams
	// at start (bus.EnsureStreams). Without it they only read stream info
	// and an operator (Admin) creates the streams.
	ManageStreams bool
}

// Validate checks the names are subject tokens and unique.
func (s Spec) Validate() error {
	var errs []error
	check := func(kind string, names []string) {
		seen := map[string]bool{}
		for _, n := range names {
			switch {
			case !bus.ValidToken(n):
				errs = append(errs, fmt.Errorf("%s %q: must be 1 to 64 of a-z, 0-9, _ and -", kind, n))
			case seen[n]:
				errs = append(errs, fmt.Errorf("%s %q: given twice", kind, n))
			}
			seen[n] = true
		}
	}
	check("source", s.Sources)
	check("team", s.Teams)
	return errors.Join(errs...)
}

// Users returns every user name of s: services, tools, admin, sources.
func (s Spec) Users() []string {
	names := append(slices.Clone(Services), Tools, Admin)
	for _, src := range s.Sources {
		names = append(names, SourceUser(src))
	}
	return names
}

// Permissions returns the permissions of user, false for a user s does not
// define.
func (s Spec) Permissions(user string) (Permissions, bool) {
	p := &perms{user: user}
	switch user {
	case Intake:
		s.streams(p)
		p.pub(bus.SubjectReceived)
		p.consumer(bus.StreamSubmit, bus.ConsumerIntake, bus.AllSubmit)
		p.deadLetters(bus.ConsumerIntake)
		p.replayConsumer(bus.StreamFeedback, bus.ConsumerIntakeReplay, bus.SubjectReceived)
	case Classifier:
		s.streams(p)
		p.pub(bus.SubjectClassified)
		p.consumer(bus.StreamFeedback, bus.ConsumerClassifier, bus.SubjectReceived)
		p.deadLetters(bus.ConsumerClassifier)
	case Router:
		s.streams(p)
		p.pub(bus.AllRouted, bus.AllUpdated, bus.AllEscalated, bus.SubjectClosed, bus.SubmitSubject(bus.SourceSurvey))
		p.consumer(bus.StreamFeedback, bus.ConsumerRouter, bus.SubjectClassified)
		p.deadLetters(bus.ConsumerRouter)
		p.consumer(bus.StreamFeedback, bus.ConsumerRouterProjector, bus.AllFeedback)
		p.deadLetters(bus.ConsumerRouterProjector)
		// A live team watch reads a team's routed subject with an ordered
		// consumer (random name, no ack), held to the known teams too.
		if len(s.Teams) == 0 {
			p.consumer(bus.StreamFeedback, "*", bus.AllRouted)
			p.orderedConsumers(bus.StreamFeedback, bus.AllRouted)
		}
		for _, team := range s.Teams {
			p.consumer(bus.StreamFeedback, bus.WatchConsumer(team), bus.RoutedSubject(team))
			p.orderedConsumers(bus.StreamFeedback, bus.RoutedSubject(team))
		}
		// Rebuild replays the stream with an ordered consumer, whose
		// names are random and whose messages need no ack.
		p.orderedConsumers(bus.StreamFeedback, "")
	case Notifier:
		s.streams(p)
		p.pub(bus.SubjectNotified)
		// Several filters: the create subject carries no filter.
		p.consumer(bus.StreamFeedback, bus.ConsumerNotifier, "")
		p.deadLetters(bus.ConsumerNotifier)
		p.replayConsumer(bus.StreamFeedback, bus.ConsumerNotifierReplay, bus.SubjectNotified)
	case Tools:
		p.pub(jsAPI + "STREAM.INFO." + bus.StreamFeedback)
		p.orderedConsumers(bus.StreamFeedback, bus.AllRouted)
	case Admin:
		p.pub(">")
		p.Subscribe = []string{">"}
		return p.Permissions, true
	default:
		src, ok := sourceOf(user, s.Sources)
		if !ok {
			return Permissions{}, false
		}
		p.pub(bus.SubmitSubject(src))
	}
	p.Subscribe = append(p.Subscribe, InboxPrefix(user)+".>")
	return p.Permissions, true
}

func sourceOf(user string, sources []string) (string, bool) {
	for _, src := range sources {
		if SourceUser(src) == user {
			return src, true
		}
	}
	return "", false
}

// jsAPI is the JetStream API prefix.
const jsAPI = "$JS.API."

type perms struct {
	Permissions
	user string
}

// pub allows subjects, each listed once however many grants name it.
func (p *perms) pub(subjects ...string) {
	for _, s := range subjects {
		if !slices.Contains(p.Publish, s) {
			p.Publish = append(p.Publish, s)
		}
	}
}

// streams allows what bus.EnsureStreams (or only a check of the streams) needs.
func (s Spec) streams(p *perms) {
	for _, st := range []string{bus.StreamFeedback, bus.StreamSubmit, bus.StreamDLQ} {
		p.pub(jsAPI + "STREAM.INFO." + st)
		if s.ManageStreams {
			p.pub(jsAPI+"STREAM.CREATE."+st, jsAPI+"STREAM.UPDATE."+st)
		}
	}
}

// consumer allows creating the durable consumer on stream with one filter
// subject (empty: several, then the create subject names none), reading
// its info, pulling and acknowledging its messages. The filter in the
// create subject is what the server holds the consumer's filter to.
func (p *perms) consumer(stream, durable, filter string) {
	create := jsAPI + "CONSUMER.CREATE." + stream + "." + durable
	if filter != "" {
		create += "." + filter
	}
	p.pub(create,
		jsAPI+"CONSUMER.INFO."+stream+"."+durable,
		jsAPI+"CONSUMER.MSG.NEXT."+stream+"."+durable,
		// Ack replies: $JS.ACK.<stream>.<consumer>.… and the v2 form
		// $JS.ACK.<domain>.<account hash>.<stream>.<consumer>.…
		"$JS.ACK."+stream+"."+durable+".>",
		"$JS.ACK.*.*."+stream+"."+durable+".>")
}

// orderedConsumers allows ordered (ephemeral, unacknowledged) consumers on
// stream with filter (empty: the whole stream), and stream info.
func (p *perms) orderedConsumers(stream, filter string) {
	create := jsAPI + "CONSUMER.CREATE." + stream + ".*"
	if filter != "" {
		create += "." + filter
	}
	p.pub(create, jsAPI+"CONSUMER.INFO."+stream+".*", jsAPI+"CONSUMER.MSG.NEXT."+stream+".*")
	if !slices.Contains(p.Publish, jsAPI+"STREAM.INFO."+stream) {
		p.pub(jsAPI + "STREAM.INFO." + stream)
	}
}

// replayConsumer allows the named consumer a rebuild replays filter with
// (rebuild.Replay): create, info, pull, and delete it afterwards. Its
// messages need no ack.
func (p *perms) replayConsumer(stream, name, filter string) {
	p.pub(jsAPI+"CONSUMER.CREATE."+stream+"."+name+"."+filter,
		jsAPI+"CONSUMER.INFO."+stream+"."+name,
		jsAPI+"CONSUMER.MSG.NEXT."+stream+"."+name,
		jsAPI+"CONSUMER.DELETE."+stream+"."+name)
}

func (p *perms) deadLetters(durable string) { p.pub(bus.DLQSubject(durable)) }
