package lifecycle

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestCommonFromEnvValidates(t *testing.T) {
	t.Setenv("NATS_URL", "http://x")
	t.Setenv("NATS_STREAM_REPLICAS", "2")
	t.Setenv("LOG_LEVEL", "loud")
	c, err := LoadEnv[Common]()
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, v := range []string{"NATS_URL", "NATS_STREAM_REPLICAS", "LOG_LEVEL"} {
		if !strings.Contains(err.Error(), v) {
			t.Errorf("error does not name %s: %v", v, err)
		}
	}
	if strings.Contains(err.Error(), "REDIS_URL") {
		t.Errorf("valid default REDIS_URL reported: %v", err)
	}
}

func TestBadDurationNamesVariable(t *testing.T) {
	t.Setenv("NATS_DUPLICATE_WINDOW", "ten minutes")
	if _, err := LoadEnv[Common](); err == nil || !strings.Contains(err.Error(), "NATS_DUPLICATE_WINDOW") {
		t.Fatalf("err = %v, want it to name NATS_DUPLICATE_WINDOW", err)
	}
}

func TestCleanupsRunLastFirst(t *testing.T) {
	var order []int
	var c Cleanups
	for i := 1; i <= 3; i++ {
		c.Add(func() { order = append(order, i) })
	}
	c.Run()
	if len(order) != 3 || order[0] != 3 || order[2] != 1 {
		t.Fatalf("order = %v, want [3 2 1]", order)
	}
}

// A wrong URL is named by its scheme only: the rest may hold a password.
func TestURLErrorsHideCredentials(t *testing.T) {
	c := Common{NATSURL: "http://u:natspw-SECRET@n:4222", RedisURL: "http://:redispw-SECRET@r:6379", StreamReplicas: 1, DuplicateWindow: time.Minute, LogLevel: "info"}
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "NATS_URL") || !strings.Contains(err.Error(), "REDIS_URL") {
		t.Fatalf("want both URLs refused, got %v", err)
	}
	if strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("the error shows a password: %v", err)
	}
}

// defaultsProbe has a tag of each kind Defaults must honour.
type defaultsProbe struct {
	Common
	Addr   string        `env:"PROBE_ADDR" envDefault:":7001"`
	Count  int           `env:"PROBE_COUNT" envDefault:"4"`
	Every  time.Duration `env:"PROBE_EVERY" envDefault:"5s"`
	List   []string      `env:"PROBE_LIST" envDefault:"a,b" envSeparator:","`
	NoTag  string        `env:"PROBE_NO_DEFAULT"`
	GoOnly func()        `env:"-"`
}

func TestDefaultsFillTagsAndIgnoreTheEnvironment(t *testing.T) {
	t.Setenv("PROBE_ADDR", ":9999")
	t.Setenv("PROBE_COUNT", "not a number") // would fail if read
	t.Setenv("PROBE_NO_DEFAULT", "set")
	t.Setenv("NATS_URL", "nats://elsewhere:4222")
	t.Setenv("METRICS_ADDR", "")
	got, err := Defaults[defaultsProbe]()
	if err != nil {
		t.Fatal(err)
	}
	if got.Addr != ":7001" || got.Count != 4 || got.Every != 5*time.Second || strings.Join(got.List, ",") != "a,b" || got.NoTag != "" {
		t.Errorf("Defaults = %+v", got)
	}
	if got.NATSURL != "nats://127.0.0.1:4222" || got.MetricsAddr != ":9464" || got.DuplicateWindow != 10*time.Minute || got.LogLevel != "info" {
		t.Errorf("Defaults Common = %+v", got.Common)
	}
	if err := got.Common.Validate(); err != nil {
		t.Errorf("default Common does not validate: %v", err)
	}
	// LoadEnv reads what Defaults ignored.
	if _, err := LoadEnv[defaultsProbe](); err == nil || !strings.Contains(err.Error(), "PROBE_COUNT") {
		t.Errorf("LoadEnv err = %v, want it to name PROBE_COUNT", err)
	}
}

func TestMustDefaultsPanicsOnABadTag(t *testing.T) {
	type bad struct {
		N int `env:"PROBE_N" envDefault:"four"`
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "PROBE_N") {
			t.Errorf("recover() = %v, want a panic naming PROBE_N", r)
		}
	}()
	MustDefaults[bad]()
}

func TestEnvVars(t *testing.T) {
	got := strings.Join(EnvVars[defaultsProbe](), " ")
	for _, want := range []string{"PROBE_ADDR", "PROBE_NO_DEFAULT", "NATS_URL", "METRICS_ADDR", "TLS_CLIENT_CA_FILE"} {
		if !strings.Contains(got, want) {
			t.Errorf("EnvVars lacks %s: %s", want, got)
		}
	}
	if strings.Contains(got, "-") {
		t.Errorf("EnvVars lists a Go-only field: %s", got)
	}
}
