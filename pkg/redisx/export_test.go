package redisx

// Pending is how many callers wait in b's queue.
func Pending(b *Batcher) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending)
}
