package lifecycle

import (
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
