package grpcserver

// Pending counts the recorded requests not yet refused: zero once every
// call has returned, or the codec leaks.
func (s *Server) Pending() int {
	n := 0
	s.malformed.bad.Range(func(any, any) bool { n++; return true })
	return n
}
