// Package bus is feedloop's JetStream plumbing: stream set-up, a typed event
// publisher that propagates trace context, and a consumer runner whose
// middleware decides each message's fate (ack, retry with backoff, or dead letter).
package bus

import "strings"

// This file is the one table of the bus's names: streams, subjects,
// consumers and the sources the services themselves submit as. The
// services, the NATS permissions (pkg/natsauth), the deploy checks and the
// bench import them from here, so a rename is one edit and cannot leave a
// permission behind.

// Stream names.
const (
	// StreamFeedback is the system of record: every lifecycle event.
	StreamFeedback = "FEEDBACK"
	// StreamSubmit is the work queue of submissions from company systems.
	StreamSubmit = "FEEDBACK_SUBMIT"
	// StreamDLQ holds dead letters from every consumer.
	StreamDLQ = "FEEDBACK_DLQ"
)

// Subjects of the FEEDBACK stream and its neighbours.
const (
	SubjectReceived   = "feedback.received"
	SubjectClassified = "feedback.classified"
	SubjectNotified   = "feedback.notified"
	SubjectClosed     = "feedback.closed"
	subjectRouted     = "feedback.routed."
	subjectUpdated    = "feedback.updated."
	subjectEscalated  = "feedback.escalated."
	subjectSubmit     = "feedback.submit."
	subjectDLQ        = "feedback.dlq."
	// AllFeedback is every subject of the feedback.* space; as a filter
	// on FEEDBACK it is the whole stream (the router's projector).
	AllFeedback = "feedback.>"
)

// FeedbackSubjects are the FEEDBACK stream's subjects, listed explicitly
// because JetStream streams may not overlap (submit and dlq live elsewhere).
var FeedbackSubjects = []string{
	SubjectReceived,
	SubjectClassified,
	subjectRouted + "*",
	subjectUpdated + "*",
	subjectEscalated + "*",
	SubjectNotified,
	SubjectClosed,
}

// RoutedSubject is where a team's routed items are published.
func RoutedSubject(team string) string { return subjectRouted + team }

// UpdatedSubject is where a team's lifecycle transitions are published.
func UpdatedSubject(team string) string { return subjectUpdated + team }

// EscalatedSubject is where a team's SLA escalations are published.
func EscalatedSubject(team string) string { return subjectEscalated + team }

// SubmitSubject is where a company system publishes feedback from source.
func SubmitSubject(source string) string { return subjectSubmit + source }

// DLQSubject is where consumer's dead letters go.
func DLQSubject(consumer string) string { return subjectDLQ + consumer }

// AllRouted, AllUpdated, AllEscalated and AllSubmit are filter subjects.
const (
	AllRouted    = subjectRouted + "*"
	AllUpdated   = subjectUpdated + "*"
	AllEscalated = subjectEscalated + "*"
	AllSubmit    = subjectSubmit + "*"
	AllDLQ       = subjectDLQ + "*"
)

// Consumer names. The durables are shared by a service's replicas and
// name its dead-letter subject (DLQSubject); the replay consumers are
// created by a rebuild (package rebuild) and deleted after it.
const (
	// ConsumerIntake reads AllSubmit from StreamSubmit.
	ConsumerIntake = "intake"
	// ConsumerClassifier reads SubjectReceived.
	ConsumerClassifier = "classifier"
	// ConsumerRouter reads SubjectClassified and routes it.
	ConsumerRouter = "router"
	// ConsumerRouterProjector folds every event (AllFeedback) into the
	// router's read model.
	ConsumerRouterProjector = "router-projector"
	// ConsumerNotifier reads the lifecycle events customers and teams
	// are told about.
	ConsumerNotifier = "notifier"
	// ConsumerIntakeReplay rebuilds intake's idempotency keys from
	// SubjectReceived.
	ConsumerIntakeReplay = "intake-rebuild"
	// ConsumerNotifierReplay rebuilds the notifier's sent records from
	// SubjectNotified.
	ConsumerNotifierReplay = "notifier-rebuild"
	// consumerWatchPrefix starts the name of a team's watch consumer.
	consumerWatchPrefix = "watch-"
)

// WatchConsumer is the durable consumer the router's TeamService.Watch
// keeps for team's routed items (RoutedSubject) while no one watches.
func WatchConsumer(team string) string { return consumerWatchPrefix + team }

// SourceSurvey is the source the router submits survey answers as (made on
// the customer's status page): it publishes on SubmitSubject(SourceSurvey).
const SourceSurvey = "survey"

// LastToken returns the last dot-separated token of a subject: the team of
// feedback.routed.<team>, the source of feedback.submit.<source>.
func LastToken(subject string) string {
	return subject[strings.LastIndexByte(subject, '.')+1:]
}

// ValidToken reports whether s can be used as one subject token (a team or
// source name): non-empty, at most 64 bytes of [a-z0-9_-].
func ValidToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
