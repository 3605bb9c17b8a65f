package httpport

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/feedloop/feedloop/services/intake/internal/auth"
)

// Realm names intake in WWW-Authenticate.
const Realm = "feedloop-intake"

// AuthMiddleware admits requests with a valid "Authorization: Bearer <key>" to
// next, with the caller in their context, and answers the others 401 with
// a WWW-Authenticate challenge (RFC 6750) and a JSON error body, before
// their body is read.
func AuthMiddleware(a *auth.Authenticator, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, present := r.Header["Authorization"]
		var value string
		if present {
			value = v[0]
		}
		c, err := a.Authenticate(r.Context(), value, present, "Authorization")
		if err != nil {
			challenge := `Bearer realm="` + Realm + `"`
			if !errors.Is(err, auth.ErrMissing) {
				challenge += `, error="invalid_token"`
			}
			w.Header().Set("WWW-Authenticate", challenge)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		next.ServeHTTP(w, r.WithContext(auth.WithCaller(r.Context(), c)))
	})
}
