package app

import "testing"

func TestLoggedHidesTheAddress(t *testing.T) {
	for in, want := range map[string]string{
		"ada.lovelace@example.com": "a…@example.com",
		"billing-webhook":          "billing-webhook",
		"team@acme.example":        "t…@acme.example",
		"zoë@example.com":          "z…@example.com",
		"ömer@example.com":         "ö…@example.com",
	} {
		if got := logged(in); got != want {
			t.Errorf("logged(%q) = %q, want %q", in, got, want)
		}
	}
}
