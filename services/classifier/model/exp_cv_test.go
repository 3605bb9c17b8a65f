package model

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/feedloop/feedloop/services/classifier/model/features"
	"github.com/feedloop/feedloop/services/classifier/model/linear"
	"github.com/feedloop/feedloop/services/classifier/model/mlp"
)

// Closed-set CV harness for docs/classifier.md (issue 17): 5-fold
// stratified out-of-fold accuracy of feature and C variants, and of every
// pair of them averaged in calibrated probability, on one training file.
// Skipped unless FEEDLOOP_EXP=cv; FEEDLOOP_EXP_SETS names the set (see
// expSets), FEEDLOOP_EXP_VARIANTS a comma-separated list of the variants
// below (SVMs, or the networks of package mlp: "mlp", "mlp2" another
// seed, "ftext"; "glove1", "glove3" the word vector block at C 1 and 3),
// FEEDLOOP_EXP_FOLDS=n only the first n folds (a quick
// check). Networks log their training CPU time. Folds follow the labels'
// first-seen order, so "base" can differ from the CLI's figure by a few
// items.
//
//	FEEDLOOP_EXP=cv FEEDLOOP_EXP_SETS=banking77 FEEDLOOP_EXP_VARIANTS=base,w13 \
//	  go test -run TestCVExperiment -v -timeout 60m ./services/classifier/model

type cvVariant struct {
	name  string
	terms func(string) []features.Term
	c     float64
	// mlp, when set, trains a network (package mlp) instead of SVMs.
	mlp *mlp.Params
	// minDF overrides the weighting's MinDF (the network's first layer
	// has one row per feature).
	minDF int
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
		"base":      {"base", def.Terms, 3, nil, 0},
		"base10":    {"base10", def.Terms, 10, nil, 0},
		"base1":     {"base1", def.Terms, 1, nil, 0},
		"w13":       {"w13", w13.Terms, 3, nil, 0},
		"words":     {"words", words.Terms, 3, nil, 0},
		"chars":     {"chars", chars.Terms, 3, nil, 0},
		"xchar":     {"xchar", crossChars(def, 2, 5), 3, nil, 0},
		"xchar16":   {"xchar16", crossChars(def, 1, 6), 3, nil, 0},
		"xcharonly": {"xcharonly", crossChars(chars, 2, 5), 3, nil, 0},
	}
	// Networks: FEEDLOOP_EXP_MLP overrides their parameters
	// (hidden=256,epochs=12,lr=0.002,drop=0.5,indrop=0.2,batch=32,init=0.01,
	// mindf=2: the defaults); "ftext" is the same without ReLU or dropout.
	mp := expMLPParams(t)
	fp := mp
	fp.Linear, fp.Dropout = true, 0
	vs["mlp"] = cvVariant{"mlp", def.Terms, 0, &mp, expMinDF}
	vs["ftext"] = cvVariant{"ftext", def.Terms, 0, &fp, expMinDF}
	vs["mlpw13"] = cvVariant{"mlpw13", w13.Terms, 0, &mp, expMinDF}
	mp2 := mp
	mp2.Seed = 2
	vs["mlp2"] = cvVariant{"mlp2", def.Terms, 0, &mp2, expMinDF}
	// Pre-trained word vectors as a dense block (features.WithWordVectors);
	// FEEDLOOP_EXP_VECW overrides its weight.
	gl := def.WithWordVectors()
	if v := os.Getenv("FEEDLOOP_EXP_VECW"); v != "" {
		fmt.Sscan(v, &gl.WordVectorWeight)
	}
	vecOf := map[string]*vecBlock{}
	for _, c := range []float64{1, 3} {
		name := fmt.Sprintf("glove%g", c)
		vs[name] = cvVariant{name, gl.Terms, c, nil, 0}
		vecOf[name] = expVec(t, gl)
	}
	vs["mlpglove"] = cvVariant{"mlpglove", gl.Terms, 0, &mp, expMinDF}
	vecOf["mlpglove"] = expVec(t, gl)
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
	// FEEDLOOP_EXP_FOLDSEED deals the folds with another seed (default 1):
	// the spread between seeds is the noise of a comparison.
	foldSeed := uint64(1)
	if v := os.Getenv("FEEDLOOP_EXP_FOLDSEED"); v != "" {
		fmt.Sscan(v, &foldSeed)
	}
	fold := stratifiedFolds(y, K, 5, foldSeed)
	// FEEDLOOP_EXP_FOLDS=n scores only the first n of the 5 folds (a
	// quick check); accuracy is then over their rows.
	nFolds := 5
	if v := os.Getenv("FEEDLOOP_EXP_FOLDS"); v != "" {
		fmt.Sscan(v, &nFolds)
	}
	oof := map[string][][]float64{}
	for _, name := range strings.Split(os.Getenv("FEEDLOOP_EXP_VARIANTS"), ",") {
		v := vs[name]
		start := time.Now()
		docs := make([][]features.Term, ds.Len())
		parallel(ds.Len(), 2, func(i int) { docs[i] = v.terms(ds.Texts[i]) })
		scores := make([][]float64, ds.Len())
		lp := linear.Params{C: v.c, Epsilon: 0.1, MaxEpochs: 200, Bias: 1, Seed: 1, Workers: 1}
		w := Weighting{Sublinear: true, IDF: true, MinDF: max(1, v.minDF)}
		var cpu0 time.Duration
		if v.mlp != nil {
			cpu0 = cpuTime()
		}
		workers := 2
		if v.mlp != nil {
			workers = 1 // the network uses both cores itself
		}
		parallel(nFolds, workers, func(f int) {
			var tr, te []int
			for i := range y {
				if fold[i] == f {
					te = append(te, i)
				} else {
					tr = append(tr, i)
				}
			}
			var res jobResult
			var err error
			if v.mlp != nil {
				res, err = runMLPJob(t, job{train: tr, test: te}, docs, y, K, w, vecOf[name], *v.mlp)
			} else {
				res, err = runJob(context.Background(), job{train: tr, test: te, c: v.c}, docs, y, K, w, vecOf[name], lp, func() {})
			}
			if err != nil {
				panic(err)
			}
			for r, i := range te {
				scores[i] = res.scores[r]
			}
		})
		oof[name] = scores
		cpu := ""
		if v.mlp != nil {
			cpu = fmt.Sprintf(", %.0fs CPU", (cpuTime() - cpu0).Seconds())
		}
		t.Logf("%s %-10s acc %.4f  (%.0fs%s)", s.name, name, accOf(scores, y), time.Since(start).Seconds(), cpu)
	}
	// pairwise ensembles: average of calibrated probabilities
	names := strings.Split(os.Getenv("FEEDLOOP_EXP_VARIANTS"), ",")
	for a := 0; a < len(names); a++ {
		for b := a + 1; b < len(names); b++ {
			t.Logf("%s ens %s+%s acc %.4f", s.name, names[a], names[b], accOf(avgProb(y, oof[names[a]], oof[names[b]]), y))
		}
	}
	if len(names) > 2 {
		var all [][][]float64
		for _, n := range names {
			all = append(all, oof[n])
		}
		t.Logf("%s ens %s acc %.4f", s.name, strings.Join(names, "+"), accOf(avgProb(y, all...), y))
	}
}

// accOf is the accuracy over the rows that have scores.
func accOf(scores [][]float64, y []int) float64 {
	c, n := 0, 0
	for i, s := range scores {
		if s == nil {
			continue
		}
		n++
		if argmax(s) == y[i] {
			c++
		}
	}
	return float64(c) / float64(n)
}

func avgProb(y []int, ms ...[][]float64) [][]float64 {
	out := make([][]float64, len(y))
	for _, m := range ms {
		var ms [][]float64
		var my []int
		for i, s := range m {
			if s != nil {
				ms, my = append(ms, s), append(my, y[i])
			}
		}
		T := fitTemperature(ms, my)
		for i, s := range m {
			if s == nil {
				continue
			}
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

var expMinDF = 2

// expNoVal trains the networks on the whole training part for the given
// epochs, no early stop.
var expNoVal bool

func expMLPParams(t *testing.T) mlp.Params {
	p := mlp.DefaultParams()
	for _, kv := range strings.Split(os.Getenv("FEEDLOOP_EXP_MLP"), ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		var err error
		switch k {
		case "hidden":
			_, err = fmt.Sscan(v, &p.Hidden)
		case "epochs":
			_, err = fmt.Sscan(v, &p.Epochs)
		case "batch":
			_, err = fmt.Sscan(v, &p.Batch)
		case "lr":
			_, err = fmt.Sscan(v, &p.LR)
		case "drop":
			_, err = fmt.Sscan(v, &p.Dropout)
		case "indrop":
			_, err = fmt.Sscan(v, &p.InputDropout)
		case "init":
			_, err = fmt.Sscan(v, &p.Init)
		case "mindf":
			_, err = fmt.Sscan(v, &expMinDF)
		case "noval":
			_, err = fmt.Sscan(v, &expNoVal)
		default:
			t.Fatalf("FEEDLOOP_EXP_MLP: unknown %q", k)
		}
		if err != nil {
			t.Fatalf("FEEDLOOP_EXP_MLP %s: %v", kv, err)
		}
	}
	p.Workers = 2
	return p
}

// runMLPJob trains a network on j.train, a tenth of it (stratified)
// held out to choose the epoch, and scores j.test with its logits.
func runMLPJob(t *testing.T, j job, docs [][]features.Term, y []int, K int, w Weighting, vb *vecBlock, p mlp.Params) (jobResult, error) {
	var res jobResult
	res.vocab = newVocab(docs, j.train, w, vb)
	sub := make([]int, len(j.train))
	for r, i := range j.train {
		sub[r] = y[i]
	}
	inner := stratifiedFolds(sub, K, 10, p.Seed+5)
	var X, vX []linear.Vector
	var ly, vy []int
	for r, i := range j.train {
		if inner[r] == 0 && !expNoVal {
			vX, vy = append(vX, res.vocab.vector(docs[i])), append(vy, y[i])
		} else {
			X, ly = append(X, res.vocab.vector(docs[i])), append(ly, y[i])
		}
	}
	m, epoch, err := mlp.Train(context.Background(), X, ly, res.vocab.dim(), K, vX, vy, p)
	if err != nil {
		return res, err
	}
	t.Logf("  fold: dim %d, best epoch %d", len(res.vocab.keys), epoch)
	res.scores = make([][]float64, len(j.test))
	h := make([]float32, m.H)
	for r, i := range j.test {
		s := make([]float64, K)
		m.Logits(res.vocab.vector(docs[i]), h, s)
		res.scores[r] = s
	}
	return res, nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
