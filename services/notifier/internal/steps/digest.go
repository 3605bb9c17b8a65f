package steps

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

// dayLayout names a UTC day in cap and digest keys.
const dayLayout = "2006-01-02"

// CapIdentity is who the per-customer daily cap counts for: the customer's
// id, else their email address (case-insensitive), hashed so that keys in
// Redis carry no address; "" when the customer has neither.
func CapIdentity(c Customer) string {
	var who string
	switch email := strings.ToLower(strings.TrimSpace(c.Email)); {
	case c.ID != "":
		who = "id:" + c.ID
	case email != "":
		who = "email:" + email
	default:
		return ""
	}
	sum := sha256.Sum256([]byte(who))
	return hex.EncodeToString(sum[:16])
}

// Day is the UTC day of t, the period of the daily cap.
func Day(t time.Time) string { return t.UTC().Format(dayLayout) }

// DigestDueAt is when the digest of day is sent: delay after the day ends
// (UTC midnight), so messages held just before midnight by a replica whose
// clock runs late still make it in. A malformed day is due at once.
func DigestDueAt(day string, delay time.Duration) time.Time {
	d, err := time.Parse(dayLayout, day)
	if err != nil {
		return time.Time{}
	}
	return d.AddDate(0, 0, 1).Add(delay)
}

// DigestID identifies the digest of one customer's day; it stands in for
// the feedback id in the digest's delivery keys.
func DigestID(day, identity string) string { return "digest-" + day + "-" + identity }
