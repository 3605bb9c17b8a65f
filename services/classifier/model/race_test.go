//go:build race

package model

// raceEnabled: the race detector changes what escapes, so allocation counts mean nothing.
const raceEnabled = true
