package httpport_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/feedloop/feedloop/services/intake/internal/auth"
	"github.com/feedloop/feedloop/services/intake/internal/auth/authtest"
	"github.com/feedloop/feedloop/services/intake/internal/httpport"
)

func TestMiddleware(t *testing.T) {
	var refused atomic.Int64
	a, _ := authtest.Authenticator(t, &refused)
	var bodyRead atomic.Bool
	srv := httptest.NewServer(httpport.AuthMiddleware(a, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		bodyRead.Store(true)
		c, ok := auth.CallerFrom(r.Context())
		if !ok {
			http.Error(w, "no caller", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, c.Source+"/"+c.Key)
	})))
	t.Cleanup(srv.Close)
	post := func(authz ...string) (int, string, http.Header) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, strings.NewReader("{}"))
		if len(authz) > 0 {
			req.Header.Set("Authorization", authz[0])
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}

	if code, body, _ := post("Bearer live"); code != http.StatusOK || body != "helpdesk/zendesk" {
		t.Fatalf("valid key = %d %s", code, body)
	}
	bodyRead.Store(false)
	for _, tc := range []struct {
		name, authz, msg, challenge string
	}{
		{"missing", "", `missing API key: send "Authorization: Bearer <API key>"`, `Bearer realm="feedloop-intake"`},
		{"not bearer", "Basic bGl2ZQ==", `want "Bearer <API key>"`, `Bearer realm="feedloop-intake", error="invalid_token"`},
		{"unknown", "Bearer nope", "unknown API key", `Bearer realm="feedloop-intake", error="invalid_token"`},
		{"expired", "Bearer old", "key expired", `Bearer realm="feedloop-intake", error="invalid_token"`},
		{"revoked", "Bearer gone", "key revoked", `Bearer realm="feedloop-intake", error="invalid_token"`},
	} {
		var code int
		var body string
		var hdr http.Header
		if tc.authz == "" {
			code, body, hdr = post()
		} else {
			code, body, hdr = post(tc.authz)
		}
		var e struct{ Error string }
		if code != http.StatusUnauthorized || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, tc.msg) {
			t.Errorf("%s: %d %s; want 401 with error %q", tc.name, code, body, tc.msg)
		}
		if got := hdr.Get("WWW-Authenticate"); got != tc.challenge {
			t.Errorf("%s: WWW-Authenticate = %q, want %q", tc.name, got, tc.challenge)
		}
		if ct := hdr.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type = %q", tc.name, ct)
		}
	}
	if bodyRead.Load() {
		t.Error("the handler ran (and read the body) for a refused request")
	}
	if n := refused.Load(); n != 5 {
		t.Errorf("%d refusals counted, want 5", n)
	}
}
