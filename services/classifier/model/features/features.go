// Package features turns text into the hashed n-gram terms a linear model
// reads: Unicode normalisation (NFKC, case folding, optional accent
// removal on Latin letters), tokenisation that keeps emoji and splits
// mixed scripts, word n-grams and character n-grams inside word
// boundaries, each hashed into a fixed space of 2^HashBits buckets.
//
// Weighting (TF-IDF, normalisation) needs corpus statistics and lives with
// the model; this package only counts.
package features

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"github.com/feedloop/feedloop/services/classifier/model/wordvec"
)

// Block says which family a term belongs to; each block is normalised on
// its own, so word and character evidence weigh the same.
type Block uint8

const (
	// Words are word n-grams.
	Words Block = iota
	// Chars are character n-grams inside a word.
	Chars
	// Vectors are the words found in the word vector table
	// (Config.WordVectors): Hash is the word's row in the table. They
	// follow the n-gram terms and become one dense block, not n-grams.
	Vectors
	// NumBlocks is the number of blocks.
	NumBlocks
)

func (b Block) String() string {
	switch b {
	case Words:
		return "word"
	case Chars:
		return "char"
	case Vectors:
		return "vectors"
	}
	return fmt.Sprintf("block(%d)", uint8(b))
}

// Config says which terms are extracted. The zero value is not useful:
// start from Default.
type Config struct {
	// HashBits is the size of the hash space, 2^HashBits buckets (10–30).
	HashBits int `json:"hash_bits"`
	// WordMin and WordMax are the word n-gram orders (1–2: words and
	// pairs of words); WordMax 0 turns word terms off.
	WordMin int `json:"word_min"`
	WordMax int `json:"word_max"`
	// CharMin and CharMax are the character n-gram lengths taken inside
	// each word padded with '<' and '>'; CharMax 0 turns them off.
	CharMin int `json:"char_min"`
	CharMax int `json:"char_max"`
	// StripAccents removes combining accents from Latin letters
	// ("café" reads as "cafe"); marks of other scripts are kept.
	StripAccents bool `json:"strip_accents"`
	// WordVectors names a table of package wordvec ("" = none): the
	// words of a text found in it become Vectors terms, which the model
	// turns into the IDF-weighted mean of their unit vectors, a dense
	// block after the n-grams of weight WordVectorWeight (its L2 norm;
	// the n-grams have norm 1). Pre-trained vectors know paraphrases the
	// training text never showed ("reimbursement" for "refund").
	WordVectors      string  `json:"word_vectors,omitempty"`
	WordVectorWeight float64 `json:"word_vector_weight,omitempty"`
}

// Default is the configuration that won across the project's datasets.
func Default() Config {
	return Config{HashBits: 22, WordMin: 1, WordMax: 2, CharMin: 2, CharMax: 5, StripAccents: true}
}

// ErrConfig is wrapped by Validate's errors.
var ErrConfig = errors.New("invalid feature config")

// Validate reports a configuration that cannot be used.
func (c Config) Validate() error {
	switch {
	case c.HashBits < 10 || c.HashBits > 30:
		return fmt.Errorf("%w: hash_bits %d not in 10..30", ErrConfig, c.HashBits)
	case c.WordMax < 0 || c.WordMax > 4 || c.WordMax > 0 && (c.WordMin < 1 || c.WordMin > c.WordMax):
		return fmt.Errorf("%w: word n-grams %d..%d (want 1 ≤ min ≤ max ≤ 4, or max 0)", ErrConfig, c.WordMin, c.WordMax)
	case c.CharMax < 0 || c.CharMax > 8 || c.CharMax > 0 && (c.CharMin < 1 || c.CharMin > c.CharMax):
		return fmt.Errorf("%w: char n-grams %d..%d (want 1 ≤ min ≤ max ≤ 8, or max 0)", ErrConfig, c.CharMin, c.CharMax)
	case c.WordMax == 0 && c.CharMax == 0:
		return fmt.Errorf("%w: neither word nor char n-grams", ErrConfig)
	case c.WordVectors == "" && c.WordVectorWeight != 0:
		return fmt.Errorf("%w: word vector weight %v without a word vector table", ErrConfig, c.WordVectorWeight)
	case c.WordVectors != "" && !(c.WordVectorWeight > 0 && c.WordVectorWeight <= 10):
		return fmt.Errorf("%w: word vector weight %v not in (0, 10]", ErrConfig, c.WordVectorWeight)
	case c.WordVectors != "" && wordvec.Dim(c.WordVectors) > MaxVectorDim:
		return fmt.Errorf("%w: word vectors of %d dimensions, at most %d", ErrConfig, wordvec.Dim(c.WordVectors), MaxVectorDim)
	}
	if c.WordVectors != "" {
		if _, err := wordvec.Load(c.WordVectors); err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	return nil
}

// MaxVectorDim bounds the word vectors' dimensions (the model sums them
// in a fixed array, without allocating).
const MaxVectorDim = 256

// WithWordVectors is c with the embedded GloVe table as a dense block of
// weight 1, the setting measured in docs/classifier.md.
func (c Config) WithWordVectors() Config {
	c.WordVectors, c.WordVectorWeight = wordvec.GloVe6B100d50k, 1
	return c
}

var apostrophes = strings.NewReplacer("\u2019", "'", "\u2018", "'", "\u02bc", "'", "`", "'", "\u00b4", "'")

// Normalize returns s in NFKC form, case-folded ("Straße" → "strasse"),
// with typographic apostrophes made plain and, with stripAccents, without
// the accents of Latin letters ("Ça" → "ca"). Invalid UTF-8 bytes become
// U+FFFD.
func Normalize(s string, stripAccents bool) string {
	if ascii(s) {
		// NFKC, folding and accents are no-ops on ASCII but for case.
		b := []byte(s)
		for i, c := range b {
			switch {
			case c >= 'A' && c <= 'Z':
				b[i] = c + 'a' - 'A'
			case c == '`':
				b[i] = '\''
			}
		}
		return string(b)
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = cases.Fold().String(norm.NFKC.String(s))
	s = apostrophes.Replace(s)
	if !stripAccents {
		return s
	}
	d := norm.NFD.String(s)
	var b strings.Builder
	b.Grow(len(d))
	latin := false
	for _, r := range d {
		if unicode.Is(unicode.Mn, r) {
			if latin {
				continue
			}
		} else {
			latin = unicode.Is(unicode.Latin, r)
		}
		b.WriteRune(r)
	}
	return norm.NFC.String(b.String())
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// Token is one unit of a normalised text.
type Token struct {
	// Text is the token as it appears in the normalised text.
	Text string
	// Word is true for runs of letters, digits and marks (which get
	// character n-grams); false for emoji, symbols, '!' and '?'.
	Word bool
}

// Tokenize cuts normalised text into tokens: words are runs of letters,
// digits and combining marks of one script (an apostrophe between two
// letters stays inside: "don't"), so "hello世界" is two words; every emoji,
// other symbol, currency sign, '!' and '?' is a token of its own; emoji
// modifiers, variation selectors and joiners are dropped; everything else
// separates tokens.
func Tokenize(s string) []Token {
	return appendTokens(make([]Token, 0, len(s)/4+1), s)
}

// appendTokens appends the tokens of s to toks.
func appendTokens(toks []Token, s string) []Token {
	start := -1 // byte offset of the current word, -1 outside a word
	var script *unicode.RangeTable
	for i, r := range s {
		switch {
		case r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= '0' && r <= '9'):
			// the common case of lower-case ASCII words, as below
			if start < 0 {
				start = i
			}
			if r >= 'a' {
				if script != nil && script != unicode.Latin {
					toks = append(toks, Token{Text: s[start:i], Word: true})
					start = i
				}
				script = unicode.Latin
			}
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) && !isJoiner(r):
			sc := scriptOf(r)
			if start >= 0 && sc != nil && script != nil && sc != script {
				toks = append(toks, Token{Text: s[start:i], Word: true})
				start, script = -1, nil
			}
			if start < 0 {
				start = i
			}
			if sc != nil {
				script = sc
			}
		case r == '\'' && start >= 0 && nextIsLetter(s[i+1:]):
			// inside a word
		case isJoiner(r) || isModifier(r):
			// part of an emoji sequence: ignored
		case unicode.Is(unicode.So, r) || unicode.Is(unicode.Sc, r) || r == '!' || r == '?':
			if start >= 0 {
				toks = append(toks, Token{Text: s[start:i], Word: true})
				start, script = -1, nil
			}
			toks = append(toks, Token{Text: s[i : i+utf8.RuneLen(r)]})
		default:
			if start >= 0 {
				toks = append(toks, Token{Text: s[start:i], Word: true})
				start, script = -1, nil
			}
		}
	}
	if start >= 0 {
		toks = append(toks, Token{Text: s[start:], Word: true})
	}
	return toks
}

func nextIsLetter(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return unicode.IsLetter(r)
}

// isJoiner is true for the zero-width joiner and variation selectors.
func isJoiner(r rune) bool {
	return r == '\u200d' || r == '\u200c' || r >= '\ufe00' && r <= '\ufe0f' || r >= 0xe0100 && r <= 0xe01ef
}

// isModifier is true for the emoji skin-tone modifiers and tag characters.
func isModifier(r rune) bool {
	return r >= 0x1f3fb && r <= 0x1f3ff || r >= 0xe0020 && r <= 0xe007f
}

// scripts that decide word boundaries; a letter of none of them (and
// digits, marks) continues the current word.
var scripts = []*unicode.RangeTable{
	unicode.Latin, unicode.Cyrillic, unicode.Greek, unicode.Arabic, unicode.Hebrew,
	unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul, unicode.Thai,
	unicode.Devanagari, unicode.Bengali, unicode.Tamil, unicode.Telugu, unicode.Gujarati,
	unicode.Gurmukhi, unicode.Kannada, unicode.Malayalam, unicode.Armenian, unicode.Georgian,
}

func scriptOf(r rune) *unicode.RangeTable {
	if r < 0x80 {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return unicode.Latin
		}
		return nil
	}
	if !unicode.IsLetter(r) {
		return nil
	}
	for _, t := range scripts {
		if unicode.Is(t, r) {
			if t == unicode.Hiragana || t == unicode.Katakana {
				return unicode.Han // Japanese mixes them inside words
			}
			return t
		}
	}
	return nil
}

// Term is one hashed feature of a text and how often it occurs.
type Term struct {
	// Hash is the bucket, < 2^HashBits.
	Hash uint32
	// Block is the term's family.
	Block Block
	// Count is how often the term occurs in the text.
	Count uint32
}

// Gram is a term with its text, for explanations.
type Gram struct {
	Hash  uint32
	Block Block
	// Text is the n-gram: words joined by a space, or characters with '<'
	// and '>' marking the word's start and end.
	Text string
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
	// sep separates the words of a word n-gram inside the hash.
	sep = 0x1f
)

func hashBytes(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// finish mixes the high bits down (FNV's low bits are weak) and masks.
func finish(h uint64, bits int) uint32 {
	h ^= h >> 29
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 32
	return uint32(h) & (1<<bits - 1)
}

// HashWords is the hash of the word n-gram made of words.
func (c Config) HashWords(words ...string) uint32 {
	h := uint64(fnvOffset)
	h = hashBytes(h, "w")
	for i, w := range words {
		if i > 0 {
			h ^= sep
			h *= fnvPrime
		}
		h = hashBytes(h, w)
	}
	return finish(h, c.HashBits)
}

// HashChars is the hash of the character n-gram g (with its '<' '>'
// markers).
func (c Config) HashChars(g string) uint32 {
	return finish(hashBytes(hashBytes(fnvOffset, "c"), g), c.HashBits)
}

// each calls fn for every term occurrence of the tokens: word n-grams
// (tokens[i:i+n]) and character n-grams (g, a substring of the padded
// token), until fn returns false.
func (c Config) each(toks []Token, fn func(h uint32, b Block, i, n int, g string) bool) {
	if c.WordMax > 0 {
		for i := range toks {
			for n := c.WordMin; n <= c.WordMax && i+n <= len(toks); n++ {
				h := wordSeed
				for j := i; j < i+n; j++ {
					if j > i {
						h ^= sep
						h *= fnvPrime
					}
					h = hashBytes(h, toks[j].Text)
				}
				if !fn(finish(h, c.HashBits), Words, i, n, "") {
					return
				}
			}
		}
	}
	if c.CharMax > 0 {
		var offs []int
		for _, t := range toks {
			if !t.Word {
				continue
			}
			p := "<" + t.Text + ">"
			offs = offs[:0]
			for i := range p {
				offs = append(offs, i)
			}
			offs = append(offs, len(p))
			nr := len(offs) - 1
			for n := c.CharMin; n <= c.CharMax && n <= nr; n++ {
				for i := 0; i+n <= nr; i++ {
					g := p[offs[i]:offs[i+n]]
					if !fn(c.HashChars(g), Chars, 0, 0, g) {
						return
					}
				}
			}
		}
	}
}

func wordText(toks []Token, i, n int) string {
	if n == 1 {
		return toks[i].Text
	}
	parts := make([]string, n)
	for j := range parts {
		parts[j] = toks[i+j].Text
	}
	return strings.Join(parts, " ")
}

// Terms returns the terms of text (normalised here), sorted by hash and
// block, each once with its count. Two terms of different blocks that
// share a bucket stay apart. With WordVectors, the Vectors terms follow,
// sorted by row.
func (c Config) Terms(text string) []Term {
	var b Buffer
	return c.AppendTerms(nil, text, &b)
}

// Buffer is the scratch memory of AppendTerms. Reusing one (per
// goroutine, or from a sync.Pool) makes term extraction allocation-free
// for ASCII texts. The zero value is ready to use.
type Buffer struct {
	norm      []byte
	toks      []Token
	keys, tmp []uint32
	offs      []int
	rows      []uint32
}

// AppendTerms appends the terms of text to dst, as Terms returns them,
// using b's memory for the intermediate steps.
func (c Config) AppendTerms(dst []Term, text string, b *Buffer) []Term {
	var s string
	if ascii(text) {
		// Normalize's ASCII path, into b.norm: the string is only read by
		// the tokens, which are cleared before returning.
		b.norm = append(b.norm[:0], text...)
		for i, ch := range b.norm {
			switch {
			case ch >= 'A' && ch <= 'Z':
				b.norm[i] = ch + 'a' - 'A'
			case ch == '`':
				b.norm[i] = '\''
			}
		}
		if len(b.norm) > 0 {
			s = unsafe.String(&b.norm[0], len(b.norm))
		}
	} else {
		s = Normalize(text, c.StripAccents)
	}
	b.toks = appendTokens(b.toks[:0], s)
	// Keys hash<<1|block fit 31 bits (HashBits ≤ 30): radix-sorted.
	keys := c.appendKeys(b.keys[:0], b.toks, b)
	b.rows = b.rows[:0]
	if c.WordVectors != "" {
		b.rows = c.appendRows(b.rows, b.toks)
	}
	clear(b.toks) // no reference to the text outlives the call
	keys, b.tmp = radixSort(keys, b.tmp, c.HashBits+1)
	b.keys = keys
	for i := 0; i < len(keys); {
		j := i + 1
		for j < len(keys) && keys[j] == keys[i] {
			j++
		}
		dst = append(dst, Term{Hash: keys[i] >> 1, Block: Block(keys[i] & 1), Count: uint32(j - i)})
		i = j
	}
	slices.Sort(b.rows)
	for i := 0; i < len(b.rows); {
		j := i + 1
		for j < len(b.rows) && b.rows[j] == b.rows[i] {
			j++
		}
		dst = append(dst, Term{Hash: b.rows[i], Block: Vectors, Count: uint32(j - i)})
		i = j
	}
	return dst
}

// appendRows appends the word vector table's rows of the word tokens. The
// table has no word with an apostrophe (nor "n't", "'s": its text was cut
// the Penn Treebank way and such pieces were dropped), so "don't" is
// looked up as "do" and "not", "can't" as "can" and "not", and "it's" as
// "it".
func (c Config) appendRows(rows []uint32, toks []Token) []uint32 {
	tab, err := wordvec.Load(c.WordVectors)
	if err != nil {
		return rows // Validate reports it
	}
	add := func(w string) {
		if r, ok := tab.Row(w); ok {
			rows = append(rows, uint32(r))
		}
	}
	for _, t := range toks {
		if !t.Word {
			continue
		}
		w := t.Text
		i := strings.IndexByte(w, '\'')
		switch {
		case i < 0:
			add(w)
		case strings.HasSuffix(w, "n't"):
			base := w[:len(w)-3]
			switch base {
			case "ca":
				base = "can"
			case "wo":
				base = "will"
			case "sha":
				base = "shall"
			}
			add(base)
			add("not")
		default:
			add(w[:i])
		}
	}
	return rows
}

var (
	wordSeed = hashBytes(fnvOffset, "w")
	charSeed = hashBytes(fnvOffset, "c")
)

// appendKeys appends hash<<1|block of every term occurrence of toks, as
// each finds them (in another order): a character n-gram's hash extends
// the hash of the one a character shorter at the same start.
func (c Config) appendKeys(keys []uint32, toks []Token, b *Buffer) []uint32 {
	if c.WordMax > 0 {
		for i := range toks {
			h := wordSeed
			for n := 1; n <= c.WordMax && i+n <= len(toks); n++ {
				if n > 1 {
					h ^= sep
					h *= fnvPrime
				}
				h = hashBytes(h, toks[i+n-1].Text)
				if n >= c.WordMin {
					keys = append(keys, finish(h, c.HashBits)<<1|uint32(Words))
				}
			}
		}
	}
	if c.CharMax > 0 {
		for _, t := range toks {
			if !t.Word {
				continue
			}
			// The padded token "<"+t.Text+">" has nr characters; offs are
			// the byte offsets of t.Text's characters, with its length.
			offs := b.offs[:0]
			for i := range t.Text {
				offs = append(offs, i)
			}
			offs = append(offs, len(t.Text))
			b.offs = offs
			nr := len(offs) + 1
			for i := 0; i < nr; i++ {
				h := charSeed
				for n := 1; n <= c.CharMax && i+n <= nr; n++ {
					switch j := i + n - 1; j { // the character added
					case 0:
						h = (h ^ '<') * fnvPrime
					case nr - 1:
						h = (h ^ '>') * fnvPrime
					default:
						h = hashBytes(h, t.Text[offs[j-1]:offs[j]])
					}
					if n >= c.CharMin {
						keys = append(keys, finish(h, c.HashBits)<<1|uint32(Chars))
					}
				}
			}
		}
	}
	return keys
}

// radixSort sorts keys of up to bits bits: insertion sort when short,
// else passes of 8 bits through tmp. It returns the sorted keys and the
// other buffer, for reuse.
func radixSort(a, tmp []uint32, bits int) (sorted, spare []uint32) {
	if len(a) < 64 {
		slices.Sort(a)
		return a, tmp
	}
	if cap(tmp) < len(a) {
		tmp = make([]uint32, len(a), cap(a))
	}
	b := tmp[:len(a)]
	var count [256]int
	for shift := 0; shift < bits; shift += 8 {
		clear(count[:])
		for _, k := range a {
			count[k>>shift&0xff]++
		}
		sum := 0
		for i, n := range count {
			count[i] = sum
			sum += n
		}
		for _, k := range a {
			d := k >> shift & 0xff
			b[count[d]] = k
			count[d]++
		}
		a, b = b, a
	}
	return a, b
}

// Grams returns every distinct n-gram of text with its hash, in the order
// they first occur: the reverse map from a text's terms to readable
// n-grams. The first n-gram seen wins when two share a hash and block.
func (c Config) Grams(text string) []Gram {
	return c.Name(text, nil)
}

// Name is Grams restricted to the given terms (all when nil): the texts of
// a few terms of text, cheaply.
func (c Config) Name(text string, terms []Term) []Gram {
	var out []Gram
	var seen map[uint32]bool
	want := make([]uint32, len(terms)) // a few: a scan beats a map
	for i, t := range terms {
		want[i] = t.Hash<<1 | uint32(t.Block)
	}
	if terms == nil {
		seen = map[uint32]bool{}
	}
	toks := Tokenize(Normalize(text, c.StripAccents))
	c.each(toks, func(h uint32, b Block, i, n int, g string) bool {
		k := h<<1 | uint32(b)
		if terms != nil {
			// Found terms leave want: the scan stops when all are named.
			at := slices.Index(want, k)
			if at < 0 {
				return true
			}
			want = slices.Delete(want, at, at+1)
		} else if seen[k] {
			return true
		} else {
			seen[k] = true
		}
		if b == Words {
			g = wordText(toks, i, n)
		}
		out = append(out, Gram{Hash: h, Block: b, Text: g})
		return terms == nil || len(want) > 0
	})
	return out
}
