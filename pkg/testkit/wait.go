package testkit

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// WaitTimeout bounds Eventually: generous, because tests run with -race on
// small shared machines, and it only matters when a test is failing.
const WaitTimeout = 20 * time.Second

// Eventually polls cond until it holds, failing the test after WaitTimeout
// with what it was waiting for.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", WaitTimeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// SyncBuffer is a bytes.Buffer that a service (logs, console channel) and
// the test may use at the same time.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
