package router

import (
	"context"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/feedloop/feedloop/services/router/internal/readmodel"
)

// DumpReadModel returns the router's read model in rdb in a normal form
// (key → value, see readmodel.Store.Dump) for comparing two states, e.g. a
// live Redis with one rebuilt from the stream. Trace keys are left out: they
// come from the live projector only, and a rebuild does not restore them
// by design (docs/architecture.md, Observability).
func DumpReadModel(ctx context.Context, rdb redis.UniversalClient) (map[string]string, error) {
	store, err := readmodel.New(rdb)
	if err != nil {
		return nil, err
	}
	d, err := store.Dump(ctx)
	if err != nil {
		return nil, err
	}
	for k := range d {
		if strings.HasPrefix(k, readmodel.DefaultPrefix+"trace:") {
			delete(d, k)
		}
	}
	return d, nil
}
