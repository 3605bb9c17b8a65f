package csrf_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/feedloop/feedloop/services/console/internal/csrf"
)

func post(form url.Values) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/items/x/ack", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

// Only a form carrying the session's own token passes; no session's token
// (empty) matches nothing, not even an empty field.
func TestValid(t *testing.T) {
	tok := csrf.NewToken()
	if tok == "" || tok == csrf.NewToken() {
		t.Fatal("tokens are empty or repeat")
	}
	if !csrf.Valid(post(url.Values{csrf.Field: {tok}}), tok) {
		t.Error("the session's token refused")
	}
	for name, form := range map[string]url.Values{
		"missing": {},
		"other":   {csrf.Field: {csrf.NewToken()}},
		"prefix":  {csrf.Field: {tok[:len(tok)-1]}},
	} {
		if csrf.Valid(post(form), tok) {
			t.Errorf("%s token accepted", name)
		}
	}
	if csrf.Valid(post(url.Values{csrf.Field: {""}}), "") {
		t.Error("an empty token matched a session without one")
	}
}
