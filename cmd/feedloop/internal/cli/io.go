package cli

import "io"

// maxInput bounds what a command reads from a file or stdin.
const maxInput = 1 << 20

func readAll(r io.Reader) ([]byte, error) { return io.ReadAll(io.LimitReader(r, maxInput)) }
