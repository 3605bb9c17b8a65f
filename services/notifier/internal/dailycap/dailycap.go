// Package dailycap keeps the per-customer daily cap on customer messages in
// Redis, and the messages it held back until they go out in one digest.
//
//   - Admit decides, once per notice, whether it is sent or held: the
//     decision is stored under the notice's key, so a redelivery, another
//     replica or a restart on another day gets the same answer and the
//     customer's counter for the day counts each notice once.
//   - Hold stores a held message in the customer's day and schedules that
//     day's digest (a sorted set scored by due time).
//   - Due, Held and Done let a digest sender find due digests, read their
//     messages and retire them once sent.
//
// Keys: the notice key (decision), notify:cap:<day>:<customer> (count),
// notify:held:<day>:<customer> (hash notice → message),
// notify:digest:due (sorted set of "<day>|<customer>").
package dailycap

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/feedloop/feedloop/pkg/rebuild"
)

const dueKey = "notify:digest:due"

// keepDays is how long a day's count and held messages outlive the day:
// long enough for a digest delayed by an outage to still find them.
const keepDays = 7 * 24 * time.Hour

// Store is the cap and digest state in Redis.
type Store struct {
	rdb redis.Cmdable
	// decisionTTL is how long an admission is remembered (as long as a
	// delivery is).
	decisionTTL time.Duration
	ready       string
}

// Guarded is a copy of s whose Admit decides nothing new while readyKey is
// missing (the counts were lost with Redis and are being rebuilt): it
// fails with an error wrapping rebuild.ErrNotReady. A decision already
// stored is answered all the same.
func (s *Store) Guarded(readyKey string) *Store {
	c := *s
	c.ready = readyKey
	return &c
}

// New returns a Store; decisionTTL is how long a notice's decision is kept.
func New(rdb redis.Cmdable, decisionTTL time.Duration) *Store {
	return &Store{rdb: rdb, decisionTTL: decisionTTL}
}

// Decision is the outcome of Admit.
type Decision struct {
	// Hold is true when the notice is over the cap: hold it for the digest.
	Hold bool
	// Day is the day the notice counted for (the day of its first admission).
	Day string
}

// admitScript: KEYS[1] decision, KEYS[2] day counter; ARGV[1] cap, ARGV[2]
// day, ARGV[3] decision TTL ms, ARGV[4] counter TTL ms. Returns
// "send:<day>" or "hold:<day>", the stored decision if there is one.
var admitScript = redis.NewScript(`
local v = redis.call("GET", KEYS[1])
if v then return v end
if KEYS[3] and redis.call("EXISTS", KEYS[3]) == 0 then return "notready" end
local n = tonumber(redis.call("GET", KEYS[2]) or "0")
local d = "hold:"
if n < tonumber(ARGV[1]) then
  d = "send:"
  redis.call("INCR", KEYS[2])
  redis.call("PEXPIRE", KEYS[2], ARGV[4])
end
d = d .. ARGV[2]
redis.call("SET", KEYS[1], d, "PX", ARGV[3])
return d
`)

// Admit decides whether the notice at noticeKey, for customer (an opaque
// identity) on day, is sent (at most limit per customer and day) or held.
func (s *Store) Admit(ctx context.Context, noticeKey, customer, day string, limit int) (Decision, error) {
	keys := []string{noticeKey, countKey(day, customer)}
	if s.ready != "" {
		keys = append(keys, s.ready)
	}
	v, err := admitScript.Run(ctx, s.rdb, keys,
		limit, day, s.decisionTTL.Milliseconds(), keepDays.Milliseconds()).Text()
	if err != nil {
		return Decision{}, fmt.Errorf("dailycap: admit %s: %w", noticeKey, err)
	}
	if v == "notready" {
		return Decision{}, fmt.Errorf("dailycap: admit %s: daily cap %w", noticeKey, rebuild.ErrNotReady)
	}
	verdict, d, ok := strings.Cut(v, ":")
	if !ok || (verdict != "send" && verdict != "hold") {
		return Decision{}, fmt.Errorf("dailycap: admit %s: unexpected record %q", noticeKey, v)
	}
	return Decision{Hold: verdict == "hold", Day: d}, nil
}

// restoreScript: KEYS[1] the rebuild lock, KEYS[2] the notice's decision,
// KEYS[3] the day's count; ARGV[1] the lock's token, ARGV[2] the decision,
// ARGV[3] its TTL ms, ARGV[4] the count's TTL ms. The count goes up once
// per notice (the decision is set only if absent), and only while the lock
// is the caller's (0 otherwise).
var restoreScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call("SET", KEYS[2], ARGV[2], "NX", "PX", ARGV[3]) then
  redis.call("INCR", KEYS[3])
  redis.call("PEXPIRE", KEYS[3], ARGV[4])
end
return 1
`)

// Restore queues on p the admission of the notice noticeKey, sent to
// customer on day at sentAt, as Admit stored it: the decision "send" and
// one more in the day's count. Nothing when the decision would have
// expired by now. The write checks fence; its result is 0 when the lock
// was lost.
func (s *Store) Restore(ctx context.Context, p redis.Pipeliner, fence rebuild.Guard, noticeKey, customer, day string, sentAt, now time.Time) *redis.Cmd {
	left := s.decisionTTL - now.Sub(sentAt)
	if left <= 0 {
		return nil
	}
	return restoreScript.Eval(ctx, p, []string{fence.Key, noticeKey, countKey(day, customer)},
		fence.Token, "send:"+day, left.Milliseconds(), keepDays.Milliseconds())
}

// Batch is one customer's held messages of one day: one digest.
type Batch struct {
	Day      string
	Customer string
}

func (b Batch) member() string { return b.Day + "|" + b.Customer }

// holdScript: KEYS[1] held hash, KEYS[2] due set; ARGV[1] notice key,
// ARGV[2] message, ARGV[3] hash TTL ms, ARGV[4] due score, ARGV[5] member.
var holdScript = redis.NewScript(`
if redis.call("HSETNX", KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call("PEXPIRE", KEYS[1], ARGV[3])
redis.call("ZADD", KEYS[2], "NX", ARGV[4], ARGV[5])
return 1
`)

// Hold stores message (opaque) as the held message noticeKey of b, and
// schedules b's digest at due. A notice already held is left alone and
// schedules nothing: redeliveries neither duplicate a message nor revive
// a digest already sent.
func (s *Store) Hold(ctx context.Context, b Batch, noticeKey string, message []byte, due time.Time) error {
	err := holdScript.Run(ctx, s.rdb, []string{heldKey(b), dueKey},
		noticeKey, message, keepDays.Milliseconds(), due.UnixMilli(), b.member()).Err()
	if err != nil {
		return fmt.Errorf("dailycap: hold %s: %w", noticeKey, err)
	}
	return nil
}

// Due lists up to limit digests due at now, earliest first.
func (s *Store) Due(ctx context.Context, now time.Time, limit int) ([]Batch, error) {
	ms, err := s.rdb.ZRangeByScore(ctx, dueKey, &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(now.UnixMilli(), 10), Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("dailycap: due digests: %w", err)
	}
	out := make([]Batch, 0, len(ms))
	for _, m := range ms {
		day, cust, ok := strings.Cut(m, "|")
		if !ok {
			return nil, fmt.Errorf("dailycap: due digests: malformed member %q", m)
		}
		out = append(out, Batch{Day: day, Customer: cust})
	}
	return out, nil
}

// Held returns b's held messages by notice key.
func (s *Store) Held(ctx context.Context, b Batch) (map[string][]byte, error) {
	m, err := s.rdb.HGetAll(ctx, heldKey(b)).Result()
	if err != nil {
		return nil, fmt.Errorf("dailycap: held messages of %s: %w", b.member(), err)
	}
	out := make(map[string][]byte, len(m))
	for k, v := range m {
		out[k] = []byte(v)
	}
	return out, nil
}

// Done retires b's digest once it is sent (or has nothing to send). The
// held messages stay until they expire, so a late redelivery of a held
// notice finds it there and schedules nothing (see Hold).
func (s *Store) Done(ctx context.Context, b Batch) error {
	if err := s.rdb.ZRem(ctx, dueKey, b.member()).Err(); err != nil {
		return fmt.Errorf("dailycap: retire digest %s: %w", b.member(), err)
	}
	return nil
}

func countKey(day, customer string) string { return "notify:cap:" + day + ":" + customer }

func heldKey(b Batch) string { return "notify:held:" + b.Day + ":" + b.Customer }
