// Package authtest gives the ports' tests one key set to authenticate
// against, so the gRPC interceptor and the HTTP middleware are tested on
// the same keys.
package authtest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/feedloop/feedloop/pkg/apikey"
	"github.com/feedloop/feedloop/services/intake/internal/auth"
)

// Now is the authenticator's clock: "old" expired an hour before it.
var Now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// Authenticator knows "live" (helpdesk, zendesk), "old" (expired) and
// "gone" (revoked); refused counts refusals. The returned pointer swaps
// the key set, as a reload of the keys file does.
func Authenticator(t testing.TB, refused *atomic.Int64) (*auth.Authenticator, *atomic.Pointer[apikey.Set]) {
	t.Helper()
	set, err := apikey.NewSet([]apikey.Entry{
		{Scope: "helpdesk", Name: "zendesk", SHA256: apikey.Hash("live")},
		{Scope: "helpdesk", SHA256: apikey.Hash("old"), Expires: Now.Add(-time.Hour)},
		{Scope: "crm", SHA256: apikey.Hash("gone"), Revoked: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	var cur atomic.Pointer[apikey.Set]
	cur.Store(set)
	return auth.New(cur.Load, func() time.Time { return Now }, func(context.Context) { refused.Add(1) }), &cur
}
