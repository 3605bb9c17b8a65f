// Package model is feedloop's trained text classifier: hashed word and
// character n-grams with TF-IDF weighting (package features), one-vs-rest
// linear SVMs (package linear) whose scores are calibrated into
// probabilities by a temperature, and an out-of-scope threshold below
// which a text is "unknown". Train fits one by cross-validation on
// labelled data; Save and Load keep it in a versioned, checksummed file.
package model

import (
	"cmp"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/feedloop/feedloop/services/classifier/model/features"
	"github.com/feedloop/feedloop/services/classifier/model/linear"
)

// Unknown is the label of a prediction whose out-of-scope score is below
// the model's threshold.
const Unknown = "unknown"

// The out-of-scope scores a threshold can apply to.
const (
	// ScoreProb is the top label's calibrated probability (files of
	// format 1 all use it).
	ScoreProb = "prob"
	// ScoreEnergy is T·ln Σ exp(score/T) over the labels (the free
	// energy of Liu et al. 2020): unlike the top probability it stays
	// low when every label scores low, which is what text about none of
	// them looks like. It separated held-out labels better on 4 of the 5
	// project data sets (docs/classifier.md).
	ScoreEnergy = "energy"
)

// Model is a trained classifier. It is safe for concurrent use.
type Model struct {
	// Labels are the classes, sorted.
	Labels    []string
	Features  features.Config
	Weighting Weighting
	// Temperature turns scores into probabilities: softmax(score/T).
	Temperature float64
	// Score names the out-of-scope score (ScoreProb or ScoreEnergy) and
	// Threshold is the value below which Predict says Unknown.
	Score     string
	Threshold float64
	// Curve, when a threshold was fitted, lets AdaptThreshold choose
	// another for the traffic seen; nil in older files.
	Curve *ScoreCurve
	Meta  Metadata

	vocab *vocab
	lin   *linear.Model
	// version is set by Load and Save (see Version).
	version atomic.Pointer[string]
}

// Metadata is how a model was made.
type Metadata struct {
	// Created is an RFC 3339 time, empty when not recorded.
	Created string       `json:"created,omitempty"`
	Sources []Source     `json:"sources"`
	Options TrainOptions `json:"options"`
	Report  TrainReport  `json:"report"`
}

// LabelProb is a label with its calibrated probability.
type LabelProb struct {
	Label string  `json:"label"`
	Prob  float64 `json:"prob"`
}

// Contribution is one n-gram's part in a decision: its feature value times
// its weight for the predicted label.
type Contribution struct {
	// Feature is the n-gram: words joined by spaces, or "<chars>" with '<'
	// and '>' marking a word's start and end.
	Feature string  `json:"feature"`
	Kind    string  `json:"kind"`
	Weight  float64 `json:"weight"`
}

// Prediction is a model's answer for one text.
type Prediction struct {
	// Label is the top label, or Unknown when OOSScore < the threshold.
	Label string `json:"label"`
	// Prob is the top label's calibrated probability.
	Prob float64 `json:"prob"`
	// OOSScore is the model's out-of-scope score (see Model.Score):
	// higher is more in scope.
	OOSScore float64 `json:"oos_score"`
	// Top are the most probable labels, best first.
	Top []LabelProb `json:"top"`
	// Explain are the n-grams that most supported the top label, largest
	// contribution first.
	Explain []Contribution `json:"explain,omitempty"`
}

// PredictOptions size a Prediction.
type PredictOptions struct {
	// TopLabels is how many labels Top holds (≥ 1).
	TopLabels int
	// Explain is how many contributions to list; 0 skips the
	// explanation (cheaper).
	Explain int
}

// Predict classifies text with 5 top labels and 8 explaining n-grams.
func (m *Model) Predict(text string) Prediction {
	return m.PredictWith(text, PredictOptions{TopLabels: 5, Explain: 8})
}

// scratch is the memory of one prediction, pooled: a prediction
// allocates little more than its result.
type scratch struct {
	fb      features.Buffer
	terms   []features.Term
	x       linear.Vector
	blocks  []features.Block
	s       []float64
	contrib []float64
	order   []int
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// PredictWith classifies text.
func (m *Model) PredictWith(text string, o PredictOptions) Prediction {
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	sc.terms = m.Features.AppendTerms(sc.terms[:0], text, &sc.fb)
	sc.x, sc.blocks = m.vocab.appendVector(sc.x[:0], sc.blocks, sc.terms)
	x := sc.x
	K := len(m.Labels)
	if cap(sc.s) < 2*K {
		sc.s = make([]float64, 2*K)
	}
	s, p := sc.s[:K], sc.s[K:2*K]
	m.lin.Scores(x, s)
	softmax(s, m.Temperature, p)
	sc.order = topN(sc.order[:0], p, min(max(o.TopLabels, 1), K))
	order := sc.order
	top := order[0]
	pr := Prediction{Label: m.Labels[top], Prob: p[top], Top: make([]LabelProb, len(order))}
	pr.OOSScore = oosScore(m.Score, s[top], p[top], m.Temperature)
	if pr.OOSScore < m.Threshold {
		pr.Label = Unknown
	}
	for i, c := range order {
		pr.Top[i] = LabelProb{Label: m.Labels[c], Prob: p[c]}
	}
	if o.Explain > 0 {
		pr.Explain = m.explain(sc, text, top, o.Explain)
	}
	return pr
}

// oosScore is the out-of-scope score of a prediction whose top SVM score
// is smax and top probability p: energy = smax + T·ln Σ exp((s-smax)/T) =
// smax - T·ln p, so it costs nothing beyond the softmax.
func oosScore(kind string, smax, p, T float64) float64 {
	if kind == ScoreEnergy {
		return smax - T*math.Log(p)
	}
	return p
}

// topN appends to out the indexes of the n largest values, largest first
// (the lower index first among equals).
func topN(out []int, v []float64, n int) []int {
	out = out[:0]
	for i, x := range v {
		if len(out) == n && x <= v[out[n-1]] {
			continue
		}
		pos := len(out)
		for pos > 0 && x > v[out[pos-1]] {
			pos--
		}
		out = slices.Insert(out, pos, i)
		if len(out) > n {
			out = out[:n]
		}
	}
	return out
}

// VectorsFeature names the dense word vector block in explanations: its
// dimensions mean nothing one by one, so they count as one contribution,
// named for the person reading the evidence (a clerk, not an engineer).
// The parentheses mark it as a description, not words of the text
// (Evidence.feature).
const VectorsFeature = "(meaning of the whole text)"

// explain returns the n largest positive contributions to class c of the
// features of sc.x, named by recomputing the n-grams of text.
func (m *Model) explain(sc *scratch, text string, c, n int) []Contribution {
	x := sc.x
	contrib := sc.contrib[:0]
	dim := int32(len(m.vocab.keys))
	dense := 0.0
	for _, e := range x {
		v := float64(e.Value) * float64(m.lin.W[int(e.Index)*m.lin.K+c])
		if e.Index >= dim {
			dense += v // the dense block follows the n-grams in x
			continue
		}
		contrib = append(contrib, v)
	}
	x = x[:len(contrib)]
	if dense != 0 {
		contrib = append(contrib, dense) // at index len(x)
	}
	sc.contrib = contrib
	best := topN(make([]int, 0, n+1), contrib, min(n, len(contrib)))
	terms := make([]features.Term, 0, len(best))
	weights := make([]float64, 0, len(best))
	var vec []Contribution
	for _, i := range best {
		if contrib[i] <= 0 {
			break
		}
		if i == len(x) {
			vec = []Contribution{{Feature: VectorsFeature, Kind: features.Vectors.String(), Weight: math.Round(contrib[i]*1e4) / 1e4}}
			continue
		}
		k := m.vocab.keys[x[i].Index]
		terms = append(terms, features.Term{Hash: uint32(k >> 8), Block: features.Block(k & 0xff)})
		weights = append(weights, contrib[i])
	}
	if len(terms) == 0 {
		return vec
	}
	out := make([]Contribution, 0, len(terms)+1)
	out = append(out, vec...)
	for _, g := range m.Features.Name(text, terms) {
		w := weights[slices.Index(terms, features.Term{Hash: g.Hash, Block: g.Block})]
		out = append(out, Contribution{Feature: g.Text, Kind: g.Block.String(), Weight: math.Round(w*1e4) / 1e4})
	}
	slices.SortStableFunc(out, func(a, b Contribution) int { return cmp.Compare(b.Weight, a.Weight) })
	return out
}

// NumFeatures is the number of features: the n-grams of the vocabulary
// and the dimensions of the word vectors, if any.
func (m *Model) NumFeatures() int { return m.vocab.dim() }
