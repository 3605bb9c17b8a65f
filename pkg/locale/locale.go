// Package locale is how feedloop reads a customer's locale tag: which
// languages to try for it, and how that language writes a date. The
// notifier's templates and the router's status page both use it, so an
// email and the page it links to agree.
package locale

import (
	"fmt"
	"strings"
	"time"
)

// Normalize lower-cases a locale tag and spells its separators "-".
func Normalize(locale string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(locale), "_", "-"))
}

// Candidates lists the locales tried for locale, most specific first and
// ending with "" (the default): "de-CH" → de-ch, de, "".
func Candidates(locale string) []string {
	l := Normalize(locale)
	var out []string
	for l != "" {
		out = append(out, l)
		i := strings.LastIndexByte(l, '-')
		if i < 0 {
			break
		}
		l = l[:i]
	}
	return append(out, "")
}

var monthNames = map[string][12]string{
	"en": {"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"},
	"de": {"Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober", "November", "Dezember"},
	"fr": {"janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"},
}

// Date formats t's UTC day the way locale writes dates: en "28 March
// 2025", en-US "March 28, 2025", de "28. März 2025", fr "28 mars 2025",
// any other language "2025-03-28"; "" for the zero time.
func Date(locale string, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	t = t.UTC()
	tag := Normalize(locale)
	base, _, _ := strings.Cut(tag, "-")
	month := monthNames[base][t.Month()-1]
	switch {
	case tag == "en-us":
		return fmt.Sprintf("%s %d, %d", month, t.Day(), t.Year())
	case base == "en" || base == "fr":
		return fmt.Sprintf("%d %s %d", t.Day(), month, t.Year())
	case base == "de":
		return fmt.Sprintf("%d. %s %d", t.Day(), month, t.Year())
	default:
		return t.Format("2006-01-02")
	}
}
