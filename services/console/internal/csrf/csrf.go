// Package csrf is the console's defence against cross-site form posts: a
// random token per session, kept in the sealed session cookie and repeated
// in a hidden field of every form; a POST whose field does not match is
// refused. (net/http.CrossOriginProtection adds a second, header-based line.)
package csrf

import (
	"crypto/rand"
	"crypto/subtle"
	"net/http"
)

// Field is the form field carrying the token.
const Field = "csrf_token"

// NewToken returns a fresh random token.
func NewToken() string { return rand.Text() }

// Valid reports whether r's form carries want. An empty want (no session)
// never matches.
func Valid(r *http.Request, want string) bool {
	got := r.PostFormValue(Field)
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
