package model

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
)

// The threshold for the traffic seen. The share of out-of-scope text is a
// property of the traffic, not of the training data: a chatbot log may be
// half off-topic, a closed-set benchmark has none. Training keeps a score
// curve (what each threshold does to in-scope and held-out-label items,
// out of fold); from the scores of unlabelled traffic the share π is
// estimated by matching the traffic's score distribution to the mixture
// (1-π)·F_in + π·F_oos (mixture-proportion estimation, as in Saerens et
// al. 2002 and Lipton et al. 2018), and the threshold is the one the curve
// says is best for that share.

// MinAdaptScores is the least number of traffic scores an estimate needs.
const MinAdaptScores = 100

// fitFrom is the least share of held-out-label items a threshold of the
// grid must reject to take part in the estimate. Above such thresholds
// the traffic is mostly in scope, so the estimate hardly depends on what
// the out-of-scope text looks like: text from another domain scores far
// lower than held-out labels, and fitted over the whole grid it made π̂
// overshoot (0.99 for a true 0.72 on BANKING77, docs/classifier.md).
const fitFrom = 0.8

// curvePoints is the size of the curve's grid of thresholds.
const curvePoints = 129

// ScoreCurve is what each threshold of a grid does, measured out of fold
// at training: InCorrect is the share of in-scope items accepted and
// rightly labelled, InRejected the share of in-scope items rejected (their
// score CDF, F_in) and OOSRejected the share of held-out-label items
// rejected (F_oos). A threshold rejects scores below it.
type ScoreCurve struct {
	Thresholds  []float64 `json:"thresholds"`
	InCorrect   []float64 `json:"in_correct"`
	InRejected  []float64 `json:"in_rejected"`
	OOSRejected []float64 `json:"oos_rejected"`
	// BaseCorrect is the in-scope accuracy when nothing is rejected.
	BaseCorrect float64 `json:"base_correct"`
	// InScope and OutScope count the items measured.
	InScope  int `json:"in_scope"`
	OutScope int `json:"out_of_scope"`
}

// newScoreCurve builds the curve from in-scope items (score, whether the
// top label is right) and held-out-label scores; the grid is quantiles of
// all the scores, plus one above the largest (reject everything).
func newScoreCurve(in []oosItem, oos []float64) *ScoreCurve {
	if len(in) == 0 || len(oos) == 0 {
		return nil
	}
	all := make([]float64, 0, len(in)+len(oos))
	for _, it := range in {
		all = append(all, it.p)
	}
	all = append(all, oos...)
	slices.Sort(all)
	var grid []float64
	for k := range curvePoints - 1 {
		t := all[k*(len(all)-1)/(curvePoints-2)]
		if len(grid) == 0 || t > grid[len(grid)-1] {
			grid = append(grid, t)
		}
	}
	grid = append(grid, math.Nextafter(all[len(all)-1], math.Inf(1)))

	in = slices.Clone(in)
	slices.SortFunc(in, func(a, b oosItem) int { return cmp.Compare(a.p, b.p) })
	oos = slices.Clone(oos)
	slices.Sort(oos)
	c := &ScoreCurve{Thresholds: grid, InScope: len(in), OutScope: len(oos)}
	correct := 0
	for _, it := range in {
		if it.correct {
			correct++
		}
	}
	nIn, nOut := float64(len(in)), float64(len(oos))
	c.BaseCorrect = round6(float64(correct) / nIn)
	i, j, rejCorrect := 0, 0, 0
	for _, t := range grid {
		for ; i < len(in) && in[i].p < t; i++ {
			if in[i].correct {
				rejCorrect++
			}
		}
		for j < len(oos) && oos[j] < t {
			j++
		}
		c.InCorrect = append(c.InCorrect, round6(float64(correct-rejCorrect)/nIn))
		c.InRejected = append(c.InRejected, round6(float64(i)/nIn))
		c.OOSRejected = append(c.OOSRejected, round6(float64(j)/nOut))
	}
	return c
}

// round6 keeps the file small: shares to a millionth are plenty.
func round6(x float64) float64 { return math.Round(x*1e6) / 1e6 }

// validate reports a curve a file cannot have come from Save with.
func (c *ScoreCurve) validate() error {
	n := len(c.Thresholds)
	if n < 2 || len(c.InCorrect) != n || len(c.InRejected) != n || len(c.OOSRejected) != n {
		return fmt.Errorf("score curve: %d thresholds, %d/%d/%d values", n, len(c.InCorrect), len(c.InRejected), len(c.OOSRejected))
	}
	share := func(x float64) bool { return x >= 0 && x <= 1 }
	for g, t := range c.Thresholds {
		if math.IsNaN(t) || math.IsInf(t, 0) || g > 0 && t <= c.Thresholds[g-1] {
			return fmt.Errorf("score curve: thresholds not ascending at %d", g)
		}
		if !share(c.InCorrect[g]) || !share(c.InRejected[g]) || !share(c.OOSRejected[g]) {
			return fmt.Errorf("score curve: share out of [0, 1] at %d", g)
		}
	}
	if !share(c.BaseCorrect) {
		return fmt.Errorf("score curve: base accuracy %v", c.BaseCorrect)
	}
	return nil
}

// Adaptation is a threshold chosen for the traffic seen.
type Adaptation struct {
	// Share is the estimated out-of-scope share of the traffic, π̂.
	Share float64
	// Threshold is the chosen threshold on the model's score; -Inf when
	// rejecting nothing is best.
	Threshold float64
	// Expected is the curve's expected accuracy at Threshold for Share:
	// (1-π̂)·in-scope accuracy + π̂·out-of-scope recall.
	Expected float64
	// N is the number of traffic scores the estimate used.
	N int
}

// AdaptThreshold estimates the out-of-scope share of the traffic whose
// out-of-scope scores (Prediction.OOSScore) are given, and chooses the
// threshold for it. It is not ok when the model has no curve (no fitted
// threshold, or a file from before curves) or there are fewer than
// MinAdaptScores scores.
func (m *Model) AdaptThreshold(scores []float64) (Adaptation, bool) {
	c := m.Curve
	if c == nil || len(scores) < MinAdaptScores {
		return Adaptation{}, false
	}
	below := make([]int, len(c.Thresholds)+1)
	c.countBelow(scores, below)
	return c.adapt(below, len(scores)), true
}

// countBelow sets below[g] to the number of scores < Thresholds[g],
// binning each score by binary search: O(n log grid), no allocation.
func (c *ScoreCurve) countBelow(scores []float64, below []int) {
	clear(below)
	for _, s := range scores {
		// bin is the first g with Thresholds[g] > s (they are distinct).
		bin, found := slices.BinarySearch(c.Thresholds, s)
		if found {
			bin++
		}
		below[bin]++
	}
	run := 0
	for g := range c.Thresholds {
		run += below[g]
		below[g] = run
	}
}

// adapt estimates π from the traffic's CDF on the grid (below/n) by least
// squares against (1-π)·F_in + π·F_oos, i.e. F_tr − F_in = π·(F_oos − F_in):
// π̂ = Σ(F_tr−F_in)(F_oos−F_in) / Σ(F_oos−F_in)² over the thresholds with
// F_oos ≥ fitFrom, clamped to [0, 1].
func (c *ScoreCurve) adapt(below []int, n int) Adaptation {
	var num, den float64
	for g := range c.Thresholds {
		if c.OOSRejected[g] < fitFrom {
			continue
		}
		d := c.OOSRejected[g] - c.InRejected[g]
		num += (float64(below[g])/float64(n) - c.InRejected[g]) * d
		den += d * d
	}
	share := 0.0
	if den > 0 {
		share = min(max(num/den, 0), 1)
	}
	a := c.Choose(share)
	a.N = n
	return a
}

// Choose is the threshold of the curve that maximises the expected
// accuracy (1-share)·in-scope accuracy + share·out-of-scope recall; among
// equals the lowest (fewest in-scope items sent to triage).
func (c *ScoreCurve) Choose(share float64) Adaptation {
	best := Adaptation{Share: share, Threshold: math.Inf(-1), Expected: (1 - share) * c.BaseCorrect}
	for g, t := range c.Thresholds {
		if v := (1-share)*c.InCorrect[g] + share*c.OOSRejected[g]; v > best.Expected+1e-12 {
			best.Threshold, best.Expected = t, v
		}
	}
	return best
}

// Decide re-decides p with another threshold: its top label when its
// score is at least threshold, else Unknown.
func Decide(p Prediction, threshold float64) Prediction {
	p.Label = Unknown
	if p.OOSScore >= threshold && len(p.Top) > 0 {
		p.Label = p.Top[0].Label
	}
	return p
}

// Adapter keeps the threshold adapted to a running classifier's recent
// traffic: a window of the last scores, re-estimated every few items. It
// is safe for concurrent use; Observe allocates nothing and costs
// O(window·log grid) once every `every` calls, O(1) otherwise.
type Adapter struct {
	curve *ScoreCurve

	mu     sync.Mutex
	window []float64 // ring of the last scores
	next   int       // where the next score goes
	filled int
	since  int   // scores since the last estimate
	every  int   // estimate every this many scores
	below  []int // scratch of countBelow

	threshold atomic.Uint64 // float64 bits
	share     atomic.Uint64 // float64 bits; NaN until estimated
}

// NewAdapter adapts m's threshold over the last window scores (at least
// MinAdaptScores are needed before the first estimate), re-estimating
// every `every` scores. Until then, and always for a model without a
// curve, Threshold is the model's own.
func NewAdapter(m *Model, window, every int) *Adapter {
	a := &Adapter{curve: m.Curve, every: max(every, 1)}
	a.threshold.Store(math.Float64bits(m.Threshold))
	a.share.Store(math.Float64bits(math.NaN()))
	if a.curve != nil {
		a.window = make([]float64, max(window, MinAdaptScores))
		a.below = make([]int, len(a.curve.Thresholds)+1)
	}
	return a
}

// Observe records the out-of-scope score of one classified item.
func (a *Adapter) Observe(score float64) {
	if a.curve == nil || math.IsNaN(score) {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.window[a.next] = score
	a.next = (a.next + 1) % len(a.window)
	a.filled = min(a.filled+1, len(a.window))
	a.since++
	if a.since < a.every || a.filled < MinAdaptScores {
		return
	}
	a.since = 0
	a.curve.countBelow(a.window[:a.filled], a.below)
	ad := a.curve.adapt(a.below, a.filled)
	a.threshold.Store(math.Float64bits(ad.Threshold))
	a.share.Store(math.Float64bits(ad.Share))
}

// Threshold is the threshold to decide with now (-Inf: reject nothing).
func (a *Adapter) Threshold() float64 { return math.Float64frombits(a.threshold.Load()) }

// Share is the last estimated out-of-scope share; not ok before the first
// estimate or for a model without a curve.
func (a *Adapter) Share() (float64, bool) {
	s := math.Float64frombits(a.share.Load())
	return s, !math.IsNaN(s)
}
