//go:build !unix

package bench

// peakRSSMB is not measured on this platform.
func peakRSSMB() float64 { return 0 }

// procPeakRSSMB is not measured on this platform.
func procPeakRSSMB(string) float64 { return 0 }
