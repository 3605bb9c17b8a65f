package bus

import (
	"strings"

	"github.com/google/uuid"
)

// namespace scopes derived event ids to feedloop.
var namespace = uuid.MustParse("6f1d0c7e-7a57-4d0b-9c1e-f3ed0b1ca001")

// NewID returns a fresh random id for an event that has no parent: a new
// submission, a team action.
func NewID() string { return uuid.NewString() }

// DeriveID returns the id of an event emitted because of event parent. The
// same parent and parts always give the same id, so a redelivered input
// republishes the same ids and JetStream's duplicate window drops them.
func DeriveID(parent string, parts ...string) string {
	return uuid.NewSHA1(namespace, []byte(parent+"\x00"+strings.Join(parts, "\x00"))).String()
}
