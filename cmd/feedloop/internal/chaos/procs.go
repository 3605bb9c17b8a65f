package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
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
	// port is the loopback port the process listens on that its clients
	// know (see launch); 0: none. withPort sets args or env (or a config
	// file) for a port before a first start.
	port     int
	withPort func(port int) error

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	outStart int64 // where this start's output begins in log
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
	outStart, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("chaos: %s log: %w", p.name, err)
	}
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
	p.cmd, p.done, p.outStart = cmd, done, outStart
	return nil
}

// current returns the pid of the latest start and a channel closed when
// that process has ended.
func (p *proc) current() (pid int, done <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid, p.done
}

// output returns what the latest start has written to the log so far.
func (p *proc) output() string {
	p.mu.Lock()
	from := p.outStart
	p.mu.Unlock()
	f, err := os.Open(p.log)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(f)
	return string(b)
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

var errNoRedis = errors.New("chaos: redis-server not on PATH (apt-get install redis-server; CI installs it)")
