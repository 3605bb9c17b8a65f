package app

import (
	"strings"
	"unicode/utf8"
)

// logged is a recipient as the log shows it: an email address with its
// local part hidden (a.…@example.com), since logs are read by everyone in
// ops and kept for long; the feedback id finds the delivery. Team channel
// names stay as they are.
func logged(recipient string) string {
	local, domain, ok := strings.Cut(recipient, "@")
	if !ok || local == "" {
		return recipient
	}
	first, _ := utf8.DecodeRuneInString(local)
	return string(first) + "…@" + domain
}
