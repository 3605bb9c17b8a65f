package grpcport_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/feedloop/feedloop/pkg/apikey"
	"github.com/feedloop/feedloop/services/intake/internal/auth"
)

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// authenticator knows "live" (helpdesk, zendesk), "old" (expired) and
// "gone" (revoked); refused counts refusals.
func authenticator(t *testing.T, refused *atomic.Int64) (*auth.Authenticator, *atomic.Pointer[apikey.Set]) {
	t.Helper()
	set, err := apikey.NewSet([]apikey.Entry{
		{Scope: "helpdesk", Name: "zendesk", SHA256: apikey.Hash("live")},
		{Scope: "helpdesk", SHA256: apikey.Hash("old"), Expires: now.Add(-time.Hour)},
		{Scope: "crm", SHA256: apikey.Hash("gone"), Revoked: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	var cur atomic.Pointer[apikey.Set]
	cur.Store(set)
	return auth.New(cur.Load, func() time.Time { return now }, func(context.Context) { refused.Add(1) }), &cur
}
