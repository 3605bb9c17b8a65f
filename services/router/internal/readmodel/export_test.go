package readmodel

// SetQueryScan lowers the bound of a query's reads, so a test reaches it
// with a few items.
func SetQueryScan(s *Store, n int) { s.queryScan = n }
