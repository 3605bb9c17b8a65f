package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A process the harness runs listens either on port 0 (nothing dials it:
// it cannot lose a race for its port) or, when a client must know the
// port (nats-server, redis-server, intake's gRPC), on a port the harness
// picks. That port is free when picked but may be taken by another process
// before the one it is for binds it; so the harness starts such a process
// with launch (first start: on another port) or relaunch (after a fault: the
// same port, its clients reconnect there), and counts it started only once
// the process itself listens on the port.

// errPortTaken: the process ended because another one holds its port.
var errPortTaken = errors.New("port taken by another process")

// errEnded: the process ended at start for another reason.
var errEnded = errors.New("ended at start")

// launchTries bounds the ports a first start tries.
const launchTries = 5

// launch starts p for the first time on a port from h.pickPort and waits
// until it listens there; when another process took that port in the
// meantime, p is started again on another.
func (h *harness) launch(ctx context.Context, p *proc, timeout time.Duration) error {
	for try := 1; ; try++ {
		port, err := h.pickPort()
		if err != nil {
			return err
		}
		p.port = port
		if err := p.withPort(port); err != nil {
			return err
		}
		err = p.startListening(ctx, timeout)
		if !errors.Is(err, errPortTaken) || try == launchTries {
			return err
		}
		h.progress("%s: port %d was taken before it could bind it; starting it on another", p.name, port)
	}
}

// relaunch starts p again on its port, which its clients reconnect to, and
// waits until it listens there; while another process holds the port (it
// was free while p was down), it tries again with backoff until timeout.
func (h *harness) relaunch(ctx context.Context, p *proc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	wait := 100 * time.Millisecond
	for {
		err := p.startListening(ctx, time.Until(deadline))
		if !errors.Is(err, errPortTaken) || time.Now().Add(wait).After(deadline) {
			return err
		}
		h.progress("%s: port %d is taken by another process; starting it again in %s", p.name, p.port, wait)
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// startListening starts p and waits until it listens on p.port itself. A
// dial alone would not tell: it also succeeds when another process holds
// the port, while p is about to exit for want of it.
func (p *proc) startListening(ctx context.Context, timeout time.Duration) error {
	if err := p.start(); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		pid, done := p.current()
		select {
		case <-done:
			// Go, nats-server and redis-server all say it so ("bind:
			// address already in use").
			if strings.Contains(strings.ToLower(p.output()), "address already in use") {
				return fmt.Errorf("chaos: %s on port %d: %w", p.name, p.port, errPortTaken)
			}
			return fmt.Errorf("chaos: %s %w: %s (see %s)", p.name, errEnded, p.state(), p.log)
		default:
		}
		if listening(pid, p.port) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("chaos: %s not listening on port %d after %s (see %s)", p.name, p.port, timeout, p.log)
		}
		if !sleep(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// listening reports whether process pid holds a socket listening on TCP
// port: a listening socket of that port in /proc/net/tcp{,6} whose inode
// is one of pid's file descriptors. Without /proc (not Linux) it falls
// back to a dial.
func listening(pid, port int) bool {
	sockets, ok := listeningSockets(port)
	if !ok {
		c, err := net.DialTimeout("tcp", hostPort(port), time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	}
	if len(sockets) == 0 {
		return false
	}
	dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	fds, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join(dir, fd.Name())); err == nil && sockets[target] {
			return true
		}
	}
	return false
}

// listeningSockets returns the sockets listening on TCP port, named as
// /proc/<pid>/fd links name them ("socket:[inode]"); ok is false when the
// kernel's tables cannot be read.
func listeningSockets(port int) (sockets map[string]bool, ok bool) {
	sockets = map[string]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		ok = true
		for _, line := range strings.Split(string(b), "\n")[1:] {
			// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode …
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" { // 0A: LISTEN
				continue
			}
			_, hexPort, found := strings.Cut(f[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 16); found && err == nil && int(p) == port {
				sockets["socket:["+f[9]+"]"] = true
			}
		}
	}
	return sockets, ok
}

// freePort returns a TCP port free on 127.0.0.1 now, outside the kernel's
// ephemeral range. A process with a fixed port keeps it across restarts,
// so its clients reconnect; a port from the ephemeral range (what
// listening on :0 hands out) could be taken while the process is down by
// any outgoing connection or port-0 listener on the machine, which a port
// below the range never is. Another explicit listener still can take it:
// launch and relaunch handle that.
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
