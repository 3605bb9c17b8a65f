package features

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		strip    bool
	}{
		{"Hello WORLD", "hello world", true},
		{"ＡＢＣ１２３", "abc123", true},  // full-width → ASCII (NFKC)
		{"ﬁle", "file", true},       // ligature (NFKC)
		{"Straße", "strasse", true}, // case folding
		{"Café Ça NAÏVE", "cafe ca naive", true},
		{"Café", "café", false},          // accents kept when asked
		{"e\u0301cole", "ecole", true},   // decomposed accent
		{"हिंदी में", "हिंदी में", true}, // Devanagari vowel signs are not accents
		{"Ελληνικά", "ελληνικά", true},   // Greek accents stay (only Latin is stripped)
		{"don’t", "don't", true},         // typographic apostrophe
		{"bad \xff byte", "bad \uFFFD byte", true},
	} {
		if got := Normalize(tc.in, tc.strip); got != tc.want {
			t.Errorf("Normalize(%q, %v) = %q, want %q", tc.in, tc.strip, got, tc.want)
		}
	}
}

func texts(toks []Token) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		out[i] = t.Text
	}
	return out
}

func TestTokenize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"i was charged twice.", []string{"i", "was", "charged", "twice"}},
		{"don't stop", []string{"don't", "stop"}},
		{"'quoted' words'", []string{"quoted", "words"}},
		{"covid19 and 4g", []string{"covid19", "and", "4g"}},
		{"love it 😍😍!", []string{"love", "it", "😍", "😍", "!"}},
		{"ok👍🏽thanks", []string{"ok", "👍", "thanks"}},       // skin tone dropped, emoji splits words
		{"👨‍👩‍👧 family", []string{"👨", "👩", "👧", "family"}}, // ZWJ sequence: its emoji
		{"❤️ it", []string{"❤", "it"}},                      // variation selector dropped
		{"hello世界", []string{"hello", "世界"}},                // script change splits
		{"приветworld мир", []string{"привет", "world", "мир"}},
		{"カタカナとひらがな漢字", []string{"カタカナとひらがな漢字"}}, // Japanese stays one run
		{"price $100 or €5?", []string{"price", "$", "100", "or", "€", "5", "?"}},
		{"مرحبا بالعالم", []string{"مرحبا", "بالعالم"}},
		{"हिंदी में", []string{"हिंदी", "में"}},
		{"a\tb\nc—d", []string{"a", "b", "c", "d"}},
		{"", []string{}},
		{"   ...   ", []string{}},
	} {
		got := texts(Tokenize(tc.in))
		if !slices.Equal(got, tc.want) {
			t.Errorf("Tokenize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tok := range Tokenize("wow 😍 ok!") {
		if isWord := tok.Text == "wow" || tok.Text == "ok"; tok.Word != isWord {
			t.Errorf("token %q: Word = %v", tok.Text, tok.Word)
		}
	}
}

func gramTexts(gs []Gram, b Block) []string {
	var out []string
	for _, g := range gs {
		if g.Block == b {
			out = append(out, g.Text)
		}
	}
	return out
}

func TestNgrams(t *testing.T) {
	c := Config{HashBits: 20, WordMin: 1, WordMax: 2, CharMin: 2, CharMax: 3}
	gs := c.Grams("Ab, CD ab")
	if got, want := gramTexts(gs, Words), []string{"ab", "ab cd", "cd", "cd ab"}; !slices.Equal(got, want) {
		t.Errorf("word n-grams %q, want %q", got, want)
	}
	// <ab> and <cd>: 2-grams then 3-grams per word; the second "ab" repeats.
	if got, want := gramTexts(gs, Chars), []string{"<a", "ab", "b>", "<ab", "ab>", "<c", "cd", "d>", "<cd", "cd>"}; !slices.Equal(got, want) {
		t.Errorf("char n-grams %q, want %q", got, want)
	}
	// Characters, not bytes.
	if got, want := gramTexts(Config{HashBits: 20, CharMin: 3, CharMax: 3}.Grams("né"), Chars), []string{"<né", "né>"}; !slices.Equal(got, want) {
		t.Errorf("char n-grams of né %q, want %q", got, want)
	}
	// Word n-grams only; a word shorter than the n-gram length has none.
	if got := gramTexts(Config{HashBits: 20, WordMin: 2, WordMax: 2}.Grams("one"), Words); len(got) != 0 {
		t.Errorf("bigrams of one word: %q", got)
	}
	// Emoji take part in word n-grams but have no char n-grams.
	gs = c.Grams("great 👍")
	if got := gramTexts(gs, Words); !slices.Contains(got, "great 👍") || !slices.Contains(got, "👍") {
		t.Errorf("word n-grams %q lack the emoji", got)
	}
	for _, g := range gramTexts(gs, Chars) {
		if strings.Contains(g, "👍") {
			t.Errorf("char n-gram %q of an emoji", g)
		}
	}
}

func TestTermsCountAndMatchGrams(t *testing.T) {
	c := Default()
	terms := c.Terms("the cat saw the cat")
	if !slices.IsSortedFunc(terms, func(a, b Term) int {
		return int(int64(a.Hash)<<8|int64(a.Block)) - int(int64(b.Hash)<<8|int64(b.Block))
	}) {
		t.Error("terms not sorted by hash and block")
	}
	count := map[Term]uint32{}
	for _, tm := range terms {
		count[Term{Hash: tm.Hash, Block: tm.Block}] = tm.Count
	}
	if got := count[Term{Hash: c.HashWords("the", "cat"), Block: Words}]; got != 2 {
		t.Errorf(`count of "the cat" = %d, want 2`, got)
	}
	if got := count[Term{Hash: c.HashWords("saw"), Block: Words}]; got != 1 {
		t.Errorf(`count of "saw" = %d, want 1`, got)
	}
	if got := count[Term{Hash: c.HashChars("<ca"), Block: Chars}]; got != 2 {
		t.Errorf(`count of "<ca" = %d, want 2`, got)
	}
	// Every gram is a term and every term has a gram: the reverse map is complete.
	gs := c.Grams("the cat saw the cat")
	if len(gs) != len(terms) {
		t.Errorf("%d grams, %d terms", len(gs), len(terms))
	}
	for _, g := range gs {
		if _, ok := count[Term{Hash: g.Hash, Block: g.Block}]; !ok {
			t.Errorf("gram %q (%s) is not a term", g.Text, g.Block)
		}
	}
	// Name finds just the terms asked for.
	want := []Term{{Hash: c.HashWords("saw", "the"), Block: Words}}
	if got := c.Name("the cat saw the cat", want); len(got) != 1 || got[0].Text != "saw the" {
		t.Errorf("Name = %+v", got)
	}
	// Normalisation happens before hashing.
	if !slices.Equal(c.Terms("THE Cat"), c.Terms("the cat")) {
		t.Error("terms depend on case")
	}
}

// The hashes are part of the model file format: a model trained today must
// find the same buckets tomorrow. A change here needs a new FormatVersion.
func TestHashStability(t *testing.T) {
	c := Config{HashBits: 22}
	for _, tc := range []struct {
		got, want uint32
		what      string
	}{
		{c.HashWords("refund"), 2421682, "refund"},
		{c.HashWords("my", "card"), 3679131, "my card"},
		{c.HashChars("<ref"), 3527817, "<ref"},
		{c.HashChars("😀"), 3042939, "😀"},
	} {
		if tc.got != tc.want {
			t.Errorf("hash of %s = %d, want %d", tc.what, tc.got, tc.want)
		}
	}
	// Blocks hash apart: the word "ab" and the char n-gram "ab" differ.
	if c.HashWords("ab") == c.HashChars("ab") {
		t.Error("word and char n-grams share a hash")
	}
	// Fewer bits keep the low bits.
	if h20, h22 := (Config{HashBits: 20}).HashWords("refund"), c.HashWords("refund"); h20 != h22&(1<<20-1) {
		t.Errorf("20-bit hash %d is not the low bits of %d", h20, h22)
	}
}

func TestValidate(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []Config{
		{HashBits: 5, WordMin: 1, WordMax: 1},
		{HashBits: 20, WordMin: 2, WordMax: 1},
		{HashBits: 20, CharMin: 0, CharMax: 3},
		{HashBits: 20},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

func FuzzFeatures(f *testing.F) {
	for _, s := range []string{"", "hello world", "I was charged twice 😡😡!", "hello世界", "Straße ﬁ ＡＢＣ", "e\u0301\u0301\u0301", "\xff\xfe", "'''", "👨‍👩‍👧‍👦🏽", "हिंदी", "a'b'c"} {
		f.Add(s)
	}
	c := Default()
	c.HashBits = 16
	f.Fuzz(func(t *testing.T, s string) {
		n := Normalize(s, true)
		if !utf8.ValidString(n) {
			t.Fatalf("Normalize(%q) = %q, invalid UTF-8", s, n)
		}
		for _, tok := range Tokenize(n) {
			if tok.Text == "" || !utf8.ValidString(tok.Text) {
				t.Fatalf("bad token %q of %q", tok.Text, s)
			}
		}
		terms := c.Terms(s)
		seen := map[Term]bool{}
		for _, tm := range terms {
			if tm.Hash >= 1<<16 || tm.Count == 0 || tm.Block >= NumBlocks {
				t.Fatalf("bad term %+v of %q", tm, s)
			}
			seen[Term{Hash: tm.Hash, Block: tm.Block}] = true
		}
		if ref := refTerms(c, s); !slices.Equal(terms, ref) {
			t.Fatalf("Terms(%q) = %v, the n-grams counted one by one give %v", s, terms, ref)
		}
		gs := c.Grams(s)
		if len(gs) != len(terms) {
			t.Fatalf("%d grams, %d terms for %q", len(gs), len(terms), s)
		}
		for _, g := range gs {
			if !seen[Term{Hash: g.Hash, Block: g.Block}] {
				t.Fatalf("gram %q not among the terms of %q", g.Text, s)
			}
		}
	})
}

func BenchmarkTerms(b *testing.B) {
	c := Default()
	text := "I was charged twice for my order and the refund still hasn't arrived 😡"
	for b.Loop() {
		c.Terms(text)
	}
}

// The ASCII fast path agrees with the full normalisation.
func TestNormalizeASCIIFastPath(t *testing.T) {
	var b strings.Builder
	for c := 0; c < 128; c++ {
		b.WriteByte(byte(c))
	}
	s := b.String()
	got := Normalize(s, true)
	want := Normalize(s+"é", true)
	if want = strings.TrimSuffix(want, "e"); got != want {
		t.Errorf("fast path %q, full %q", got, want)
	}
}

// refTerms counts the n-grams each enumerates, one by one: what Terms
// computes by its faster route.
func refTerms(c Config, s string) []Term {
	count := map[uint32]uint32{}
	c.each(Tokenize(Normalize(s, c.StripAccents)), func(h uint32, b Block, _, _ int, _ string) bool {
		count[h<<1|uint32(b)]++
		return true
	})
	out := []Term{}
	for _, k := range slices.Sorted(maps.Keys(count)) {
		out = append(out, Term{Hash: k >> 1, Block: Block(k & 1), Count: count[k]})
	}
	return out
}

// AppendTerms with one Buffer reused across texts of every kind and
// length gives what the n-grams counted one by one give, whatever came
// before in the buffer.
func TestAppendTermsReusedBuffer(t *testing.T) {
	long := strings.Repeat("loan company arvest bank due pandemic unable maintain financial obligation ", 8)
	texts := []string{long, "", "hello world", "I was charged twice 😡😡!", "hello世界 Straße ﬁ", "a'b'c don't", "x", long + "é", "ABC abc 123abc"}
	for _, c := range []Config{Default(), {HashBits: 18, WordMin: 2, WordMax: 3, CharMin: 3, CharMax: 5}, {HashBits: 12, CharMin: 1, CharMax: 2}} {
		var b Buffer
		for round := range 2 {
			for _, s := range texts {
				got := c.AppendTerms(nil, s, &b)
				if want := refTerms(c, s); !slices.Equal(got, want) && len(got)+len(want) > 0 {
					t.Fatalf("round %d, %+v: AppendTerms(%.30q) has %d terms, want %d", round, c, s, len(got), len(want))
				}
			}
		}
		// dst is appended to.
		pre := []Term{{Hash: 1, Count: 9}}
		if got := c.AppendTerms(pre, "hello", &b); got[0] != pre[0] || len(got) != 1+len(c.Terms("hello")) {
			t.Errorf("AppendTerms onto %v = %v", pre, got)
		}
	}
}
