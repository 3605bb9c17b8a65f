package testkit

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/feedloop/feedloop/pkg/lifecycle"
)

// The shapes every service's config test shares: its defaults, a load
// from given variables, and the errors a load names.

// ConfigDefaults checks that a service's defaults have one source: def (its
// DefaultConfig) equals what load (its LoadConfig) reads from an
// environment holding none of T's variables, and validates. required are
// the variables a deployment must set because no default fits (a secret's
// file): then both Validate and load must fail naming each, and nothing
// else may be wrong.
func ConfigDefaults[T interface{ Validate() error }](t *testing.T, def T, load func() (T, error), required ...string) {
	t.Helper()
	for _, k := range lifecycle.EnvVars[T]() {
		t.Setenv(k, "") // restored after the test
		if err := os.Unsetenv(k); err != nil {
			t.Fatal(err)
		}
	}
	got, err := load()
	onlyRequired(t, "LoadConfig() with an empty environment", err, required)
	onlyRequired(t, "DefaultConfig().Validate()", def.Validate(), required)
	if !reflect.DeepEqual(got, def) {
		t.Errorf("LoadConfig() with an empty environment differs from DefaultConfig():\n got %+v\nwant %+v", got, def)
	}
}

// onlyRequired fails t unless err names exactly the required variables
// (one line of errors.Join each), or is nil when none is.
func onlyRequired(t *testing.T, what string, err error, required []string) {
	t.Helper()
	if len(required) == 0 {
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
		return
	}
	if err == nil {
		t.Errorf("%s: no error, want one requiring %q", what, required)
		return
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(required) {
		t.Errorf("%s = %v, want only %q required", what, err, required)
	}
	for _, r := range required {
		if !strings.Contains(err.Error(), r+":") {
			t.Errorf("%s = %v, want it to require %s", what, err, r)
		}
	}
}

// LoadConfig sets vars for the test and returns what load reads; it fails
// t on an error.
func LoadConfig[T any](t *testing.T, load func() (T, error), vars map[string]string) T {
	t.Helper()
	setenv(t, vars)
	cfg, err := load()
	if err != nil {
		t.Fatalf("LoadConfig with %v: %v", vars, err)
	}
	return cfg
}

// ConfigErrors sets vars for the test, loads, and fails t unless load
// returns an error containing each of want.
func ConfigErrors[T any](t *testing.T, load func() (T, error), vars map[string]string, want ...string) {
	t.Helper()
	setenv(t, vars)
	_, err := load()
	ErrorContains(t, err, want...)
}

// ErrorContains fails t unless err contains each of want.
func ErrorContains(t testing.TB, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

func setenv(t *testing.T, vars map[string]string) {
	for k, v := range vars {
		t.Setenv(k, v)
	}
}
