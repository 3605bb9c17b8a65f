package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Binaries the harness builds (once per run, without -race) and runs.
var servicePkgs = map[string]string{
	"intake":     "./services/intake/cmd/intake",
	"classifier": "./services/classifier/cmd/classifier",
	"router":     "./services/router/cmd/router",
	"notifier":   "./services/notifier/cmd/notifier",
	// The real nats-server, from the module the workspace already requires.
	"nats-server": "github.com/nats-io/nats-server/v2",
}

// buildAll builds every binary into dir with one `go build` run from the
// repository root, so the build cache and the workspace's versions apply.
func buildAll(ctx context.Context, root, dir string) error {
	args := []string{"build", "-o", dir + string(os.PathSeparator)}
	for _, name := range []string{"intake", "classifier", "router", "notifier", "nats-server"} {
		args = append(args, servicePkgs[name])
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("chaos: go build: %w\n%s", err, out)
	}
	return nil
}

// findRoot returns the directory holding go.work, from dir upwards.
func findRoot(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("chaos: no go.work in %s or above: run from the feedloop repository", dir)
		}
		d = parent
	}
}

// proc is one OS process the harness runs and may kill and start again
// with the same binary, arguments and environment.
type proc struct {
	name string
	path string
	args []string
	env  []string
	log  string // file receiving stdout and stderr, appended across restarts

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	restarts int
}

func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("chaos: %s log: %w", p.name, err)
	}
	fmt.Fprintf(f, "--- chaos: start %s at %s\n", p.name, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group: a Ctrl-C of the harness must not reach the
	// services before the harness stops them.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return fmt.Errorf("chaos: start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = f.Close()
		close(done)
	}()
	p.cmd, p.done = cmd, done
	return nil
}

// alive reports whether the process is running.
func (p *proc) alive() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// signal sends sig and waits up to wait for the process to end; after a
// SIGTERM that is not enough, SIGKILL follows.
func (p *proc) signal(sig syscall.Signal, wait time.Duration) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		return
	case <-time.After(wait):
	}
	_ = cmd.Process.Kill()
	<-done
}

// kill ends the process with SIGKILL: no drain, no ack, no cleanup.
func (p *proc) kill() { p.signal(syscall.SIGKILL, 10*time.Second) }

// stop ends the process gracefully (SIGTERM, then SIGKILL after wait).
func (p *proc) stop(wait time.Duration) { p.signal(syscall.SIGTERM, wait) }

// exitedEarly says whether the process ended by itself (not killed by the
// harness), with its exit state.
func (p *proc) state() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.ProcessState == nil {
		return "running"
	}
	return p.cmd.ProcessState.String()
}

// freePort returns a TCP port free on 127.0.0.1 now, outside the kernel's
// ephemeral range. The services get fixed ports so a restarted one listens
// where its clients reconnect to; a port from the ephemeral range (what
// listening on :0 hands out) could be taken between this check and the
// service's bind by any outgoing connection or port-0 listener on the
// machine, which a port below the range never is.
func freePort() (int, error) {
	lo, _ := ephemeralRange()
	for range 200 {
		port := minPort + rand.IntN(lo-minPort)
		l, err := net.Listen("tcp", hostPort(port))
		if err != nil {
			continue // taken by another explicit listener: try another
		}
		_ = l.Close()
		return port, nil
	}
	return 0, fmt.Errorf("chaos: no free port in %d-%d", minPort, lo-1)
}

// minPort is the lowest port freePort hands out: above the well-known and
// most registered service ports.
const minPort = 20000

// ephemeralRange is the kernel's range for ports it assigns by itself
// (Linux: net.ipv4.ip_local_port_range), 32768-60999 when it cannot be read.
func ephemeralRange() (lo, hi int) {
	lo, hi = 32768, 60999
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	var l, h int
	if n, _ := fmt.Sscan(string(b), &l, &h); n == 2 && l > minPort+1000 && h >= l {
		return l, h
	}
	return lo, hi
}

func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// waitDial waits until addr accepts TCP connections.
func waitDial(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("chaos: %s not accepting connections after %s: %w", addr, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

var errNoRedis = errors.New("chaos: redis-server not on PATH (apt-get install redis-server; CI installs it)")
