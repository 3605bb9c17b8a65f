package model

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/feedloop/feedloop/services/classifier/model/features"
	"github.com/feedloop/feedloop/services/classifier/model/linear"
)

// Closed-set CV harness for docs/classifier.md (issue 17): 5-fold
// stratified out-of-fold accuracy of feature and C variants, and of every
// pair of them averaged in calibrated probability, on one training file.
// Skipped unless FEEDLOOP_EXP=cv; FEEDLOOP_EXP_SETS names the set (see
// expSets), FEEDLOOP_EXP_VARIANTS a comma-separated list of the variants
// below. Folds follow the labels' first-seen order, so "base" can differ
// from the CLI's figure by a few items.
//
//	FEEDLOOP_EXP=cv FEEDLOOP_EXP_SETS=banking77 FEEDLOOP_EXP_VARIANTS=base,w13 \
//	  go test -run TestCVExperiment -v -timeout 60m ./services/classifier/model

type cvVariant struct {
	name  string
	terms func(string) []features.Term
	c     float64
}

// crossChars is word n-grams of cfg plus character lo..hi-grams over the
// whole normalised text (spanning word boundaries), not inside words.
func crossChars(cfg features.Config, lo, hi int) func(string) []features.Term {
	return func(text string) []features.Term {
		toks := features.Tokenize(features.Normalize(text, cfg.StripAccents))
		parts := make([]string, len(toks))
		for i, t := range toks {
			parts[i] = t.Text
		}
		r := []rune(" " + strings.Join(parts, " ") + " ")
		cnt := map[uint32]uint32{}
		for n := lo; n <= hi; n++ {
			for i := 0; i+n <= len(r); i++ {
				cnt[cfg.HashChars(string(r[i:i+n]))]++
			}
		}
		var out []features.Term
		if cfg.WordMax > 0 {
			wc := cfg
			wc.CharMax = 0
			out = wc.Terms(text)
		}
		for h, c := range cnt {
			out = append(out, features.Term{Hash: h, Block: features.Chars, Count: c})
		}
		sortTerms(out)
		return out
	}
}

func sortTerms(ts []features.Term) {
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0 && key(ts[j]) < key(ts[j-1]); j-- {
			ts[j], ts[j-1] = ts[j-1], ts[j]
		}
	}
}

func TestCVExperiment(t *testing.T) {
	if os.Getenv("FEEDLOOP_EXP") != "cv" {
		t.Skip("FEEDLOOP_EXP=cv not set")
	}
	set := os.Getenv("FEEDLOOP_EXP_SETS")
	var s expSet
	for _, e := range expSets {
		if e.name == set {
			s = e
		}
	}
	ds := loadExp(t, s)
	def := features.Default()
	words := def
	words.CharMax = 0
	chars := def
	chars.WordMax = 0
	w13 := def
	w13.WordMax = 3
	vs := map[string]cvVariant{
		"base":      {"base", def.Terms, 3},
		"base10":    {"base10", def.Terms, 10},
		"base1":     {"base1", def.Terms, 1},
		"w13":       {"w13", w13.Terms, 3},
		"words":     {"words", words.Terms, 3},
		"chars":     {"chars", chars.Terms, 3},
		"xchar":     {"xchar", crossChars(def, 2, 5), 3},
		"xchar16":   {"xchar16", crossChars(def, 1, 6), 3},
		"xcharonly": {"xcharonly", crossChars(chars, 2, 5), 3},
	}
	var labels []string
	seen := map[string]int{}
	for _, l := range ds.Labels {
		if _, ok := seen[l]; !ok {
			seen[l] = 0
			labels = append(labels, l)
		}
	}
	// sorted order irrelevant for CV
	for i, l := range labels {
		seen[l] = i
	}
	K := len(labels)
	y := make([]int, ds.Len())
	for i, l := range ds.Labels {
		y[i] = seen[l]
	}
	fold := stratifiedFolds(y, K, 5, 1)
	w := Weighting{Sublinear: true, IDF: true, MinDF: 1}
	oof := map[string][][]float64{}
	for _, name := range strings.Split(os.Getenv("FEEDLOOP_EXP_VARIANTS"), ",") {
		v := vs[name]
		start := time.Now()
		docs := make([][]features.Term, ds.Len())
		parallel(ds.Len(), 2, func(i int) { docs[i] = v.terms(ds.Texts[i]) })
		scores := make([][]float64, ds.Len())
		lp := linear.Params{C: v.c, Epsilon: 0.1, MaxEpochs: 200, Bias: 1, Seed: 1, Workers: 1}
		parallel(5, 2, func(f int) {
			var tr, te []int
			for i := range y {
				if fold[i] == f {
					te = append(te, i)
				} else {
					tr = append(tr, i)
				}
			}
			res, err := runJob(context.Background(), job{train: tr, test: te, c: v.c}, docs, y, K, w, lp, func() {})
			if err != nil {
				panic(err)
			}
			for r, i := range te {
				scores[i] = res.scores[r]
			}
		})
		oof[name] = scores
		t.Logf("%s %-10s acc %.4f  (%.0fs)", s.name, name, accOf(scores, y), time.Since(start).Seconds())
	}
	// pairwise ensembles: average of calibrated probabilities
	names := strings.Split(os.Getenv("FEEDLOOP_EXP_VARIANTS"), ",")
	for a := 0; a < len(names); a++ {
		for b := a + 1; b < len(names); b++ {
			t.Logf("%s ens %s+%s acc %.4f", s.name, names[a], names[b], accOf(avgProb(y, oof[names[a]], oof[names[b]]), y))
		}
	}
}

func accOf(scores [][]float64, y []int) float64 {
	c := 0
	for i, s := range scores {
		if argmax(s) == y[i] {
			c++
		}
	}
	return float64(c) / float64(len(y))
}

func avgProb(y []int, ms ...[][]float64) [][]float64 {
	out := make([][]float64, len(y))
	for _, m := range ms {
		T := fitTemperature(m, y)
		for i, s := range m {
			if out[i] == nil {
				out[i] = make([]float64, len(s))
			}
			p := make([]float64, len(s))
			softmax(s, T, p)
			for k := range p {
				out[i][k] += p[k]
			}
		}
	}
	return out
}
