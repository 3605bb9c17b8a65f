//go:build !unix

package bench

import "time"

// processCPU is not measured on this platform.
func processCPU() time.Duration { return 0 }

// peakRSSMB is not measured on this platform.
func peakRSSMB() float64 { return 0 }

// procPeakRSSMB is not measured on this platform.
func procPeakRSSMB(string) float64 { return 0 }
