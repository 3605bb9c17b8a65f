package manifests

import (
	"errors"
	"strings"

	"github.com/caarlos0/env/v11"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/lifecycle"
	"github.com/feedloop/feedloop/services/classifier"
	"github.com/feedloop/feedloop/services/console"
	"github.com/feedloop/feedloop/services/intake"
	"github.com/feedloop/feedloop/services/notifier"
	"github.com/feedloop/feedloop/services/router"
)

// A service is what the checks know of one feedloop binary: the variables
// it reads (from its Config's env tags, so a renamed variable shows up
// here without an edit), the ones a cluster must set, and its validation.
type service struct {
	name string
	// vars are every variable the Config reads.
	vars map[string]bool
	// required must be set explicitly: their defaults point at localhost or
	// leave a feature off that a deployment needs.
	required []string
	// validate parses env the way the binary does and validates it.
	validate func(env map[string]string) error
	// consumers are the service's durable JetStream consumers by stream.
	consumers map[string][]string
}

// commonRequired: NATS and Redis default to 127.0.0.1, and the replica
// count must match the NATS cluster, so no deployment may rely on defaults.
var commonRequired = []string{"NATS_URL", "REDIS_URL", "NATS_STREAM_REPLICAS"}

var services = map[string]service{
	"intake": {
		name:      "intake",
		vars:      envVars[intake.Config](),
		required:  commonRequired,
		validate:  validator[intake.Config](),
		consumers: map[string][]string{bus.StreamSubmit: {bus.ConsumerIntake}},
	},
	"classifier": {
		name:      "classifier",
		vars:      envVars[classifier.Config](),
		required:  append([]string{"CLASSIFIER_RULES_FILE"}, commonRequired...),
		validate:  validator[classifier.Config](),
		consumers: map[string][]string{bus.StreamFeedback: {bus.ConsumerClassifier}},
	},
	"router": {
		name: "router",
		vars: envVars[router.Config](),
		// Without a tokens file every team API call is refused.
		required:  append([]string{"ROUTER_ROUTES_FILE", "ROUTER_TEAM_TOKENS_FILE"}, commonRequired...),
		validate:  validator[router.Config](),
		consumers: map[string][]string{bus.StreamFeedback: {bus.ConsumerRouter, bus.ConsumerRouterProjector}},
	},
	"notifier": {
		name: "notifier",
		vars: envVars[notifier.Config](),
		// Customers' messages link to their status page.
		required:  append([]string{"NOTIFIER_TEMPLATES_DIR", "NOTIFIER_STATUS_URL"}, commonRequired...),
		validate:  validator[notifier.Config](),
		consumers: map[string][]string{bus.StreamFeedback: {bus.ConsumerNotifier}},
	},
	// No NATS, no Redis, no consumer: the router's team API is all it uses.
	"console": {
		name: "console",
		vars: envVars[console.Config](),
		// The default team API address and templates directory fit no
		// particular cluster; without a key file every replica would seal
		// cookies with its own random key.
		required: []string{"CONSOLE_TEAM_API_ADDR", "CONSOLE_TEMPLATES_DIR", "CONSOLE_SESSION_KEY_FILE", "CONSOLE_PUBLIC_URL"},
		validate: validator[console.Config](),
	},
}

// runtimeVars are read by the Go runtime or the OpenTelemetry SDK, not by
// a Config.
func runtimeVar(name string) bool {
	return name == "GOMEMLIMIT" || name == "GOMAXPROCS" || name == "GOGC" ||
		strings.HasPrefix(name, "OTEL_")
}

// envVars is the set of variables T reads.
func envVars[T any]() map[string]bool {
	out := map[string]bool{}
	for _, k := range lifecycle.EnvVars[T]() {
		out[k] = true
	}
	return out
}

// validator parses env into T like lifecycle.Load does, without touching
// the process environment, and validates it.
func validator[T interface{ Validate() error }]() func(map[string]string) error {
	return func(m map[string]string) error {
		cfg, err := env.ParseAsWithOptions[T](env.Options{Environment: m})
		if err != nil {
			return err
		}
		return cfg.Validate()
	}
}

// errList collects check failures.
type errList []error

func (l *errList) add(err error) {
	if err != nil {
		*l = append(*l, err)
	}
}

func (l errList) join() error { return errors.Join(l...) }
