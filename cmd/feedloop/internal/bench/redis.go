package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a redis-server the bench started for the pipeline: the
// services run on Redis in production, and the in-process stand-in
// (miniredis: Go, a Lua interpreter in Go, one lock) costs several times
// what redis-server does per command, so it would measure the stand-in.
type redisServer struct {
	cmd *exec.Cmd
	dir string
	url string
}

// errNoRedisServer: the bench falls back to the in-process Redis.
var errNoRedisServer = errors.New("bench: redis-server not on PATH")

// startRedisServer runs redis-server without persistence on a free
// loopback port.
func startRedisServer(ctx context.Context) (*redisServer, error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errNoRedisServer
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: free port for redis-server: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	r := &redisServer{url: fmt.Sprintf("redis://127.0.0.1:%d/0", port)}
	if r.dir, err = os.MkdirTemp("", "feedloop-bench-redis-"); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	r.cmd = exec.Command(path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--loglevel", "warning")
	if err := r.cmd.Start(); err != nil {
		_ = os.RemoveAll(r.dir)
		return nil, fmt.Errorf("bench: start redis-server: %w", err)
	}
	opt, _ := redis.ParseURL(r.url)
	c := redis.NewClient(opt)
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.Ping(ctx).Err()
		if err == nil {
			return r, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.close()
			return nil, fmt.Errorf("bench: redis-server not ready: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// peakRSSMB is redis-server's peak resident set in MiB (0 if unknown).
func (r *redisServer) peakRSSMB() float64 {
	return procPeakRSSMB(fmt.Sprintf("/proc/%d/status", r.cmd.Process.Pid))
}

func (r *redisServer) close() {
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	_ = os.RemoveAll(r.dir)
}
