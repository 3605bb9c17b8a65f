package chaos

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/feedloop/feedloop/services/notifier/webhooksig"
)

func post(t *testing.T, url string, secret []byte, key, body string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(webhooksig.Header, webhooksig.Sign(time.Now(), []byte(body), secret))
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// The sink counts raw deliveries, distinct keys and deliveries without a
// key, and checkMessages judges them as a receiver honouring
// Idempotency-Key would: a resend under the same key is dropped (reported
// as resent_same_key), one under a new key or without a key is a duplicate
// acknowledgement. A body with a bad signature is refused and counted, not
// recorded.
func TestSinkAndMessageCounts(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	s, err := newSink(secret)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	ack := func(id string) string {
		return `{"step":"received","audience":"customer","feedback_id":"` + id + `"}`
	}
	for _, d := range []struct{ id, key string }{
		{"a", "k-a"},               // once: fine
		{"b", "k-b"}, {"b", "k-b"}, // redelivered, same key
		{"c", "k-c1"}, {"c", "k-c2"}, // sent twice under two keys
		{"e", "k-e"}, {"e", ""}, {"e", ""}, // twice more without a key
		{"f", ""}, // once, without a key: one acknowledgement
	} {
		if code := post(t, s.customerURL(), secret, d.key, ack(d.id)); code != http.StatusNoContent {
			t.Fatalf("delivery %v: status %d", d, code)
		}
	}
	if code := post(t, s.customerURL(), []byte("another secret, 32 bytes long..."), "k-x", ack("d")); code != http.StatusBadRequest {
		t.Errorf("bad signature: status %d, want 400", code)
	}
	if code := post(t, s.teamURL(), secret, "k-t", `{"step":"routed","audience":"team","feedback_id":"a","team":"billing"}`); code != http.StatusNoContent {
		t.Fatalf("team alert: status %d", code)
	}

	f := checkMessages(map[string]int{"a": 0, "b": 1, "c": 2, "d": 3, "e": 4, "f": 5}, s)
	if f.missing != 1 || f.duplicates != 3 || f.resentSameKey != 1 {
		t.Errorf("missing %d, duplicates %d, resent under the same key %d; want 1 (d), 3 (c once, e twice), 1 (b)", f.missing, f.duplicates, f.resentSameKey)
	}
	if s.badRequests() != 1 {
		t.Errorf("bad requests %d, want 1", s.badRequests())
	}
	if s.teamCount("a", "billing") != 1 || s.teamCount("a", "product") != 0 {
		t.Errorf("team alerts: billing %d, product %d; want 1, 0", s.teamCount("a", "billing"), s.teamCount("a", "product"))
	}
}
