package model

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/feedloop/feedloop/services/classifier/model/features"
	"github.com/feedloop/feedloop/services/classifier/model/linear"
)

// Experiment harness (FEEDLOOP_EXP=1, optional FEEDLOOP_EXP_SETS,
// FEEDLOOP_EXP_MAXN, FEEDLOOP_EXP_OUT): writes, per data set, the
// out-of-scope scores of out-of-fold items as TSV for docs/classifier.md's
// simulation. Kinds: 0 in-scope from closed-set folds, 1 in-scope from
// label-held-out folds, 2 items of a held-out label, 3 text from the other
// data sets (off-topic). Training files only; skipped by default.

type expSet struct {
	name, path, text, label string
	testOOS                 float64 // out-of-scope share of the official test set (README)
}

var expSets = []expSet{
	{"sofmattress", "hint3/v1/sofmattress_train.csv", "sentence", "label", 0.418},
	{"curekart", "hint3/v1/curekart_train.csv", "sentence", "label", 0.544},
	{"powerplay11", "hint3/v1/powerplay11_train.csv", "sentence", "label", 0.720},
	{"banking77", "banking77/train.csv", "text", "category", 0},
	{"cfpb", "cfpb_complaints_1000/train.csv", "narrative", "product", 0},
	{"airline", "twitter_us_airline_sentiment/train.csv", "text", "airline_sentiment", 0},
}

const expRoot = "../../../../shared/datasets/"

// expItem is one scored test item.
type expItem struct {
	kind    int // 0 in-scope (closed CV), 1 in-scope (label-held-out fold), 2 held-out label, 3 foreign
	correct bool
	f       map[string]float64
}

type foldModel struct {
	v     *vocab
	lin   *linear.Model
	X     []linear.Vector
	y     []int // local classes
	k     int
	post  map[int32][]posting
	cent  [][]float64 // per class, dense over dim
	cnorm []float64
	// word and char are models of the word terms (with the vectors) and of
	// the character terms alone (FEEDLOOP_EXP_AGREE), for their agreement.
	word, char *foldModel
	keep       []features.Block // the blocks this model sees (nil: all)
	// denseX are the training rows' word-vector blocks (nil without).
	denseX [][]float64
}

// dense is x's word-vector block, as a dense vector.
func (fm *foldModel) dense(x linear.Vector) []float64 {
	base := int32(len(fm.v.keys))
	d := make([]float64, fm.v.vec.tab.Dim())
	for _, e := range x {
		if e.Index >= base {
			d[e.Index-base] = float64(e.Value)
		}
	}
	return d
}

// onlyBlocks is terms of the given blocks.
func onlyBlocks(ts []features.Term, keep []features.Block) []features.Term {
	if keep == nil {
		return ts
	}
	var out []features.Term
	for _, t := range ts {
		if slices.Contains(keep, t.Block) {
			out = append(out, t)
		}
	}
	return out
}

// buildAgree adds fm's word and char models.
func (fm *foldModel) buildAgree(t testing.TB, docs [][]features.Term, rows []int, y []int, classes []int, w Weighting, vb *vecBlock, c float64) {
	sub := func(keep []features.Block, vb *vecBlock) *foldModel {
		d := make([][]features.Term, len(docs))
		for _, i := range rows {
			d[i] = onlyBlocks(docs[i], keep)
		}
		m := buildFold(t, d, rows, y, classes, w, vb, c)
		m.keep = keep
		return m
	}
	fm.word = sub([]features.Block{features.Words, features.Vectors}, vb)
	fm.char = sub([]features.Block{features.Chars}, nil)
}

// energyOf is the energy T·ln Σ exp(s/T) of scores s, as the model
// computes it (oosScore).
func energyOf(s []float64, T float64) float64 {
	top, p := topProb(s, T)
	return oosScore(ScoreEnergy, s[top], p, T)
}

type posting struct {
	row int32
	val float32
}

func buildFold(t testing.TB, docs [][]features.Term, rows []int, y []int, classes []int, w Weighting, vb *vecBlock, c float64) *foldModel {
	fm := &foldModel{v: newVocab(docs, rows, w, vb), k: len(classes)}
	local := map[int]int{}
	for lc, cl := range classes {
		local[cl] = lc
	}
	fm.X = make([]linear.Vector, len(rows))
	fm.y = make([]int, len(rows))
	for r, i := range rows {
		fm.X[r] = fm.v.vector(docs[i])
		fm.y[r] = local[y[i]]
	}
	lp := linear.Params{C: c, Epsilon: 0.1, MaxEpochs: 200, Bias: 1, Seed: 1, Workers: 2}
	lin, err := linear.Train(context.Background(), fm.X, fm.y, fm.v.dim(), fm.k, lp, nil)
	if err != nil {
		t.Fatal(err)
	}
	fm.lin = lin
	fm.post = map[int32][]posting{}
	dim := fm.v.dim()
	fm.cent = make([][]float64, fm.k)
	for k := range fm.cent {
		fm.cent[k] = make([]float64, dim)
	}
	for r, x := range fm.X {
		for _, e := range x {
			fm.post[e.Index] = append(fm.post[e.Index], posting{int32(r), e.Value})
			fm.cent[fm.y[r]][e.Index] += float64(e.Value)
		}
	}
	if fm.v.vec != nil {
		fm.denseX = make([][]float64, len(fm.X))
		for r, x := range fm.X {
			fm.denseX[r] = fm.dense(x)
		}
	}
	fm.cnorm = make([]float64, fm.k)
	for k, cv := range fm.cent {
		var s float64
		for _, v := range cv {
			s += v * v
		}
		fm.cnorm[k] = math.Sqrt(s)
	}
	return fm
}

func (fm *foldModel) score(terms []features.Term, T float64, truth int) (int, map[string]float64) {
	x := fm.v.vector(terms)
	s := make([]float64, fm.k)
	fm.lin.Scores(x, s)
	order := topN(nil, s, 2)
	top := order[0]
	f := map[string]float64{}
	_, f["pmax"] = topProb(s, T)
	f["margin"] = s[order[0]] - s[order[1]]
	f["smax"] = s[top]
	f["energy"] = energyOf(s, T)
	// nearest neighbours
	dots := map[int32]float64{}
	for _, e := range x {
		for _, p := range fm.post[e.Index] {
			dots[p.row] += float64(e.Value) * float64(p.val)
		}
	}
	best, bestSame := 0.0, 0.0
	var all []float64
	for r, d := range dots {
		all = append(all, d)
		if d > best {
			best = d
		}
		if fm.y[r] == top && d > bestSame {
			bestSame = d
		}
	}
	slices.Sort(all)
	f["nn1"] = best
	f["nnsame"] = bestSame
	if len(all) >= 3 {
		f["nn3"] = (all[len(all)-1] + all[len(all)-2] + all[len(all)-3]) / 3
	} else {
		f["nn3"] = best / 3
	}
	var cd float64
	for _, e := range x {
		cd += float64(e.Value) * fm.cent[top][e.Index]
	}
	if fm.cnorm[top] > 0 {
		f["cent"] = cd / fm.cnorm[top]
	}
	// coverage of the text's terms by the vocabulary, per block
	var tot, in [features.NumBlocks]float64
	for _, tm := range terms {
		tot[tm.Block] += float64(tm.Count)
		if _, ok := fm.v.index.get(key(tm)); ok {
			in[tm.Block] += float64(tm.Count)
		}
	}
	for b := range tot {
		name := "cov_" + features.Block(b).String()
		if tot[b] > 0 {
			f[name] = in[b] / tot[b]
		} else {
			f[name] = 0
		}
	}
	if fm.word != nil {
		sw := make([]float64, fm.k)
		sc := make([]float64, fm.k)
		fm.word.lin.Scores(fm.word.v.vector(onlyBlocks(terms, fm.word.keep)), sw)
		fm.char.lin.Scores(fm.char.v.vector(onlyBlocks(terms, fm.char.keep)), sc)
		tw, tc := topN(nil, sw, 1)[0], topN(nil, sc, 1)[0]
		f["agree"], f["agree3"] = 0, 0
		if tw == tc {
			f["agree"] = 1
		}
		if tw == top {
			f["agree3"]++
		}
		if tc == top {
			f["agree3"]++
		}
		f["e_word"], f["e_char"] = energyOf(sw, T), energyOf(sc, T)
		f["s_word_top"], f["s_char_top"] = sw[top], sc[top]
		f["s_min_top"] = min(sw[top], sc[top])
		_, pw := topProb(sw, T)
		_, pc := topProb(sc, T)
		f["p_word"], f["p_char"] = pw, pc
	}
	if fm.v.vec != nil {
		// The dense block alone: cosine to the predicted class's centroid
		// and to the nearest training text (both over the word vectors).
		base := len(fm.v.keys)
		cos := func(a, b []float64) float64 {
			var ab, aa, bb float64
			for i := range a {
				ab += a[i] * b[i]
				aa += a[i] * a[i]
				bb += b[i] * b[i]
			}
			if aa == 0 || bb == 0 {
				return 0
			}
			return ab / math.Sqrt(aa*bb)
		}
		xd := fm.dense(x)
		f["cent_v"] = cos(xd, fm.cent[top][base:])
		best := -1.0
		for _, td := range fm.denseX {
			best = max(best, cos(xd, td))
		}
		f["nn_v"] = best
	}
	_ = truth
	return top, f
}

// expVec is the dense block of the feature config c, nil without.
func expVec(t testing.TB, c features.Config) *vecBlock {
	vb, err := newVecBlock(c)
	if err != nil {
		t.Fatal(err)
	}
	return vb
}

func loadExp(t testing.TB, s expSet) *Dataset {
	ds, err := ReadCSV(expRoot+s.path, s.text, s.label)
	if err != nil {
		t.Skip(err)
	}
	return ds
}

func TestOOSExperiment(t *testing.T) {
	if os.Getenv("FEEDLOOP_EXP") == "" {
		t.Skip("FEEDLOOP_EXP not set")
	}
	only := os.Getenv("FEEDLOOP_EXP_SETS")
	all := map[string]*Dataset{}
	for _, s := range expSets {
		all[s.name] = loadExp(t, s)
	}
	opt := DefaultTrainOptions()
	if v := os.Getenv("FEEDLOOP_EXP_VECWEIGHT"); v != "" {
		// The word vector block's weight (default 1), for its effect on the scores.
		fmt.Sscan(v, &opt.Features.WordVectorWeight)
	}
	for _, s := range expSets {
		if only != "" && !strings.Contains(only, s.name) {
			continue
		}
		// Subsample big sets for exploration.
		maxN := 3000
		if v := os.Getenv("FEEDLOOP_EXP_MAXN"); v != "" {
			fmt.Sscan(v, &maxN)
		}
		runExp(t, s, expSubsample(all[s.name], maxN), expForeign(all, s.name), opt)
	}
}

func runExp(t *testing.T, s expSet, ds *Dataset, foreign []string, opt TrainOptions) {
	labels, y := expLabels(ds)
	K := len(labels)
	docs := make([][]features.Term, ds.Len())
	for i, tx := range ds.Texts {
		docs[i] = opt.Features.Terms(tx)
	}
	fdocs := make([][]features.Term, len(foreign))
	for i, tx := range foreign {
		fdocs[i] = opt.Features.Terms(tx)
	}
	folds := 5
	fold := stratifiedFolds(y, K, folds, 1)
	C := 1.0
	all := make([]int, K)
	for i := range all {
		all[i] = i
	}
	var items []expItem
	// closed CV: in-scope items and foreign items; temperature from closed CV
	type raw struct {
		fm    *foldModel
		test  []int
		truth []int
	}
	var closed []raw
	var oofS [][]float64
	var oofY []int
	for f := range folds {
		var tr, te []int
		for i := range y {
			if fold[i] == f {
				te = append(te, i)
			} else {
				tr = append(tr, i)
			}
		}
		fm := buildFold(t, docs, tr, y, all, opt.Weighting, expVec(t, opt.Features), C)
		if os.Getenv("FEEDLOOP_EXP_AGREE") != "" {
			fm.buildAgree(t, docs, tr, y, all, opt.Weighting, expVec(t, opt.Features), C)
		}
		closed = append(closed, raw{fm: fm, test: te})
		for _, i := range te {
			sc := make([]float64, K)
			fm.lin.Scores(fm.v.vector(docs[i]), sc)
			oofS = append(oofS, sc)
			oofY = append(oofY, y[i])
		}
	}
	T := fitTemperature(oofS, oofY)
	for f, r := range closed {
		for _, i := range r.test {
			top, fe := r.fm.score(docs[i], T, y[i])
			items = append(items, expItem{kind: 0, correct: top == y[i], f: fe})
		}
		// foreign scored by every closed fold model, a fifth each
		for j := range fdocs {
			if j%folds == f {
				_, fe := r.fm.score(fdocs[j], T, -1)
				items = append(items, expItem{kind: 3, f: fe})
			}
		}
	}
	// label-held-out folds
	groups := min(folds, K)
	perm := rand.New(rand.NewPCG(1, 2)).Perm(K)
	held := make([]int, K)
	for pos, c := range perm {
		held[c] = pos % groups
	}
	for g := range groups {
		var cls []int
		for c := range K {
			if held[c] != g {
				cls = append(cls, c)
			}
		}
		var tr []int
		var te []int
		for i := range y {
			switch {
			case held[y[i]] == g, fold[i]%groups == g:
				te = append(te, i)
			default:
				tr = append(tr, i)
			}
		}
		fm := buildFold(t, docs, tr, y, cls, opt.Weighting, expVec(t, opt.Features), C)
		if os.Getenv("FEEDLOOP_EXP_AGREE") != "" {
			fm.buildAgree(t, docs, tr, y, cls, opt.Weighting, expVec(t, opt.Features), C)
		}
		for _, i := range te {
			top, fe := fm.score(docs[i], T, y[i])
			if held[y[i]] == g {
				items = append(items, expItem{kind: 2, f: fe})
			} else {
				items = append(items, expItem{kind: 1, correct: cls[top] == y[i], f: fe})
			}
		}
	}
	dumpExp(t, s, items)
}

// dumpExp writes the items as TSV for analysis outside Go.
func dumpExp(t *testing.T, s expSet, items []expItem) {
	dir := os.Getenv("FEEDLOOP_EXP_OUT")
	if dir == "" {
		dir = "/tmp/oosexp"
	}
	os.MkdirAll(dir, 0o755)
	var keys []string
	for k := range items[0].f {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString("kind\tcorrect\t" + strings.Join(keys, "\t") + "\n")
	for _, it := range items {
		c := 0
		if it.correct {
			c = 1
		}
		fmt.Fprintf(&b, "%d\t%d", it.kind, c)
		for _, k := range keys {
			fmt.Fprintf(&b, "\t%.6g", it.f[k])
		}
		b.WriteString("\n")
	}
	if err := os.WriteFile(dir+"/"+s.name+".tsv", []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	n := map[int]int{}
	for _, it := range items {
		n[it.kind]++
	}
	t.Logf("%s: %v", s.name, n)
}

// The adaptive threshold measured (FEEDLOOP_EXP=1, -run
// TestOOSAdaptExperiment; FEEDLOOP_EXP_SETS and FEEDLOOP_EXP_MAXN as
// above, BANKING77 subsampled to FEEDLOOP_EXP_MAXN rows, default 4000).
// Five folds: each holds out a fifth of the labels as out of scope and a
// stratified fifth of the in-scope items as test; a model is trained on
// the rest with the default options. Traffic is then 500 items drawn with
// replacement from the held-out in-scope items and the out-of-scope pool
// (held-out labels: "near"; other data sets' text: "foreign") at each
// share, and its overall accuracy measured at the model's fixed
// threshold, the threshold adapted from the traffic's scores alone, and
// the curve's best threshold for the true share (oracle). Prints a
// Markdown table per set; writes it to FEEDLOOP_EXP_OUT/adapt_<set>.md.
func TestOOSAdaptExperiment(t *testing.T) {
	if os.Getenv("FEEDLOOP_EXP") == "" {
		t.Skip("FEEDLOOP_EXP not set")
	}
	only := os.Getenv("FEEDLOOP_EXP_SETS")
	all := map[string]*Dataset{}
	for _, s := range expSets {
		all[s.name] = loadExp(t, s)
	}
	maxN := 4000
	if v := os.Getenv("FEEDLOOP_EXP_MAXN"); v != "" {
		fmt.Sscan(v, &maxN)
	}
	for _, s := range expSets {
		if s.name == "airline" || only != "" && !strings.Contains(only, s.name) {
			continue
		}
		runAdaptExp(t, s, expSubsample(all[s.name], maxN), expForeign(all, s.name))
	}
}

// adaptScored is one scored item of the adaptive experiment.
type adaptScored struct {
	score   float64
	top     string
	correct bool // in scope and its top label is right
}

func runAdaptExp(t *testing.T, s expSet, ds *Dataset, foreign []string) {
	shares := []float64{0, 0.15, 0.3, 0.418, 0.544, 0.72}
	const folds, traffic = 5, 500
	labels, y := expLabels(ds)
	K := len(labels)
	held := make([]int, K)
	for pos, c := range rand.New(rand.NewPCG(11, 11)).Perm(K) {
		held[c] = pos % folds
	}
	fold := stratifiedFolds(y, K, folds, 5)
	// sums[kind][share][0 fixed, 1 adapted, 2 oracle, 3 π̂, 4 π̂², 5 adapted ok]
	var sums [2][6][6]float64
	var curves, fitted int
	for f := range folds {
		train := &Dataset{}
		var in, near []int
		for i := range y {
			switch {
			case held[y[i]] == f:
				near = append(near, i)
			case fold[i] == f:
				in = append(in, i)
			default:
				train.Add(ds.Texts[i], ds.Labels[i])
			}
		}
		o := DefaultTrainOptions()
		o.Workers = 2
		m, _, err := Train(context.Background(), train, o, nil)
		if err != nil {
			t.Fatal(err)
		}
		if m.Threshold != 0 {
			fitted++
		}
		if m.Curve != nil {
			curves++
		}
		score := func(text, truth string) adaptScored {
			p := m.PredictWith(text, PredictOptions{TopLabels: 1})
			return adaptScored{score: p.OOSScore, top: p.Top[0].Label, correct: p.Top[0].Label == truth}
		}
		var inS, nearS, forS []adaptScored
		for _, i := range in {
			inS = append(inS, score(ds.Texts[i], ds.Labels[i]))
		}
		for _, i := range near {
			nearS = append(nearS, score(ds.Texts[i], ""))
		}
		for _, text := range foreign {
			forS = append(forS, score(text, ""))
		}
		rng := rand.New(rand.NewPCG(uint64(f), 99))
		for k, pool := range [][]adaptScored{nearS, forS} {
			for si, share := range shares {
				nOut := int(math.Round(share * traffic))
				items := make([]adaptScored, 0, traffic)
				isOut := make([]bool, 0, traffic)
				for n := range traffic {
					if n < nOut {
						items = append(items, pool[rng.IntN(len(pool))])
						isOut = append(isOut, true)
					} else {
						items = append(items, inS[rng.IntN(len(inS))])
						isOut = append(isOut, false)
					}
				}
				acc := func(thr float64) float64 {
					ok := 0
					for n, it := range items {
						rej := it.score < thr
						if isOut[n] && rej || !isOut[n] && !rej && it.correct {
							ok++
						}
					}
					return float64(ok) / float64(len(items))
				}
				fixed := m.Threshold
				if m.Score == ScoreProb && fixed == 0 {
					fixed = math.Inf(-1)
				}
				scores := make([]float64, len(items))
				for n, it := range items {
					scores[n] = it.score
				}
				adapted, oracle, est, ok := fixed, fixed, 0.0, 0.0
				if a, good := m.AdaptThreshold(scores); good {
					adapted, est, ok = a.Threshold, a.Share, 1
					oracle = m.Curve.Choose(share).Threshold
				}
				r := &sums[k][si]
				r[0] += acc(fixed)
				r[1] += acc(adapted)
				r[2] += acc(oracle)
				r[3] += est
				r[4] += est * est
				r[5] += ok
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%d rows, %d labels): %d/%d folds fitted a threshold, %d kept a curve\n\n", s.name, ds.Len(), K, fitted, folds, curves)
	b.WriteString("| out of scope | true share | fixed | adapted | oracle | π̂ mean ± sd |\n|---|---|---|---|---|---|\n")
	for k, kind := range []string{"held-out labels", "foreign text"} {
		for si, share := range shares {
			r := sums[k][si]
			n := float64(folds)
			mean := r[3] / n
			sd := math.Sqrt(max(r[4]/n-mean*mean, 0))
			est := "–"
			if r[5] > 0 {
				est = fmt.Sprintf("%.3f ± %.3f", mean, sd)
			}
			fmt.Fprintf(&b, "| %s | %.3f | %.3f | %.3f | %.3f | %s |\n", kind, share, r[0]/n, r[1]/n, r[2]/n, est)
		}
	}
	t.Log("\n" + b.String())
	dir := os.Getenv("FEEDLOOP_EXP_OUT")
	if dir == "" {
		dir = "/tmp/oosexp"
	}
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(dir+"/adapt_"+s.name+".md", []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// expSubsample is at most maxN rows of ds, drawn with a fixed seed, in
// their order.
func expSubsample(ds *Dataset, maxN int) *Dataset {
	if ds.Len() <= maxN {
		return ds
	}
	rng := rand.New(rand.NewPCG(7, 7))
	perm := rng.Perm(ds.Len())[:maxN]
	slices.Sort(perm)
	sub := &Dataset{}
	for _, i := range perm {
		sub.Add(ds.Texts[i], ds.Labels[i])
	}
	return sub
}

// expForeign is off-topic text for the set named name: 150 texts of each
// other set, drawn with a fixed seed.
func expForeign(all map[string]*Dataset, name string) []string {
	var foreign []string
	for _, o := range expSets {
		if o.name == name {
			continue
		}
		od := all[o.name]
		rng := rand.New(rand.NewPCG(3, 3))
		for _, i := range rng.Perm(od.Len())[:min(150, od.Len())] {
			foreign = append(foreign, od.Texts[i])
		}
	}
	return foreign
}

// expLabels is ds's labels, sorted, and each row's index among them.
func expLabels(ds *Dataset) ([]string, []int) {
	var labels []string
	for _, l := range ds.Labels {
		if !slices.Contains(labels, l) {
			labels = append(labels, l)
		}
	}
	slices.Sort(labels)
	y := make([]int, ds.Len())
	for i, l := range ds.Labels {
		y[i] = slices.Index(labels, l)
	}
	return labels, y
}
