package bench

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// sink is the team webhook receiver on loopback: the end of the path. It
// tells the tracker of the phase in progress of every routed alert, or the
// tracker of an earlier phase that sent the item: an item that stalled past
// its phase's wait is late, not lost.
type sink struct {
	srv    *http.Server
	lis    net.Listener
	mu     sync.Mutex
	phases []*tracker // the phase in progress last
}

// track makes t the phase in progress.
func (s *sink) track(t *tracker) {
	s.mu.Lock()
	s.phases = append(s.phases, t)
	s.mu.Unlock()
}

// arrive hands an item that came out at at to the tracker it belongs to.
func (s *sink) arrive(key string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.phases) == 0 {
		return
	}
	for _, t := range s.phases[:len(s.phases)-1] {
		if t.expects(key) {
			t.arrive(key, at)
			return
		}
	}
	s.phases[len(s.phases)-1].arrive(key, at)
}

func newSink() (*sink, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: webhook sink: %w", err)
	}
	s := &sink{lis: lis}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = lis.Close()
		}
	}()
	return s, nil
}

// URL is where the notifier posts team alerts.
func (s *sink) URL() string { return "http://" + s.lis.Addr().String() + "/hooks" }

// ServeHTTP takes the alert's step, audience and feedback id from the
// headers the notifier repeats them in (X-Feedloop-Step, -Audience,
// -Feedback-Id), so that the bench's receiver does not spend the machine's
// CPU parsing bodies; the body is read to the end, as a receiver would.
func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id := r.Header.Get("X-Feedloop-Feedback-Id")
	if id == "" {
		// A 4xx would be a permanent failure and a dead letter: the bench
		// would count the item as lost, which is what it is.
		http.Error(w, "no X-Feedloop-Feedback-Id", http.StatusBadRequest)
		return
	}
	if r.Header.Get("X-Feedloop-Step") == "routed" && r.Header.Get("X-Feedloop-Audience") == "team" {
		s.arrive(id, at)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *sink) close() { _ = s.srv.Close() }
