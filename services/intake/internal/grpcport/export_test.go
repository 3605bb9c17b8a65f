package grpcport

// Pending counts the recorded requests not yet refused: zero once every
// call has returned, or the codec leaks.
func (m *Malformed) Pending() int {
	n := 0
	m.bad.Range(func(any, any) bool { n++; return true })
	return n
}
