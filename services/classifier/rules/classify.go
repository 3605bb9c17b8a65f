package rules

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"sync"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/classifier/internal/textnorm"
)

// NegationWindow is how many words before a sentiment or urgency keyword
// are searched for a negator ("not really happy" is negated, "not late. I
// am happy" is not: negation never crosses a clause break).
const NegationWindow = 3

// Classifier is a compiled rules file. It is immutable and safe for
// concurrent use; reloading builds a new one.
type Classifier struct {
	version string
	// modelVersion is ModelVersionPrefix + version, built once.
	modelVersion string
	topics       []topicMatcher
	urgency      []urgencyMatcher // most urgent first
	negative     []phrase
	positive     []phrase
	negators     []phrase
}

type topicMatcher struct {
	id, topic string
	m         matcher
}

type urgencyLevel = feedloopv1.Urgency

const (
	urgencyCritical = feedloopv1.Urgency_URGENCY_CRITICAL
	urgencyHigh     = feedloopv1.Urgency_URGENCY_HIGH
	urgencyLow      = feedloopv1.Urgency_URGENCY_LOW
)

type urgencyMatcher struct {
	level urgencyLevel
	m     matcher
}

// matcher matches when any of its phrases or patterns does.
type matcher struct {
	phrases  []phrase
	patterns []pattern
}

// phrase is a keyword: consecutive words within one clause.
type phrase struct {
	text  string
	words []word
}

// word matches one token exactly, or by its end (anyStart) or start (anyEnd).
type word struct {
	text             string
	anyStart, anyEnd bool
}

func (w word) match(tok string) bool {
	switch {
	case w.anyStart && w.anyEnd:
		return strings.Contains(tok, w.text)
	case w.anyEnd:
		return strings.HasPrefix(tok, w.text)
	case w.anyStart:
		return strings.HasSuffix(tok, w.text)
	}
	return tok == w.text
}

// doc is a text prepared once for all rules.
type doc struct {
	folded string
	// caseless: see pattern.match.
	caseless bool
	toks     []textnorm.Token
	// first and next index token positions by word, so a keyword is looked
	// up rather than tried at every position: first[w] is the first
	// position of word w, next[i] the next position of the word at i, or
	// -1. (One map entry per distinct word and one slice, rather than a
	// slice per word.)
	first map[string]int
	next  []int
	// distinct are the distinct words by text, for wildcard keywords.
	distinct []wordAt
	// hitBuf backs what hits returns; each result is read before the next
	// call.
	hitBuf []int
}

// wordAt is a distinct word of a text and its first position.
type wordAt struct {
	text  string
	first int
}

// docPool recycles docs: their map and slices were most of what a
// classification allocated.
var docPool = sync.Pool{New: func() any { return &doc{first: map[string]int{}} }}

// maxPooledToks bounds the docs put back, so one long text does not keep a
// large map and slices alive, nor make clearing the map cost more for every
// short text after it.
const maxPooledToks = 128

func newDoc(text string) *doc {
	d := docPool.Get().(*doc)
	d.reset(text)
	return d
}

// reset prepares d, empty or released, for text.
func (d *doc) reset(text string) {
	f := textnorm.Fold(text)
	d.folded, d.caseless = f, caseless(f)
	d.toks = textnorm.AppendTokens(d.toks[:0], f)
	d.next = slices.Grow(d.next[:0], len(d.toks))[:len(d.toks)]
	d.distinct = d.distinct[:0]
	for i := len(d.toks) - 1; i >= 0; i-- {
		w := d.toks[i].Text
		if j, ok := d.first[w]; ok {
			d.next[i] = j
		} else {
			d.next[i] = -1
			d.distinct = append(d.distinct, wordAt{text: w})
		}
		d.first[w] = i
	}
	// Not ranging over the map: a recycled map is as large as the longest
	// text it held, and ranging visits every slot.
	for k := range d.distinct {
		d.distinct[k].first = d.first[d.distinct[k].text]
	}
	slices.SortFunc(d.distinct, func(a, b wordAt) int { return strings.Compare(a.text, b.text) })
}

// release returns d to docPool; d must not be used after.
func (d *doc) release() {
	if len(d.toks) > maxPooledToks {
		return
	}
	// Drop references to the text so the pool does not keep it alive.
	clear(d.first)
	clear(d.toks)
	clear(d.distinct)
	d.folded = ""
	docPool.Put(d)
}

// matchAt reports whether p matches the words starting at token i.
func (d *doc) matchAt(p phrase, i int) bool {
	if i+len(p.words) > len(d.toks) {
		return false
	}
	clause := d.toks[i].Clause
	for k, w := range p.words {
		t := d.toks[i+k]
		if t.Clause != clause || !w.match(t.Text) {
			return false
		}
	}
	return true
}

// hits returns the token positions where p starts, in no particular order.
func (d *doc) hits(p phrase) []int {
	hits := d.hitBuf[:0]
	try := func(i int) {
		for ; i >= 0; i = d.next[i] {
			if d.matchAt(p, i) {
				hits = append(hits, i)
			}
		}
	}
	if first := p.words[0]; !first.anyStart && !first.anyEnd {
		if i, ok := d.first[first.text]; ok {
			try(i)
		}
		d.hitBuf = hits
		return hits
	}
	// A word with a wildcard end is a prefix: the distinct words it
	// matches are adjacent in sorted order.
	if first := p.words[0]; !first.anyStart {
		k, _ := slices.BinarySearchFunc(d.distinct, first.text, func(w wordAt, t string) int { return strings.Compare(w.text, t) })
		for ; k < len(d.distinct) && strings.HasPrefix(d.distinct[k].text, first.text); k++ {
			try(d.distinct[k].first)
		}
		d.hitBuf = hits
		return hits
	}
	// Any other wildcard word is tried against each distinct word.
	for _, w := range d.distinct {
		if p.words[0].match(w.text) {
			try(w.first)
		}
	}
	d.hitBuf = hits
	return hits
}

// negated reports whether a negator stands within NegationWindow words
// before token i, in the same clause.
func (d *doc) negated(negators []phrase, i int) bool {
	for j := i - 1; j >= 0 && j >= i-NegationWindow; j-- {
		if d.toks[j].Clause != d.toks[i].Clause {
			return false
		}
		for _, n := range negators {
			if d.matchAt(n, j) {
				return true
			}
		}
	}
	return false
}

// matches reports whether m matches d; with negators, a keyword hit only
// counts when it is not negated.
func (d *doc) matches(m matcher, negators []phrase) bool {
	for _, p := range m.phrases {
		for _, i := range d.hits(p) {
			if !d.negated(negators, i) {
				return true
			}
		}
	}
	for _, p := range m.patterns {
		if p.match(d.folded, d.caseless) {
			return true
		}
	}
	return false
}

// Version is the file's version string.
func (c *Classifier) Version() string { return c.version }

// ModelVersion is what classifications record as model_version.
func (c *Classifier) ModelVersion() string { return c.modelVersion }

// Topics are the topics the rules can assign, sorted, each once.
func (c *Classifier) Topics() []string {
	var out []string
	for _, t := range c.topics {
		if !slices.Contains(out, t.topic) {
			out = append(out, t.topic)
		}
	}
	slices.Sort(out)
	return out
}

// Classify classifies the subject and text of fb. It never fails for a
// non-nil fb; the error is there for the Classifier interface.
func (c *Classifier) Classify(ctx context.Context, fb *feedloopv1.Feedback) (*feedloopv1.Classification, error) {
	if fb == nil {
		return nil, errors.New("rules: no feedback to classify")
	}
	text := fb.GetText()
	if s := fb.GetSubject(); s != "" {
		// The line break keeps the subject's last words and the text's first
		// ones from forming a phrase or a negation across them.
		text = s + "\n" + text
	}
	return c.ClassifyText(text), nil
}

// ClassifyText classifies text: topics (confidence 1 for each matched rule's
// topic, topic_source RULES; or "unknown" with confidence 0, topic_source
// UNKNOWN), the ids of the matched topic rules, urgency and keyword
// sentiment.
func (c *Classifier) ClassifyText(text string) *feedloopv1.Classification {
	d := newDoc(text)
	defer d.release()
	return c.classify(d)
}

func (c *Classifier) classify(d *doc) *feedloopv1.Classification {
	out := &feedloopv1.Classification{
		ModelVersion: c.ModelVersion(),
		Urgency:      feedloopv1.Urgency_URGENCY_NORMAL,
	}
	for _, t := range c.topics {
		if !d.matches(t.m, nil) {
			continue
		}
		out.RuleIds = append(out.RuleIds, t.id)
		if !hasTopic(out.Topics, t.topic) {
			out.Topics = append(out.Topics, &feedloopv1.TopicScore{Topic: t.topic, Confidence: 1})
		}
	}
	out.TopicSource = feedloopv1.TopicSource_TOPIC_SOURCE_RULES
	if len(out.Topics) == 0 {
		out.Topics = []*feedloopv1.TopicScore{{Topic: TopicUnknown, Confidence: 0}}
		out.TopicSource = feedloopv1.TopicSource_TOPIC_SOURCE_UNKNOWN
	}
	for _, u := range c.urgency {
		if d.matches(u.m, c.negators) {
			out.Urgency = u.level
			break
		}
	}
	out.Sentiment, out.SentimentConfidence = c.sentiment(d)
	return out
}

// hasTopic reports whether topics holds topic; a few topics at most, so a
// scan beats a map.
func hasTopic(topics []*feedloopv1.TopicScore, topic string) bool {
	for _, t := range topics {
		if t.GetTopic() == topic {
			return true
		}
	}
	return false
}

// sentiment counts positive and negative keyword hits, a negated hit
// counting for the other side, and weighs them: the more hits and the more
// they agree, the higher the confidence, never above 0.95 since keywords
// miss irony and context. No hits is neutral with confidence 0 (no
// evidence); a tie is neutral with confidence 0.5.
func (c *Classifier) sentiment(d *doc) (feedloopv1.Sentiment, float64) {
	var pos, neg int
	count := func(phrases []phrase, same, flipped *int) {
		for _, p := range phrases {
			for _, i := range d.hits(p) {
				if d.negated(c.negators, i) {
					*flipped++
				} else {
					*same++
				}
			}
		}
	}
	count(c.positive, &pos, &neg)
	count(c.negative, &neg, &pos)
	total := pos + neg
	switch {
	case total == 0:
		return feedloopv1.Sentiment_SENTIMENT_NEUTRAL, 0
	case pos == neg:
		return feedloopv1.Sentiment_SENTIMENT_NEUTRAL, 0.5
	}
	net := pos - neg
	agreement := math.Abs(float64(net)) / float64(total)
	strength := math.Min(0.95, 0.5+0.15*float64(total))
	conf := math.Round(agreement*strength*100) / 100
	if net > 0 {
		return feedloopv1.Sentiment_SENTIMENT_POSITIVE, conf
	}
	return feedloopv1.Sentiment_SENTIMENT_NEGATIVE, conf
}
