package rebuild_test

import (
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/feedloop/feedloop/pkg/rebuild"
	"github.com/feedloop/feedloop/pkg/testkit"
)

// fenced writes v under key while fence holds token, like the services'
// restore scripts: 1 when written, 0 when the lock is gone.
var fenced = redis.NewScript(`if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2]) return 1`)

// A flush with the lock held writes everything; one whose fence was lost
// meanwhile says so with ErrLockLost.
func TestBatchFlushChecksTheFence(t *testing.T) {
	opts, err := redis.ParseURL(testkit.Redis(t))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx := t.Context()
	if err := rdb.Set(ctx, "lock", "me", 0).Err(); err != nil {
		t.Fatal(err)
	}
	b := rebuild.NewBatch(rdb)
	for i := range rebuild.BatchSize + 1 {
		b.Fenced(fenced.Eval(ctx, b.Pipe(), []string{"lock", "k" + string(rune('a'+i%26))}, "me", i))
		if err := b.FlushIfFull(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if b.Pipe().Len() != 1 {
		t.Fatalf("FlushIfFull left %d queued, want 1 (the batch after the full one)", b.Pipe().Len())
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := rdb.Get(ctx, "ka").Result(); got == "" {
		t.Fatal("the fenced writes did not land")
	}

	if err := rdb.Set(ctx, "lock", "someone else", 0).Err(); err != nil {
		t.Fatal(err)
	}
	b.Fenced(fenced.Eval(ctx, b.Pipe(), []string{"lock", "late"}, "me", "x"))
	b.Fenced(nil) // a write that needed none
	if err := b.Flush(ctx); !errors.Is(err, rebuild.ErrLockLost) {
		t.Fatalf("flush after the lock was lost: %v, want ErrLockLost", err)
	}
	if n, _ := rdb.Exists(ctx, "late").Result(); n != 0 {
		t.Fatal("a write landed without the lock")
	}
}
