package language

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// profilesGz holds per language the most probable trigrams and bigrams and
// every unigram with round(-10 ln p), generated from lingua-go's models
// (Apache-2.0, LICENSE-lingua) by internal/genprofiles.
//
//go:generate sh -c "go run ./internal/genprofiles -lingua \"$(go list -m -f '{{.Dir}}' github.com/pemistahl/lingua-go)\" -o profiles.txt.gz"
//go:embed profiles.txt.gz
var profilesGz []byte

// profile is one language's n-grams (packed by key) with their natural
// log-probabilities.
type profile map[uint64]float32

var (
	codesOnce sync.Once
	codes     map[string]bool
	codesErr  error
)

// knownCodes lists the languages of the embedded profiles, read once per
// process.
func knownCodes() (map[string]bool, error) {
	codesOnce.Do(func() {
		codes = map[string]bool{}
		codesErr = scanProfiles(func(code string) bool { codes[code] = true; return false }, nil)
	})
	return codes, codesErr
}

// readProfiles parses the profiles of the given languages only: all of
// them would take tens of MB where a detector needs a few.
func readProfiles(want []string) (map[string]profile, error) {
	out := map[string]profile{}
	for _, c := range want {
		out[c] = profile{}
	}
	var cur profile
	err := scanProfiles(func(code string) bool {
		cur = out[code]
		return cur != nil
	}, func(key uint64, lp float32) { cur[key] = lp })
	return out, err
}

// scanProfiles reads the embedded profiles: section is called with each
// language and says whether to read its n-grams, which go to ngram.
func scanProfiles(section func(code string) bool, ngram func(key uint64, lp float32)) error {
	zr, err := gzip.NewReader(bytes.NewReader(profilesGz))
	if err != nil {
		return fmt.Errorf("language profiles: %w", err)
	}
	read := false
	sc := bufio.NewScanner(zr)
	for line := 1; sc.Scan(); line++ {
		t := sc.Text()
		switch {
		case t == "" || t[0] == '#':
		case strings.HasPrefix(t, "@ "):
			read = section(t[2:])
		case read:
			gram, q, ok := strings.Cut(t, " ")
			n, err := strconv.Atoi(q)
			key, kok := packKey([]rune(gram))
			if !ok || err != nil || !kok {
				return fmt.Errorf("language profiles: line %d: malformed %q", line, t)
			}
			ngram(key, -float32(n)/10)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("language profiles: %w", err)
	}
	return nil
}

// packKey packs one to three runes into a key: 21 bits a rune, the first
// rune in the highest used field, so lengths never collide (letters are
// never rune 0).
func packKey(r []rune) (uint64, bool) {
	if len(r) < 1 || len(r) > 3 {
		return 0, false
	}
	var k uint64
	for _, c := range r {
		k = k<<21 | uint64(c)&0x1fffff
	}
	return k, true
}

// unknown marks an n-gram a language's profile lacks in a row of NGram.rows.
const unknown = float32(1)

// NGram detects the language of short texts by character trigrams over a
// small candidate set: the sum of each candidate's trigram log-probabilities
// (an unknown trigram backs off to its leading bigram, then its first
// letter, less backoffPenalty, then a floor below the language's rarest
// kept trigram), and a
// softmax over those sums as confidence. It is lingua's low-accuracy mode
// computed in float64 (the softmax shifted by its maximum needs no
// arbitrary precision) from lingua's own data, without its per-word rules:
// a letter no candidate knows costs each candidate its floor, and a script
// only one candidate writes in wins on its unigrams.
type NGram struct {
	codes []string
	// rows maps a packed n-gram to its row in scores: one log-probability
	// per candidate, or unknown; trigram rows are filled with their
	// back-off already, so a known trigram costs one lookup.
	rows   map[uint64]int32
	scores []float32
	floor  []float32
}

// floorMargin puts an n-gram a language never showed below its rarest kept
// trigram (−ln of a tenth).
const floorMargin = 2.3

// backoffPenalty lowers a back-off score (−ln of ≈ 1/150): the profiles
// keep only a language's 5,000 most frequent trigrams, so one it lacks is
// rare in it, far rarer than its leading bigram. Chosen on the UDHR test
// set (accuracy_test.go); 3 to 6 give within half a point.
const backoffPenalty = 5

// NewNGram builds a detector choosing among the given ISO 639-1 codes (at
// least two) from the embedded profiles.
func NewNGram(codes []string) (*NGram, error) {
	codes, err := checkCodes(codes)
	if err != nil {
		return nil, fmt.Errorf("language: %w", err)
	}
	all, err := readProfiles(codes)
	if err != nil {
		return nil, err
	}
	n := len(codes)
	d := &NGram{codes: codes, rows: map[uint64]int32{}, floor: make([]float32, n)}
	for i, c := range codes {
		lowest := float32(0)
		for k, lp := range all[c] {
			if k>>42 != 0 && lp < lowest { // trigrams only
				lowest = lp
			}
		}
		d.floor[i] = lowest - floorMargin
	}
	row := func(k uint64) int32 {
		r, ok := d.rows[k]
		if !ok {
			r = int32(len(d.scores) / n)
			d.rows[k] = r
			for range n {
				d.scores = append(d.scores, unknown)
			}
		}
		return r
	}
	for i, c := range codes {
		for k, lp := range all[c] {
			d.scores[int(row(k))*n+i] = lp
		}
	}
	// Fill the back-off into trigram rows now, so Detect does it only for
	// trigrams no candidate knows.
	for k, r := range d.rows {
		if k>>42 == 0 {
			continue
		}
		s := d.scores[int(r)*n : int(r)*n+n]
		for i := range s {
			if s[i] == unknown {
				s[i] = d.backoff(k, i)
			}
		}
	}
	return d, nil
}

// backoff is candidate i's score for trigram key k it does not know: its
// leading bigram's, else its first letter's, else the floor.
func (d *NGram) backoff(k uint64, i int) float32 {
	n := len(d.codes)
	for _, p := range [...]uint64{k >> 21, k >> 42} {
		if r, ok := d.rows[p]; ok {
			if v := d.scores[int(r)*n+i]; v != unknown {
				return v - backoffPenalty
			}
		}
	}
	return d.floor[i]
}

// maxCandidates is how many candidates Detect sums on the stack; more
// take an allocation.
const maxCandidates = 16

// Detect implements Detector.
func (d *NGram) Detect(text string) (string, float64) {
	text = prefix(text, maxRunes)
	n := len(d.codes)
	var sumsBuf [maxCandidates]float64
	var sums []float64
	if n <= maxCandidates {
		sums = sumsBuf[:n]
	} else {
		sums = make([]float64, n)
	}
	var w [3]rune // the last three letters of the current word
	run, trigrams := 0, 0
	for i := 0; i < len(text); {
		c, size := rune(text[i]), 1
		if c >= utf8.RuneSelf {
			c, size = utf8.DecodeRuneInString(text[i:])
		}
		i += size
		if !unicode.IsLetter(c) {
			run = 0
			continue
		}
		w[0], w[1], w[2] = w[1], w[2], unicode.ToLower(c)
		if run++; run < 3 {
			continue
		}
		trigrams++
		k := uint64(w[0])<<42 | uint64(w[1])<<21 | uint64(w[2])
		if r, ok := d.rows[k]; ok {
			for j, v := range d.scores[int(r)*n : int(r)*n+n] {
				sums[j] += float64(v)
			}
			continue
		}
		for j := range sums {
			sums[j] += float64(d.backoff(k, j))
		}
	}
	if trigrams == 0 {
		return "", 0
	}
	best := 0
	for j := range sums {
		if sums[j] > sums[best] {
			best = j
		}
	}
	var total float64
	for j := range sums {
		total += math.Exp(sums[j] - sums[best])
	}
	return d.codes[best], 1 / total
}

// checkCodes returns the distinct known codes, trimmed, or an error naming
// each unknown one.
func checkCodes(codes []string) ([]string, error) {
	all, err := knownCodes()
	if err != nil {
		return nil, err
	}
	var out []string
	var errs []error
	seen := map[string]bool{}
	for _, c := range codes {
		code := strings.ToLower(strings.TrimSpace(c))
		if !all[code] {
			errs = append(errs, fmt.Errorf("%q is not an ISO 639-1 code of a supported language", c))
			continue
		}
		if !seen[code] {
			seen[code] = true
			out = append(out, code)
		}
	}
	if len(errs) == 0 && len(out) < 2 {
		errs = append(errs, fmt.Errorf("need at least 2 distinct languages to choose from, got %q", codes))
	}
	return out, errors.Join(errs...)
}
