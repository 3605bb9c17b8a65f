package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// sink is the team webhook receiver on loopback: the end of the path. It
// tells the tracker of the phase in progress of every routed alert.
type sink struct {
	srv     *http.Server
	lis     net.Listener
	tracker atomic.Pointer[tracker]
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

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	var p struct {
		Step       string `json:"step"`
		Audience   string `json:"audience"`
		FeedbackID string `json:"feedback_id"`
	}
	raw, err := io.ReadAll(r.Body)
	if err == nil {
		err = json.Unmarshal(raw, &p)
	}
	if err != nil {
		// A 4xx would be a permanent failure and a dead letter: the bench
		// would count the item as lost, which is what it is.
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if t := s.tracker.Load(); t != nil && p.Step == "routed" && p.Audience == "team" {
		t.arrive(p.FeedbackID, at)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *sink) close() { _ = s.srv.Close() }
