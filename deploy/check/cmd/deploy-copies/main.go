// Command deploy-copies refreshes the copies of deploy/examples and
// deploy/grafana that the kustomizations of deploy/k8s build from (see
// manifests.Copies). Run it from the repository root after editing a source.
package main

import (
	"fmt"
	"os"

	"github.com/feedloop/feedloop/deploy/check/manifests"
)

func main() {
	if _, err := os.Stat("go.work"); err != nil {
		fmt.Fprintln(os.Stderr, "deploy-copies: run from the repository root")
		os.Exit(2)
	}
	if err := manifests.SyncCopies("."); err != nil {
		fmt.Fprintln(os.Stderr, "deploy-copies:", err)
		os.Exit(1)
	}
}
