package chaos

import (
	"net"
	"testing"
)

// The ports the harness hands to the services lie below the kernel's
// ephemeral range, so no outgoing connection or port-0 listener can take one
// between the check and the service's bind; and they are free.
func TestFreePortIsOutsideTheEphemeralRange(t *testing.T) {
	lo, _ := ephemeralRange()
	seen := map[int]bool{}
	for range 50 {
		p, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		if p < minPort || p >= lo {
			t.Fatalf("port %d: want %d <= port < %d (the ephemeral range starts there)", p, minPort, lo)
		}
		seen[p] = true
	}
	if len(seen) < 2 {
		t.Fatalf("50 calls gave %d distinct ports", len(seen))
	}
	// A port held by another listener is never handed out.
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	hp := held.Addr().(*net.TCPAddr).Port
	for range 50 {
		if p, _ := freePort(); p == hp {
			t.Fatalf("freePort handed out %d, held by a listener", p)
		}
	}
}
