package testkit

import (
	"bytes"
	"context"
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

// Run runs a service's Run (or any blocking func) in the background until
// the test ends, then cancels it and fails the test unless it returns nil
// within WaitTimeout: a graceful stop is part of every service's contract.
// The returned stop does the same earlier; calling it twice is harmless.
func Run(t testing.TB, run func(ctx context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v after cancel, want nil", err)
				}
			case <-time.After(WaitTimeout):
				t.Errorf("Run did not return within %s of cancel", WaitTimeout)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
