package rules

import (
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode/utf8"
)

// pattern is a compiled pattern with the literals one of which every match
// contains, so a text holding none of them is rejected by strings.Contains
// instead of the regexp engine, which tries a pattern that starts with \b
// or is case-insensitive at every position of the text.
type pattern struct {
	re *regexp.Regexp
	// anyOf is empty when the pattern needs no particular literal.
	anyOf []string
}

func newPattern(re *regexp.Regexp) pattern {
	p := pattern{re: re}
	if tree, err := syntax.Parse(re.String(), syntax.Perl); err == nil {
		if lits, ok := requiredLiterals(tree.Simplify()); ok {
			p.anyOf = lits
		}
	}
	return p
}

// match reports whether p matches the folded text; caseless says that
// folded holds no upper-case ASCII letter, KELVIN SIGN or LONG S (which a
// case-insensitive literal would match too), so a literal's lower-case
// form must occur in it for the pattern to match.
func (p pattern) match(folded string, caseless bool) bool {
	if caseless && len(p.anyOf) > 0 && !containsAny(folded, p.anyOf) {
		return false
	}
	return p.re.MatchString(folded)
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// caseless reports whether s holds no rune that a case-insensitive ASCII
// literal matches besides its lower-case form: no upper-case ASCII letter,
// no KELVIN SIGN (k) and no LONG S (s), the only non-ASCII runes in an
// ASCII letter's case-folding orbit.
func caseless(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			return false
		}
		if c >= utf8.RuneSelf {
			return !strings.ContainsRune(s[i:], '\u212a') && !strings.ContainsRune(s[i:], '\u017f')
		}
	}
	return true
}

// requiredLiterals returns strings one of which every match of re contains,
// in lower case for case-insensitive parts; ok is false when it finds none.
// Only ASCII is lowered: a case-insensitive non-ASCII literal gives up.
func requiredLiterals(re *syntax.Regexp) (lits []string, ok bool) {
	switch re.Op {
	case syntax.OpLiteral:
		var b strings.Builder
		for _, r := range re.Rune {
			if re.Flags&syntax.FoldCase != 0 {
				if r >= utf8.RuneSelf {
					return nil, false
				}
				if 'A' <= r && r <= 'Z' {
					r += 'a' - 'A'
				}
			}
			b.WriteRune(r)
		}
		if b.Len() == 0 {
			return nil, false
		}
		return []string{b.String()}, true
	case syntax.OpCapture, syntax.OpPlus:
		return requiredLiterals(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min < 1 {
			return nil, false
		}
		return requiredLiterals(re.Sub[0])
	case syntax.OpConcat:
		// The child whose shortest literal is longest rejects the most text.
		best, bestLen := []string(nil), 0
		for _, sub := range re.Sub {
			l, ok := requiredLiterals(sub)
			if !ok {
				continue
			}
			if n := shortest(l); n > bestLen {
				best, bestLen = l, n
			}
		}
		return best, best != nil
	case syntax.OpAlternate:
		var all []string
		for _, sub := range re.Sub {
			l, ok := requiredLiterals(sub)
			if !ok {
				return nil, false
			}
			all = append(all, l...)
		}
		return all, len(all) > 0
	}
	return nil, false
}

func shortest(lits []string) int {
	n := -1
	for _, l := range lits {
		if n < 0 || len(l) < n {
			n = len(l)
		}
	}
	return n
}
