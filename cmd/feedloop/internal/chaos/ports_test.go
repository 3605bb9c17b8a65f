package chaos

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// listening tells the process holding a port from another one: a dial
// cannot (it also succeeds when a squatter holds the port).
func TestListeningTellsTheOwner(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	if !listening(os.Getpid(), port) {
		t.Errorf("this process listens on %d, listening says no", port)
	}
	other := exec.Command("sleep", "30")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Process.Kill(); _ = other.Wait() }()
	if listening(other.Process.Pid, port) {
		t.Errorf("process %d does not listen on %d, listening says it does", other.Process.Pid, port)
	}
	l.Close()
	if listening(os.Getpid(), port) {
		t.Errorf("closed listener on %d still counted", port)
	}
}

// progressLines collects the harness's progress lines and signals each.
type progressLines struct {
	t  *testing.T
	ch chan string
}

func (w *progressLines) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\n")
	w.t.Log(line)
	select {
	case w.ch <- line:
	default:
	}
	return len(p), nil
}

// squat holds a port from the test, as another process on the machine might.
func squat(t *testing.T) (port int, release func()) {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", hostPort(p))
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { _ = l.Close() }) }
	t.Cleanup(release)
	return p, release
}

// infraHarness is a harness with nats-server built into its directory,
// ready for startInfra, whose port picker hands out pick's ports.
func infraHarness(t *testing.T, pick func() (int, error)) (*harness, *progressLines) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not on PATH; install it (apt-get install redis-server) — CI does")
	}
	root, err := findRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "bin")+string(os.PathSeparator), servicePkgs["nats-server"])
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build nats-server: %v\n%s", err, out)
	}
	w := &progressLines{t: t, ch: make(chan string, 100)}
	h := &harness{o: Options{Progress: w}.withDefaults(), root: root, dir: dir, pickPort: pick, start: time.Now(), res: &Result{}}
	h.keep = true // t.TempDir removes it
	t.Cleanup(h.close)
	return h, w
}

// The first port picked for redis-server and for nats-server is held by
// another listener (what happened in the failed run: taken between the
// pick and the bind). The harness still starts both, each on the next
// port, and it is really they that answer there, not the squatter.
func TestLaunchMovesOffATakenPort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	held := map[int]bool{}
	var picks []int
	// Every launch's first pick is a held port.
	pick := func() (int, error) {
		if len(picks)%2 == 0 {
			p, _ := squat(t)
			held[p] = true
			picks = append(picks, p)
			return p, nil
		}
		p, err := freePort()
		picks = append(picks, p)
		return p, err
	}
	h, _ := infraHarness(t, pick)
	redisPath, _ := exec.LookPath("redis-server")
	if err := h.startInfra(ctx, redisPath); err != nil {
		t.Fatalf("startInfra with its first ports taken: %v", err)
	}
	if len(picks) != 4 {
		t.Errorf("ports picked %v, want 4 (a taken one and a free one for each)", picks)
	}
	if held[h.redisPort] || held[h.natsPort] {
		t.Fatalf("redis on %d, nats on %d: a held port (%v)", h.redisPort, h.natsPort, picks)
	}
	// redis-server answering on its port is the harness's process.
	info, err := h.rdb.Info(ctx, "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := h.redis.current()
	if !strings.Contains(info, "process_id:"+strconv.Itoa(pid)+"\r\n") {
		t.Errorf("redis on %d is not the harness's redis-server (pid %d):\n%s", h.redisPort, pid, info)
	}
	// nats-server took the bus's connection and created the streams.
	if _, err := h.bus.JetStream().AccountInfo(ctx); err != nil {
		t.Errorf("JetStream on %s: %v", h.natsURL(), err)
	}
	if out := h.redis.output() + h.nats.output(); strings.Contains(strings.ToLower(out), "address already in use") {
		t.Errorf("the running processes' output says a port was taken:\n%s", out)
	}
}

// nats-server killed, its port taken by another process while it is
// down: the restart keeps trying the same port (its clients reconnect
// there) and gets it once the squatter lets go; the bus is back.
func TestRelaunchWaitsForItsPort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	h, w := infraHarness(t, freePort)
	redisPath, _ := exec.LookPath("redis-server")
	if err := h.startInfra(ctx, redisPath); err != nil {
		t.Fatal(err)
	}
	port := h.natsPort
	h.nats.kill()
	l, err := net.Listen("tcp", hostPort(port))
	if err != nil {
		t.Fatalf("take nats-server's port %d: %v", port, err)
	}
	defer l.Close()
	for len(w.ch) > 0 {
		<-w.ch
	}
	done := make(chan error, 1)
	go func() { done <- h.relaunch(ctx, h.nats, time.Minute) }()
	// Let go of the port once the harness has found it taken.
	taken := fmt.Sprintf("port %d is taken", port)
wait:
	for {
		select {
		case line := <-w.ch:
			if strings.Contains(line, taken) {
				break wait
			}
		case err := <-done:
			t.Fatalf("relaunch ended while its port was taken: %v", err)
		}
	}
	l.Close()
	if err := <-done; err != nil {
		t.Fatalf("relaunch: %v", err)
	}
	pid, _ := h.nats.current()
	if h.nats.port != port || !listening(pid, port) {
		t.Fatalf("nats-server (pid %d) does not listen on its port %d (port now %d)", pid, port, h.nats.port)
	}
	if err := h.waitJetStream(ctx); err != nil {
		t.Fatal(err)
	}
}
