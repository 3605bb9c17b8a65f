package natsembed_test

import (
	"testing"

	"github.com/feedloop/feedloop/pkg/natsembed"
)

// SyncAlways reaches JetStream (sync_interval: always); without it the
// server keeps its default background sync.
func TestSyncAlways(t *testing.T) {
	for _, always := range []bool{false, true} {
		ns, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir(), SyncAlways: always})
		if err != nil {
			t.Fatal(err)
		}
		got := ns.JetStreamConfig().SyncAlways
		ns.Shutdown()
		ns.WaitForShutdown()
		if got != always {
			t.Errorf("SyncAlways %v: JetStream runs with sync always = %v", always, got)
		}
	}
}
