package redact

import (
	"maps"
	"testing"
)

func TestText(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
		n    map[string]int32
	}{
		{"nothing personal", "The parcel arrived late, order 1234567 from 2024-01-15, exp 12/26.", "The parcel arrived late, order 1234567 from 2024-01-15, exp 12/26.", nil},
		{"email", "Mail jane.doe+shop@example.co.uk or JOE@Example.com.", "Mail [email] or [email].", map[string]int32{Email: 2}},
		{"visa with spaces", "card 4111 1111 1111 1111 was charged", "card [card] was charged", map[string]int32{Card: 1}},
		{"mastercard compact", "pan 5500000000000004.", "pan [card].", map[string]int32{Card: 1}},
		{"card failing luhn stays", "ref 4111-1111-1111-1112 please", "ref 4111-1111-1111-1112 please", nil},
		{"iban grouped", "IBAN DE89 3704 0044 0532 0130 00 is mine", "IBAN [iban] is mine", map[string]int32{IBAN: 1}},
		{"iban compact lowercase", "to gb82west12345698765432.", "to [iban].", map[string]int32{IBAN: 1}},
		{"iban followed by capitals", "DE89370400440532013000 AND more", "[iban] AND more", map[string]int32{IBAN: 1}},
		{"iban with bad check digits stays", "GB82 WEST 1234 5698 7654 33", "GB82 WEST 1234 5698 7654 33", nil},
		{"iban too long for its country stays", "DE8937040044053201300099", "DE8937040044053201300099", nil},
		{"international phone", "call +49 30 1234567 now", "call [phone] now", map[string]int32{Phone: 1}},
		{"phone with 00 prefix", "or 0044 20 7946 0958.", "or [phone].", map[string]int32{Phone: 1}},
		{"us phone with parens", "+1 (555) 123-4567", "[phone]", map[string]int32{Phone: 1}},
		{"area code in parens", "Tel. (030) 1234567", "Tel. [phone]", map[string]int32{Phone: 1}},
		{"national with leading zero", "mobile 0171-2345678 or 020 7946 0958", "mobile [phone] or [phone]", map[string]int32{Phone: 2}},
		{"north american grouping", "555-123-4567", "[phone]", map[string]int32{Phone: 1}},
		{"everything", "jane@example.com, 4111111111111111, FR14 2004 1010 0505 0001 3M02 606, +33 1 23 45 67 89",
			"[email], [card], [iban], [phone]", map[string]int32{Email: 1, Card: 1, IBAN: 1, Phone: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n := Text(tt.in)
			if got != tt.want {
				t.Errorf("Text(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
			if !maps.Equal(n, tt.n) {
				t.Errorf("counts = %v, want %v", n, tt.n)
			}
		})
	}
}

func TestLuhn(t *testing.T) {
	for s, want := range map[string]bool{
		"4111111111111111": true,
		"4111111111111112": false,
		"5500000000000004": true,
		"378282246310005":  true, // Amex, 15 digits
		"378282246310006":  false,
		"79927398713":      true, // the textbook example
		"79927398710":      false,
		"0":                false,
		"12a4":             false,
	} {
		if got := Luhn(s); got != want {
			t.Errorf("Luhn(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestValidIBAN(t *testing.T) {
	for s, want := range map[string]bool{
		"DE89 3704 0044 0532 0130 00":       true,
		"DE89 3704 0044 0532 0130 01":       false, // check digits
		"DE89 3704 0044 0532 0130 0":        false, // length for DE is 22
		"GB82WEST12345698765432":            true,
		"gb82-west-1234-5698-7654-32":       true,
		"NO9386011117947":                   true, // shortest country
		"FR14 2004 1010 0505 0001 3M02 606": true,
		"XX89 3704 0044 0532 0130 00":       false, // no such country
		"DE":                                false,
	} {
		if got := ValidIBAN(s); got != want {
			t.Errorf("ValidIBAN(%q) = %v, want %v", s, got, want)
		}
	}
}
