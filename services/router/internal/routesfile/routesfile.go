// Package routesfile keeps the routing tree in step with its file (package
// filewatch): a new tree is swapped in when the file changes and parses;
// an invalid file is logged and the tree already loaded stays in force.
package routesfile

import (
	"log/slog"

	"github.com/feedloop/feedloop/pkg/filewatch"
	"github.com/feedloop/feedloop/services/router/routing"
)

// Watcher holds the current tree of one routes file.
type Watcher struct {
	*filewatch.Watcher[*routing.Tree]
}

// Open loads the file at path; an invalid file is an error, since the
// service has no tree to fall back on yet.
func Open(path string, log *slog.Logger) (*Watcher, error) {
	w, err := filewatch.Open(path, "routes", routing.Parse, log)
	if err != nil {
		return nil, err
	}
	return &Watcher{w}, nil
}

// Tree returns the current tree; it never returns nil.
func (w *Watcher) Tree() *routing.Tree { return w.Get() }
