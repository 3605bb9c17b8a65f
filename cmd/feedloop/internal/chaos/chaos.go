// Package chaos is the fault harness: it runs feedloop in its deployment
// shape on one machine — a real nats-server and redis-server, every service
// its own OS process (two replicas of classifier and router), with the
// security of a deployment on (a NATS NKey user per service, intake API
// keys and rate limit, signed webhooks) — drives items through the gRPC
// intake while it kills each service once with SIGKILL,
// kills and restarts nats-server, flushes Redis and sends poison messages,
// and then checks what the system promises: every item reached every team
// its route names, every customer got exactly one acknowledgement, every
// poison message was dead-lettered, and the read model equals a rebuild
// from the stream.
package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/natsauth"
)

// Run runs the harness once. An error means it could not run; a failed
// assertion is a Result with OK() false.
func Run(ctx context.Context, o Options) (res *Result, err error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	o = o.withDefaults()
	redisPath, lerr := exec.LookPath("redis-server")
	if lerr != nil {
		return nil, errNoRedis
	}
	root := o.Dir
	if root == "" {
		if root, err = findRoot("."); err != nil {
			return nil, err
		}
	}
	h := &harness{o: o, root: root, pickPort: freePort, start: time.Now(), res: &Result{Items: o.Items, NATSSync: "default (sync_interval 2m)"}}
	if h.dir, err = os.MkdirTemp("", "feedloop-chaos-"); err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	defer func() {
		if err != nil {
			h.keep = true // the logs say why
			err = fmt.Errorf("%w (logs in %s)", err, filepath.Join(h.dir, "logs"))
		}
		h.close()
	}()
	h.progress("building the services and nats-server into %s", h.dir)
	if err := buildAll(ctx, root, filepath.Join(h.dir, "bin")); err != nil {
		return nil, err
	}
	if err := h.startInfra(ctx, redisPath); err != nil {
		return nil, err
	}
	if err := h.startServices(ctx); err != nil {
		return nil, err
	}
	if err := h.runLoad(ctx); err != nil {
		return nil, err
	}
	if err := h.verify(ctx); err != nil {
		return nil, err
	}
	h.res.DurationS = time.Since(h.start).Round(100 * time.Millisecond).Seconds()
	if o.Keep || !h.res.OK() {
		h.keep = true
		h.res.RunDir = h.dir
	}
	return h.res, nil
}

type harness struct {
	o    Options
	root string
	dir  string
	// pickPort picks the port of a process that listens where its clients
	// know (see launch): freePort; a test hands out a taken one.
	pickPort func() (int, error)
	start    time.Time
	res      *Result
	keep     bool

	secret    []byte
	natsUsers natsauth.Users
	apiKey    string // the driver's intake API key (INTAKE_API_KEYS_FILE holds its hash)
	sink      *sink
	redis     *proc
	nats      *proc
	natsPort  int
	redisPort int
	intakeAdr string
	services  []*proc // intake, classifier-1, classifier-2, router-1, router-2, notifier
	bus       *bus.Bus
	rdb       *redis.Client
	ids       map[string]int // feedback id → item number, of the accepted items

	mu       sync.Mutex
	faulting map[*proc]bool // killed on purpose: the supervisor leaves it
	stopping bool
	superv   chan struct{}
}

func (h *harness) progress(format string, args ...any) {
	fmt.Fprintf(h.o.Progress, "chaos %6.1fs  %s\n", time.Since(h.start).Seconds(), fmt.Sprintf(format, args...))
}

func (h *harness) bin(name string) string { return filepath.Join(h.dir, "bin", name) }

func (h *harness) newProc(name, bin string, args []string, env []string) *proc {
	return &proc{name: name, path: h.bin(bin), args: args, env: env, log: filepath.Join(h.dir, "logs", name+".log")}
}
func (h *harness) stopServices() {
	var wg sync.WaitGroup
	for _, p := range h.services {
		wg.Go(func() { p.stop(20 * time.Second) })
	}
	wg.Wait()
}

func (h *harness) close() {
	if h.superv != nil {
		h.mu.Lock()
		h.stopping = true
		h.mu.Unlock()
		<-h.superv
	}
	h.stopServices()
	if h.sink != nil {
		h.sink.close()
	}
	if h.bus != nil {
		h.bus.Conn().Close()
	}
	if h.rdb != nil {
		_ = h.rdb.Close()
	}
	if h.nats != nil {
		h.nats.stop(10 * time.Second)
	}
	if h.redis != nil {
		h.redis.stop(10 * time.Second)
	}
	if !h.keep {
		_ = os.RemoveAll(h.dir)
	}
}

func runID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
