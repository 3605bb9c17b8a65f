// Package webhooksig signs and verifies feedloop webhooks. A receiver
// written in Go imports it to check a request; it needs nothing but the
// standard library.
//
// The signature header carries the time of signing inside the signed
// bytes, so a captured request cannot be replayed later:
//
//	X-Feedloop-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//
// During a secret rotation the notifier signs with both secrets and the
// header carries two v1 values; a receiver accepts the request if any v1
// matches a secret it holds. Unknown keys are ignored, so a later scheme
// (v2) can be added beside v1.
package webhooksig

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Header is the name of the signature header.
const Header = "X-Feedloop-Signature"

// DefaultTolerance is how far the signing time may be from the receiver's
// clock, either way: long enough for retries in flight and clock skew,
// short enough that a captured request is soon worthless.
const DefaultTolerance = 5 * time.Minute

// Errors of Verify.
var (
	ErrMalformed = errors.New("webhooksig: malformed signature header")
	ErrTimestamp = errors.New("webhooksig: timestamp outside the tolerance")
	ErrMismatch  = errors.New("webhooksig: no signature matches")
)

// Sign returns the header value for body signed at t by each secret, in
// the order given (the current secret first, then the previous one).
func Sign(t time.Time, body []byte, secrets ...[]byte) string {
	return NewSigner(secrets...).Sign(t, body)
}

// Signer signs with fixed secrets, reusing its keyed HMACs across calls (a fresh one hashes the key's pads again and allocates
// several times): for a sender that signs every request.
type Signer struct {
	macs []sync.Pool // per secret, of hash.Hash keyed with it
}

// NewSigner returns a Signer for secrets, in Sign's order.
func NewSigner(secrets ...[]byte) *Signer {
	s := &Signer{macs: make([]sync.Pool, len(secrets))}
	for i, secret := range secrets {
		key := bytes.Clone(secret)
		s.macs[i].New = func() any { return hmac.New(sha256.New, key) }
	}
	return s
}

// Sign returns the header value for body signed at t by the Signer's
// secrets (see the package Sign).
func (s *Signer) Sign(t time.Time, body []byte) string {
	var tsBuf [20]byte
	ts := strconv.AppendInt(tsBuf[:0], t.Unix(), 10)
	out := make([]byte, 0, len("t=")+len(ts)+len(s.macs)*len(",v1=")+len(s.macs)*2*sha256.Size)
	out = append(out, "t="...)
	out = append(out, ts...)
	var sum [sha256.Size]byte
	for i := range s.macs {
		m := s.macs[i].Get().(hash.Hash)
		m.Reset()
		m.Write(ts)
		m.Write([]byte{'.'})
		m.Write(body)
		out = append(out, ",v1="...)
		out = hex.AppendEncode(out, m.Sum(sum[:0]))
		s.macs[i].Put(m)
	}
	return string(out)
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verifier checks signature headers.
type Verifier struct {
	// Secrets are the secrets the receiver accepts: one, or the new and
	// the old during a rotation.
	Secrets [][]byte
	// Tolerance is how far the signing time may be from Now (default
	// DefaultTolerance).
	Tolerance time.Duration
	// Now is the receiver's clock (default time.Now).
	Now func() time.Time
}

// Verify checks header against the raw body: well formed, signed within
// the tolerance, and one v1 value the HMAC of one secret (compared in
// constant time). It returns ErrMalformed, ErrTimestamp or ErrMismatch.
func (v Verifier) Verify(header string, body []byte) error {
	tolerance, now := v.Tolerance, v.Now
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if now == nil {
		now = time.Now
	}
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%w: %q is not key=value", ErrMalformed, part)
		}
		switch k {
		case "t":
			ts = val
		case "v1":
			sig, err := hex.DecodeString(val)
			if err != nil || len(sig) != sha256.Size {
				return fmt.Errorf("%w: v1 must be 64 hex digits", ErrMalformed)
			}
			sigs = append(sigs, sig)
		}
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: t must be unix seconds, got %q", ErrMalformed, ts)
	}
	if len(sigs) == 0 {
		return fmt.Errorf("%w: no v1 signature", ErrMalformed)
	}
	if age := now().Sub(time.Unix(unix, 0)); age > tolerance || age < -tolerance {
		return fmt.Errorf("%w: signed %s ago, tolerance %s", ErrTimestamp, age.Round(time.Second), tolerance)
	}
	for _, secret := range v.Secrets {
		want := mac(secret, ts, body)
		for _, sig := range sigs {
			if hmac.Equal(sig, want) {
				return nil
			}
		}
	}
	return ErrMismatch
}

// Verify checks header against body with one secret, at time.Now, within
// DefaultTolerance.
func Verify(secret []byte, header string, body []byte) error {
	return Verifier{Secrets: [][]byte{secret}}.Verify(header, body)
}
