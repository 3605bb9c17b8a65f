// Package redact replaces personal data in free text with placeholders:
// email addresses, phone numbers, payment card numbers (Luhn-checked) and
// IBANs (mod-97- and length-checked), and counts what it replaced.
//
// It is deliberately conservative about numbers: a digit run is a card only
// when its checksum holds, and a phone number needs a phone-like shape (a
// leading + or 00, a leading 0 with an area-code separator, an area code in
// parentheses, or the 3-3-4 North American grouping), so order numbers and
// dates stay readable for the teams.
package redact

import (
	"regexp"
	"strings"
)

// Kinds of personal data, the keys of the counts.
const (
	Email = "email"
	Phone = "phone"
	Card  = "card"
	IBAN  = "iban"
)

// Placeholder returns the text that replaces an item of kind.
func Placeholder(kind string) string { return "[" + kind + "]" }

var (
	emailRE = regexp.MustCompile(`(?i)[a-z0-9._%+\-]+@[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?)*\.[a-z]{2,}`)
	// An IBAN candidate: country, check digits, then up to 30 characters,
	// optionally grouped by spaces or dashes. The exact length comes from
	// the country, so the match may run on into the next word and is cut.
	ibanRE = regexp.MustCompile(`(?i)\b[a-z]{2}[0-9]{2}(?:[ \-]?[a-z0-9]){11,30}`)
	cardRE = regexp.MustCompile(`\b[0-9](?:[ \-]?[0-9]){12,18}\b`)
	// Phone shapes, see the package comment.
	phoneREs = []*regexp.Regexp{
		regexp.MustCompile(`(?:\+|\b00)[0-9][0-9 ()\-/.]{5,22}[0-9]`),
		regexp.MustCompile(`\(\+?[0-9]{2,5}\)[ \-]?[0-9][0-9 \-]{4,14}[0-9]`),
		regexp.MustCompile(`\b0[0-9]{2,4}[ \-/][0-9][0-9 \-]{3,12}[0-9]\b`),
		regexp.MustCompile(`\b[0-9]{3}[ .\-][0-9]{3}[ .\-][0-9]{4}\b`),
	}
)

// Text returns s with personal data replaced by placeholders, and how many
// items of each kind it replaced (only kinds with at least one item).
func Text(s string) (string, map[string]int32) {
	// Most feedback holds no personal data: the regexps run only when the
	// text has what their matches need (an '@'; enough ASCII digits for an
	// IBAN's check digits, a card, a phone number), which skips them for
	// most items. Emails are replaced first and hold no more digits than the
	// text, so counting digits up front never skips a possible match.
	at, digits := strings.IndexByte(s, '@') >= 0, countDigits(s)
	if !at && digits < minIBANDigits {
		return s, nil
	}
	counts := map[string]int32{}
	if at {
		s = emailRE.ReplaceAllStringFunc(s, func(m string) string {
			counts[Email]++
			return Placeholder(Email)
		})
	}
	if digits < minIBANDigits {
		return s, countsOrNil(counts)
	}
	s = ibanRE.ReplaceAllStringFunc(s, func(m string) string {
		n, ok := ibanPrefix(m)
		if !ok {
			return m
		}
		counts[IBAN]++
		return Placeholder(IBAN) + m[n:]
	})
	if digits >= minCardDigits {
		s = cardRE.ReplaceAllStringFunc(s, func(m string) string {
			if !Luhn(digitsOf(m)) {
				return m
			}
			counts[Card]++
			return Placeholder(Card)
		})
	}
	if digits >= minPhoneDigits {
		for _, re := range phoneREs {
			s = re.ReplaceAllStringFunc(s, func(m string) string {
				if n := len(digitsOf(m)); n < minPhoneDigits || n > maxPhoneDigits {
					return m
				}
				counts[Phone]++
				return Placeholder(Phone)
			})
		}
	}
	return s, countsOrNil(counts)
}

// The fewest ASCII digits a match needs: an IBAN's two check digits
// (ibanRE), a card's 13 (cardRE), a phone number's 7 (checked on each
// match).
const (
	minIBANDigits  = 2
	minCardDigits  = 13
	minPhoneDigits = 7
	maxPhoneDigits = 15
)

func countsOrNil(counts map[string]int32) map[string]int32 {
	if len(counts) == 0 {
		return nil
	}
	return counts
}

func countDigits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			n++
		}
	}
	return n
}

// Luhn reports whether digits (ASCII digits only, at least two) pass the
// Luhn checksum that every payment card number carries.
func Luhn(digits string) bool {
	if len(digits) < 2 {
		return false
	}
	sum := 0
	double := false
	for i := len(digits) - 1; i >= 0; i-- {
		c := digits[i]
		if c < '0' || c > '9' {
			return false
		}
		d := int(c - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// ValidIBAN reports whether s (spaces and dashes allowed, any case) is an
// IBAN of the right length for its country with valid mod-97 check digits.
func ValidIBAN(s string) bool {
	compact := strings.ToUpper(strings.NewReplacer(" ", "", "-", "").Replace(s))
	if len(compact) < 4 || ibanLengths[compact[:2]] != len(compact) {
		return false
	}
	return mod97(compact) == 1
}

// ibanPrefix returns the byte length of the IBAN at the start of m, cut to
// its country's length; ok is false when there is none or the characters
// after it continue the same word.
func ibanPrefix(m string) (n int, ok bool) {
	want := ibanLengths[strings.ToUpper(m[:2])]
	if want == 0 {
		return 0, false
	}
	count := 0
	for i := 0; i < len(m); i++ {
		if m[i] == ' ' || m[i] == '-' {
			continue
		}
		count++
		if count == want {
			n = i + 1
			break
		}
	}
	if count < want {
		return 0, false
	}
	if n < len(m) && isAlnum(m[n]) {
		return 0, false
	}
	if !ValidIBAN(m[:n]) {
		return 0, false
	}
	return n, true
}

// mod97 computes the ISO 7064 MOD 97-10 remainder of an IBAN: the first four
// characters move to the end and letters count as 10..35.
func mod97(iban string) int {
	r := 0
	for _, c := range iban[4:] + iban[:4] {
		switch {
		case c >= '0' && c <= '9':
			r = (r*10 + int(c-'0')) % 97
		case c >= 'A' && c <= 'Z':
			r = (r*100 + int(c-'A') + 10) % 97
		default:
			return -1
		}
	}
	return r
}

func digitsOf(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// ibanLengths is the IBAN length of each country in the SWIFT IBAN registry.
var ibanLengths = map[string]int{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
	"BH": 22, "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24,
	"DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
	"FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
	"GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
	"JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
	"LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27,
	"MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28,
	"PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
	"SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
	"TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}
