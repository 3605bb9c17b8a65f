package webhooksig_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/feedloop/feedloop/services/notifier/webhooksig"
)

var (
	current  = []byte("current-secret-0123456789")
	previous = []byte("previous-secret-0123456789")
	body     = []byte(`{"version":1,"step":"received"}`)
	signedAt = time.Unix(1764590400, 0) // 2025-12-01T12:00:00Z
)

func at(t time.Time) func() time.Time { return func() time.Time { return t } }

// The header is the documented scheme, computable with any HMAC tool.
func TestSignIsTheDocumentedScheme(t *testing.T) {
	m := hmac.New(sha256.New, current)
	m.Write([]byte("1764590400." + string(body)))
	want := "t=1764590400,v1=" + hex.EncodeToString(m.Sum(nil))
	if got := webhooksig.Sign(signedAt, body, current); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	if got := webhooksig.Sign(signedAt, body, current, previous); !strings.HasPrefix(got, want+",v1=") || strings.Count(got, "v1=") != 2 {
		t.Fatalf("rotation: %s", got)
	}
}

// A Signer reused over and over (its HMACs are pooled), from several
// goroutines at once, signs as a fresh one (Sign), with one secret or two.
func TestSignerIsSign(t *testing.T) {
	for _, secrets := range [][][]byte{{current}, {current, previous}} {
		s := webhooksig.NewSigner(secrets...)
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := range 200 {
					at := signedAt.Add(time.Duration(g*1000+i) * time.Second)
					b := append(bytes.Repeat([]byte("x"), i), body...)
					if got, want := s.Sign(at, b), webhooksig.Sign(at, b, secrets...); got != want {
						t.Errorf("Signer.Sign = %s, Sign = %s", got, want)
						return
					}
				}
			})
		}
		wg.Wait()
	}
}

func TestVerify(t *testing.T) {
	sig := webhooksig.Sign(signedAt, body, current)
	rotating := webhooksig.Sign(signedAt, body, current, previous)
	v := func(secrets ...[]byte) webhooksig.Verifier {
		return webhooksig.Verifier{Secrets: secrets, Now: at(signedAt.Add(time.Minute))}
	}
	for _, tc := range []struct {
		name   string
		v      webhooksig.Verifier
		header string
		body   []byte
		want   error
	}{
		{"valid", v(current), sig, body, nil},
		{"body changed", v(current), sig, []byte(`{"version":1,"step":"resolved"}`), webhooksig.ErrMismatch},
		{"wrong secret", v([]byte("another-secret-0123456789")), sig, body, webhooksig.ErrMismatch},
		{"timestamp changed", v(current), strings.Replace(sig, "t=1764590400", "t=1764590460", 1), body, webhooksig.ErrMismatch},
		{"replayed after the window", webhooksig.Verifier{Secrets: [][]byte{current}, Now: at(signedAt.Add(5*time.Minute + time.Second))}, sig, body, webhooksig.ErrTimestamp},
		{"at the edge of the window", webhooksig.Verifier{Secrets: [][]byte{current}, Now: at(signedAt.Add(5 * time.Minute))}, sig, body, nil},
		{"from the future", webhooksig.Verifier{Secrets: [][]byte{current}, Now: at(signedAt.Add(-6 * time.Minute))}, sig, body, webhooksig.ErrTimestamp},
		{"own tolerance", webhooksig.Verifier{Secrets: [][]byte{current}, Tolerance: 30 * time.Second, Now: at(signedAt.Add(time.Minute))}, sig, body, webhooksig.ErrTimestamp},
		{"rotation: the receiver has the new secret", v(current), rotating, body, nil},
		{"rotation: the receiver still has the old secret", v(previous), rotating, body, nil},
		{"rotation: the receiver holds both", v(previous, current), sig, body, nil},
		{"no header", v(current), "", body, webhooksig.ErrMalformed},
		{"old scheme", v(current), "sha256=" + strings.TrimPrefix(sig, "t=1764590400,v1="), body, webhooksig.ErrMalformed},
		{"no v1", v(current), "t=1764590400", body, webhooksig.ErrMalformed},
		{"bad t", v(current), strings.Replace(sig, "t=1764590400", "t=yesterday", 1), body, webhooksig.ErrMalformed},
		{"short v1", v(current), "t=1764590400,v1=abcd", body, webhooksig.ErrMalformed},
		{"unknown keys are ignored", v(current), sig + ",v2=whatever", body, nil},
	} {
		if err := tc.v.Verify(tc.header, tc.body); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if err := webhooksig.Verify(current, webhooksig.Sign(time.Now(), body, current), body); err != nil {
		t.Errorf("Verify now: %v", err)
	}
}
