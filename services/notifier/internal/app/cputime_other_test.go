//go:build !unix

package app_test

import "time"

func cpuTime() time.Duration { return 0 }
