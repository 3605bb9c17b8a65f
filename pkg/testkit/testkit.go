// Package testkit starts real infrastructure for tests: an embedded
// nats-server with JetStream and a real redis-server, each on a free port
// and torn down by t.Cleanup.
package testkit

import (
	"context"
	"fmt"
	"net"
	neturl "net/url"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/natsauth"
	"github.com/feedloop/feedloop/pkg/natsembed"
)

// NATS starts an embedded nats-server with JetStream in a temp dir and
// returns its client URL.
func NATS(t testing.TB) string {
	t.Helper()
	ns, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("testkit: start nats: %v", err)
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns.ClientURL()
}

// Bus starts NATS, creates the feedloop streams and returns a connected Bus.
func Bus(t testing.TB) *bus.Bus {
	t.Helper()
	return BusAt(t, NATS(t))
}

// BusAt connects a Bus to url and ensures the streams exist.
func BusAt(t testing.TB, url string) *bus.Bus {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("testkit: connect nats: %v", err)
	}
	t.Cleanup(nc.Close)
	b, err := bus.New(nc)
	if err != nil {
		t.Fatalf("testkit: bus: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.EnsureStreams(ctx, bus.StreamsConfig{}); err != nil {
		t.Fatalf("testkit: streams: %v", err)
	}
	return b
}

// Redis starts a real redis-server on a free port (no persistence) and
// returns its URL. redis-server must be on PATH; .ci/run installs it.
func Redis(t testing.TB) string {
	t.Helper()
	return redisServer(t, "")
}

// RedisWithPassword is Redis requiring password (requirepass); the URL
// carries it.
func RedisWithPassword(t testing.TB, password string) string {
	t.Helper()
	return redisServer(t, password)
}

func redisServer(t testing.TB, password string) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("testkit: redis-server not on PATH (apt-get install redis-server): %v", err)
	}
	port := FreePort(t)
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir(),
		"--loglevel", "warning"}
	if password != "" {
		args = append(args, "--requirepass", password)
	}
	cmd := exec.Command(path, args...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("testkit: start redis-server: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	url := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	if password != "" {
		url = fmt.Sprintf("redis://:%s@127.0.0.1:%d/0", neturl.QueryEscape(password), port)
	}
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), Password: password})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := rdb.Ping(context.Background()).Err(); err == nil {
			return url
		} else if time.Now().After(deadline) {
			t.Fatalf("testkit: redis-server not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// RedisClient starts Redis and returns a client closed at cleanup.
func RedisClient(t testing.TB) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(Redis(t))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// FreePort returns a TCP port free on 127.0.0.1 at the time of the call.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testkit: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// SecureNATS starts an embedded nats-server that lets in only the users of
// spec, generated (natsauth.Generate) in a temp dir, and returns its URL
// and the users.
func SecureNATS(t testing.TB, spec natsauth.Spec) (string, natsauth.Users) {
	t.Helper()
	users, err := natsauth.Generate(t.TempDir(), spec)
	if err != nil {
		t.Fatalf("testkit: nats users: %v", err)
	}
	ns, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir(), Users: users.NkeyUsers()})
	if err != nil {
		t.Fatalf("testkit: start nats: %v", err)
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns.ClientURL(), users
}

// ConnectAs connects to url as the user named name of users, closed at
// cleanup.
func ConnectAs(t testing.TB, url string, users natsauth.Users, name string) *nats.Conn {
	t.Helper()
	u, ok := users.Get(name)
	if !ok {
		t.Fatalf("testkit: no NATS user %q", name)
	}
	opts, err := u.Options()
	if err != nil {
		t.Fatalf("testkit: %s: %v", name, err)
	}
	// Refusals are what some tests provoke: they read nc.LastError, so
	// no need to print them.
	quiet := nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})
	nc, err := nats.Connect(url, append(opts, nats.Name(name), quiet)...)
	if err != nil {
		t.Fatalf("testkit: connect as %s: %v", name, err)
	}
	t.Cleanup(nc.Close)
	return nc
}
