package chaos

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/feedloop/feedloop/services/notifier/webhooksig"
)

// sink is the loopback HTTP receiver of every webhook the notifier sends:
// /customer for customer messages (NOTIFIER_CUSTOMER_WEBHOOK_URL), /team
// for team alerts (the default team channel). It records every raw
// delivery, as a receiver that does not deduplicate would see it, and the
// Idempotency-Key of each, as one that honours the key would.
type sink struct {
	secret []byte
	srv    *http.Server
	lis    net.Listener

	mu sync.Mutex
	// customer counts deliveries per feedback id and step; customerKeys the
	// distinct Idempotency-Keys per feedback id and step, customerUnkeyed
	// the deliveries without one.
	customer        map[delivery]int
	customerKeys    map[delivery]map[string]bool
	customerUnkeyed map[delivery]int
	// team counts routed alerts per feedback id and team.
	team map[delivery]int
	// bad counts requests that failed the signature or did not parse.
	bad int
}

// delivery is (feedback id, step or team).
type delivery struct{ id, what string }

func newSink(secret []byte) (*sink, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("chaos: sink: %w", err)
	}
	s := &sink{
		secret: secret, lis: lis,
		customer: map[delivery]int{}, customerKeys: map[delivery]map[string]bool{}, customerUnkeyed: map[delivery]int{},
		team: map[delivery]int{},
	}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = lis.Close()
		}
	}()
	return s, nil
}

func (s *sink) customerURL() string { return "http://" + s.lis.Addr().String() + "/customer" }
func (s *sink) teamURL() string     { return "http://" + s.lis.Addr().String() + "/team" }

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// Verified as a receiver must: signed with the secret, recently.
	sigErr := webhooksig.Verify(s.secret, r.Header.Get(webhooksig.Header), raw)
	var p struct {
		Step       string `json:"step"`
		Audience   string `json:"audience"`
		FeedbackID string `json:"feedback_id"`
		Team       string `json:"team"`
	}
	if sigErr != nil || json.Unmarshal(raw, &p) != nil {
		s.mu.Lock()
		s.bad++
		s.mu.Unlock()
		// 4xx: the notifier dead-letters it, which the harness reports.
		http.Error(w, "bad signature or body", http.StatusBadRequest)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	s.mu.Lock()
	switch {
	case r.URL.Path == "/customer" && p.Audience == "customer":
		d := delivery{p.FeedbackID, p.Step}
		s.customer[d]++
		switch {
		case key == "":
			s.customerUnkeyed[d]++
		case s.customerKeys[d] == nil:
			s.customerKeys[d] = map[string]bool{key: true}
		default:
			s.customerKeys[d][key] = true
		}
	case r.URL.Path == "/team" && p.Step == "routed":
		s.team[delivery{p.FeedbackID, p.Team}]++
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// counts are the deliveries of one (id, step): raw, with distinct
// Idempotency-Keys, and without a key.
type counts struct{ raw, keys, unkeyed int }

// seen is how many of them a receiver honouring Idempotency-Key accepts:
// one per distinct key, and every delivery without a key (it has nothing
// to drop it by).
func (c counts) seen() int { return c.keys + c.unkeyed }

// customerCount returns the deliveries of (id, step).
func (s *sink) customerCount(id, step string) counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := delivery{id, step}
	c := counts{raw: s.customer[d], unkeyed: s.customerUnkeyed[d]}
	c.keys = len(s.customerKeys[d])
	return c
}

// customerDeliveries returns how many customer messages arrived, in all.
func (s *sink) customerDeliveries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.customer {
		n += c
	}
	return n
}

// teamCount returns the routed alerts of (id, team).
func (s *sink) teamCount(id, team string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.team[delivery{id, team}]
}

func (s *sink) badRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bad
}

func (s *sink) close() { _ = s.srv.Close() }
