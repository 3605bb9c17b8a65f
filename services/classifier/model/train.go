package model

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/feedloop/feedloop/services/classifier/model/features"
	"github.com/feedloop/feedloop/services/classifier/model/linear"
)

// TrainOptions are the settings of Train. Start from DefaultTrainOptions:
// its values won under cross-validation across the project's datasets.
type TrainOptions struct {
	Features  features.Config `json:"features"`
	Weighting Weighting       `json:"weighting"`
	// C is the SVMs' inverse regularisation strength. With CGrid, C is
	// chosen from the grid by cross-validated accuracy instead.
	C     float64   `json:"c"`
	CGrid []float64 `json:"c_grid,omitempty"`
	// Epsilon is the solver's stopping tolerance.
	Epsilon float64 `json:"epsilon"`
	// MaxEpochs bounds the solver's passes per class.
	MaxEpochs int `json:"max_epochs"`
	// Seed makes training reproducible: same seed and data, same model
	// file.
	Seed uint64 `json:"seed"`
	// Folds is the number of cross-validation folds (≥ 2) used to
	// measure accuracy, calibrate probabilities and fit the threshold.
	Folds int `json:"folds"`
	// OOSLabel names the label of out-of-scope examples in the data, if
	// any: they become no class and help fit the threshold.
	OOSLabel string `json:"oos_label,omitempty"`
	// FitThreshold fits the out-of-scope threshold by cross-validation
	// holding out whole labels as pseudo-out-of-scope; when false,
	// Threshold is used as given (0 = never "unknown").
	FitThreshold bool    `json:"fit_threshold"`
	Threshold    float64 `json:"threshold,omitempty"`
	// OOSShare is the share of out-of-scope items assumed in the traffic
	// the model will see (0..1): the fitted threshold maximises the
	// expected accuracy (1-s)·in-scope accuracy + s·out-of-scope recall.
	// Data with many out-of-scope items (chatbot logs) wants a larger
	// share than routed feedback does.
	OOSShare float64 `json:"oos_share"`
	// MaxReject caps the share of in-scope items the fitted threshold may
	// send to "unknown" (0..1; 1 = no cap): they cost the triage team
	// work even when the model would have been wrong.
	MaxReject float64 `json:"max_reject"`
	// OOSScore is the score the fitted threshold applies to (ScoreProb
	// or ScoreEnergy; empty, as in files of format 1, is ScoreProb).
	OOSScore string `json:"oos_score,omitempty"`
	// MinAUROC is how well the score must tell held-out labels from
	// known ones (area under the ROC curve, 0.5 = chance) for a threshold
	// to be fitted at all; below it the model never says "unknown".
	MinAUROC float64 `json:"min_auroc,omitempty"`
	// Workers is how many trainings run at once; 0 = GOMAXPROCS. It
	// changes the speed, never the model.
	Workers int `json:"-"`
	// Created is recorded in the model file; the zero time records none
	// (use a fixed time for byte-identical files).
	Created time.Time `json:"-"`
}

// DefaultTrainOptions returns the settings that won across the datasets.
func DefaultTrainOptions() TrainOptions {
	return TrainOptions{
		// Pre-trained word vectors: +0.017 to +0.021 of cross-validated
		// accuracy on the HINT3 sets, within noise on BANKING77 and CFPB
		// (docs/classifier.md).
		Features:     features.Default().WithWordVectors(),
		Weighting:    Weighting{Sublinear: true, IDF: true, MinDF: 1},
		C:            1,
		CGrid:        []float64{0.3, 1, 3},
		Epsilon:      0.1,
		MaxEpochs:    200,
		Seed:         1,
		Folds:        5,
		FitThreshold: true,
		// Chosen on simulated traffic built from the training files
		// (docs/classifier.md): feedback in the wild holds a fair share of
		// text about no topic, and energy tells it apart best.
		OOSShare:  0.3,
		MaxReject: 0.15,
		OOSScore:  ScoreEnergy,
		MinAUROC:  0.78,
	}
}

// Validate reports options that cannot be used.
func (o TrainOptions) Validate() error {
	if err := o.Features.Validate(); err != nil {
		return err
	}
	switch {
	case !(o.C > 0) && len(o.CGrid) == 0:
		return fmt.Errorf("%w: C must be > 0, got %v", ErrOptions, o.C)
	case slices.ContainsFunc(o.CGrid, func(c float64) bool { return !(c > 0) }):
		return fmt.Errorf("%w: every C of the grid must be > 0, got %v", ErrOptions, o.CGrid)
	case !(o.Epsilon > 0):
		return fmt.Errorf("%w: epsilon must be > 0, got %v", ErrOptions, o.Epsilon)
	case o.MaxEpochs < 1:
		return fmt.Errorf("%w: max epochs must be ≥ 1, got %d", ErrOptions, o.MaxEpochs)
	case o.Folds < 2:
		return fmt.Errorf("%w: folds must be ≥ 2, got %d", ErrOptions, o.Folds)
	case o.Threshold < 0 || o.Threshold >= 1:
		return fmt.Errorf("%w: threshold must be in [0, 1), got %v", ErrOptions, o.Threshold)
	case !(o.OOSShare >= 0 && o.OOSShare <= 1):
		return fmt.Errorf("%w: assumed out-of-scope share must be in [0, 1], got %v", ErrOptions, o.OOSShare)
	case !(o.MaxReject >= 0 && o.MaxReject <= 1):
		return fmt.Errorf("%w: max in-scope rejection must be in [0, 1], got %v", ErrOptions, o.MaxReject)
	case o.OOSScore != "" && o.OOSScore != ScoreProb && o.OOSScore != ScoreEnergy:
		return fmt.Errorf("%w: out-of-scope score %q, want %q or %q", ErrOptions, o.OOSScore, ScoreProb, ScoreEnergy)
	case !(o.MinAUROC >= 0 && o.MinAUROC <= 1):
		return fmt.Errorf("%w: min AUROC must be in [0, 1], got %v", ErrOptions, o.MinAUROC)
	}
	return nil
}

// ErrOptions is wrapped by errors about TrainOptions.
var ErrOptions = errors.New("invalid training options")

// TrainReport is what training measured, by cross-validation on the
// training data only.
type TrainReport struct {
	Classes     int `json:"classes"`
	Examples    int `json:"examples"`
	OOSExamples int `json:"oos_examples,omitempty"`
	// Features is the size of the final model's vocabulary.
	Features int `json:"features"`
	Folds    int `json:"folds"`
	// C is the regularisation used; CVByC the accuracy of each C tried.
	C     float64   `json:"c"`
	CVByC []CVPoint `json:"cv_by_c,omitempty"`
	// CVAccuracy and CVMacroF1 are closed-set (top label) figures over
	// the in-scope examples, out of fold.
	CVAccuracy float64 `json:"cv_accuracy"`
	CVMacroF1  float64 `json:"cv_macro_f1"`
	// CVAccuracyAtThreshold counts in-scope examples the threshold
	// would reject as errors.
	CVAccuracyAtThreshold float64 `json:"cv_accuracy_at_threshold"`
	// CVRejected is the share of in-scope examples the threshold sends
	// to "unknown", out of fold.
	CVRejected float64 `json:"cv_rejected"`
	// Temperature calibrates the SVM scores: p = softmax(score/T).
	Temperature float64 `json:"temperature"`
	// CVLogLoss is the calibrated out-of-fold log loss.
	CVLogLoss float64 `json:"cv_log_loss"`
	// Score is the out-of-scope score Threshold applies to.
	Score     string     `json:"score,omitempty"`
	Threshold float64    `json:"threshold"`
	OOS       *OOSReport `json:"oos,omitempty"`
	// Durations are not stored in the model file.
	CVTime    time.Duration `json:"-"`
	TotalTime time.Duration `json:"-"`
}

// CVPoint is the cross-validated accuracy of one setting.
type CVPoint struct {
	C        float64 `json:"c"`
	Accuracy float64 `json:"accuracy"`
}

// OOSReport tells how the threshold was chosen: cross-validation where
// each fold holds out a group of whole labels as pseudo-out-of-scope
// (with any real out-of-scope examples).
type OOSReport struct {
	// Rule is the objective, in words.
	Rule string `json:"rule"`
	// Score is the out-of-scope score; AUROC how well it tells held-out
	// labels from known ones (0.5 = chance), MinAUROC the least needed
	// to fit a threshold.
	Score    string  `json:"score,omitempty"`
	AUROC    float64 `json:"auroc,omitempty"`
	MinAUROC float64 `json:"min_auroc,omitempty"`
	// BaseInScopeAccuracy is the in-scope accuracy with no threshold.
	BaseInScopeAccuracy float64 `json:"base_in_scope_accuracy,omitempty"`
	// OOSShare and MaxReject are the objective's settings.
	OOSShare  float64 `json:"oos_share"`
	MaxReject float64 `json:"max_reject"`
	// InScopeAccuracy is the share of in-scope test items given their
	// right label (not rejected) at the threshold.
	InScopeAccuracy float64 `json:"in_scope_accuracy"`
	// InScopeRejected is the share of in-scope test items rejected
	// (sent to "unknown", rightly labelled or not).
	InScopeRejected float64 `json:"in_scope_rejected"`
	// OOSRecall is the share of out-of-scope test items rejected.
	OOSRecall float64 `json:"oos_recall"`
	// Objective is the expected accuracy (1-s)·InScopeAccuracy +
	// s·OOSRecall, s = OOSShare.
	Objective float64 `json:"objective"`
	InScope   int     `json:"in_scope"`
	OutScope  int     `json:"out_of_scope"`
}

// EstimatedAccuracy is the expected accuracy at the threshold on traffic
// with the given share of out-of-scope items.
func (r *OOSReport) EstimatedAccuracy(share float64) float64 {
	return (1-share)*r.InScopeAccuracy + share*r.OOSRecall
}

// job is one training of the cross-validation or the final model.
type job struct {
	train []int // rows trained on
	test  []int // rows scored
	class []int // the classes trained, global ids; nil = all
	c     float64
}

type jobResult struct {
	scores [][]float64 // per test row, per trained class
	vocab  *vocab
	lin    *linear.Model
}

// Train fits a model on ds. progress, if not nil, is called with the
// number of classes fitted so far and the total, over all
// cross-validation folds and the final model.
func Train(ctx context.Context, ds *Dataset, o TrainOptions, progress func(done, total int)) (*Model, TrainReport, error) {
	start := time.Now()
	tr := &trainer{ctx: ctx, ds: ds, o: o, progress: progress}
	if err := o.Validate(); err != nil {
		return nil, tr.rep, err
	}
	if err := tr.prepare(); err != nil {
		return nil, tr.rep, err
	}
	if err := tr.crossValidate(); err != nil {
		return nil, tr.rep, err
	}
	final, err := tr.fitFinalAndThreshold()
	if err != nil {
		return nil, tr.rep, err
	}
	m := tr.model(final)
	tr.rep.TotalTime = time.Since(start)
	return m, tr.rep, nil
}

// trainer holds the state of one Train call; its steps run in order.
type trainer struct {
	ctx      context.Context
	ds       *Dataset
	o        TrainOptions
	progress func(done, total int)
	rep      TrainReport

	labels  []string
	y       []int // class per row, -1 = out of scope
	inScope []int
	K       int
	docs    [][]features.Term
	vec     *vecBlock // the dense block's table and weight, nil without
	fold    []int
	lp      linear.Params
	fitOOS  bool
	groups  int

	mu          sync.Mutex
	done, total int

	// Out-of-fold closed-set scores of the chosen C, and their classes.
	oofScores [][]float64
	oofY      []int
	// curve is kept in the model when a threshold is fitted.
	curve *ScoreCurve
}

// prepare checks the labels, maps them to classes and extracts the terms.
func (t *trainer) prepare() error {
	o, ds := t.o, t.ds
	if ds.Len() == 0 {
		return fmt.Errorf("%w: no examples", ErrData)
	}
	seen := map[string]bool{}
	for _, l := range ds.Labels {
		if l != o.OOSLabel && !seen[l] {
			seen[l] = true
			t.labels = append(t.labels, l)
		}
	}
	slices.Sort(t.labels)
	if len(t.labels) < 2 {
		return fmt.Errorf("%w: %d label(s) besides the out-of-scope one, need at least 2", ErrData, len(t.labels))
	}
	if slices.Contains(t.labels, Unknown) {
		return fmt.Errorf("%w: label %q is reserved for out-of-scope predictions", ErrData, Unknown)
	}
	classOf := map[string]int{}
	for i, l := range t.labels {
		classOf[l] = i
	}
	t.y = make([]int, ds.Len())
	for i, l := range ds.Labels {
		if l == o.OOSLabel {
			t.y[i] = -1
			t.rep.OOSExamples++
			continue
		}
		t.y[i] = classOf[l]
		t.inScope = append(t.inScope, i)
	}
	t.K = len(t.labels)
	t.rep.Classes, t.rep.Examples, t.rep.Folds = t.K, len(t.inScope), o.Folds

	// Terms once per text; vocabularies are per fold.
	var err error
	if t.vec, err = newVecBlock(o.Features); err != nil {
		return err
	}
	t.docs = make([][]features.Term, ds.Len())
	parallel(ds.Len(), o.Workers, func(i int) { t.docs[i] = o.Features.Terms(ds.Texts[i]) })
	t.fold = stratifiedFolds(t.y, t.K, o.Folds, o.Seed)
	t.lp = linear.Params{C: o.C, Epsilon: o.Epsilon, MaxEpochs: o.MaxEpochs, Bias: 1, Seed: o.Seed, Workers: 1}
	t.fitOOS = o.FitThreshold && t.K >= 3
	t.groups = min(o.Folds, t.K)
	t.total = len(t.grid())*o.Folds*t.K + t.K
	if t.fitOOS {
		t.total += (t.groups - 1) * t.K // each class is trained in groups-1 of the label folds
	}
	return nil
}

func (t *trainer) grid() []float64 {
	if len(t.o.CGrid) == 0 {
		return []float64{t.o.C}
	}
	return t.o.CGrid
}

func (t *trainer) step() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.done++
	if t.progress != nil {
		t.progress(min(t.done, t.total), t.total)
	}
}

// crossValidate runs the closed-set folds for each C of the grid, keeps
// the best C and calibrates the temperature on its out-of-fold scores.
func (t *trainer) crossValidate() error {
	o, rep := t.o, &t.rep
	grid := t.grid()
	var cvJobs []job
	for _, c := range grid {
		for f := range o.Folds {
			j := job{c: c}
			for _, i := range t.inScope {
				if t.fold[i] == f {
					j.test = append(j.test, i)
				} else {
					j.train = append(j.train, i)
				}
			}
			cvJobs = append(cvJobs, j)
		}
	}
	cvStart := time.Now()
	results, err := runJobs(t.ctx, cvJobs, t.docs, t.y, t.K, o.Weighting, t.vec, t.lp, o.Workers, t.step)
	if err != nil {
		return err
	}
	rep.CVTime = time.Since(cvStart)
	bestAcc := -1.0
	for g, c := range grid {
		var scores [][]float64
		var truth []int
		for n := g * o.Folds; n < (g+1)*o.Folds; n++ {
			for r, i := range cvJobs[n].test {
				scores = append(scores, results[n].scores[r])
				truth = append(truth, t.y[i])
			}
		}
		pred := make([]int, len(truth))
		for r, sc := range scores {
			pred[r] = argmax(sc)
		}
		acc, f1 := accuracyF1(truth, pred, t.K)
		rep.CVByC = append(rep.CVByC, CVPoint{C: c, Accuracy: acc})
		if acc > bestAcc+1e-9 {
			bestAcc, t.oofScores, t.oofY = acc, scores, truth
			rep.C, rep.CVAccuracy, rep.CVMacroF1 = c, acc, f1
		}
	}
	if len(grid) == 1 {
		rep.CVByC = nil
	}
	rep.Temperature = fitTemperature(t.oofScores, t.oofY)
	rep.CVLogLoss = logLoss(t.oofScores, t.oofY, rep.Temperature)
	return nil
}

// fitFinalAndThreshold trains the final model and, with FitThreshold,
// the label-held-out folds whose predictions choose the threshold.
func (t *trainer) fitFinalAndThreshold() (jobResult, error) {
	o, rep := t.o, &t.rep
	jobs := []job{{train: t.inScope, c: rep.C}}
	if t.fitOOS {
		jobs = append(jobs, t.labelFolds()...)
	}
	results, err := runJobs(t.ctx, jobs, t.docs, t.y, t.K, o.Weighting, t.vec, t.lp, o.Workers, t.step)
	if err != nil {
		return jobResult{}, err
	}
	rep.Score, rep.Threshold = ScoreProb, o.Threshold
	if t.fitOOS {
		t.fitThreshold(jobs[1:], results[1:])
	}
	correct, rejected := 0, 0
	for r, s := range t.oofScores {
		top, p := topProb(s, rep.Temperature)
		switch {
		case oosScore(rep.Score, s[top], p, rep.Temperature) < rep.Threshold:
			rejected++
		case top == t.oofY[r]:
			correct++
		}
	}
	rep.CVAccuracyAtThreshold = float64(correct) / float64(len(t.oofY))
	rep.CVRejected = float64(rejected) / float64(len(t.oofY))
	return results[0], nil
}

// labelFolds are the trainings that each hold out a group of whole labels
// (and a fold of the rows) as pseudo-out-of-scope.
func (t *trainer) labelFolds() []job {
	perm := rand.New(rand.NewPCG(t.o.Seed, 2)).Perm(t.K)
	held := make([]int, t.K) // class → group
	for pos, c := range perm {
		held[c] = pos % t.groups
	}
	var jobs []job
	for g := range t.groups {
		j := job{c: t.rep.C}
		for c := range t.K {
			if held[c] != g {
				j.class = append(j.class, c)
			}
		}
		for i, c := range t.y {
			switch {
			case c < 0:
				if t.fold[i]%t.groups == g {
					j.test = append(j.test, i) // real out-of-scope, never trained on
				}
			case held[c] == g, t.fold[i]%t.groups == g:
				j.test = append(j.test, i)
			default:
				j.train = append(j.train, i)
			}
		}
		jobs = append(jobs, j)
	}
	return jobs
}

// fitThreshold chooses the score and threshold from the label-held-out
// predictions.
func (t *trainer) fitThreshold(jobs []job, results []jobResult) {
	o, rep := t.o, &t.rep
	kind := o.OOSScore
	if kind == "" {
		kind = ScoreProb
	}
	T := rep.Temperature
	var items []oosItem
	for n, j := range jobs {
		in := map[int]bool{}
		for _, c := range j.class {
			in[c] = true
		}
		for r, i := range j.test {
			s := results[n].scores[r]
			top, p := topProb(s, T)
			it := oosItem{p: oosScore(kind, s[top], p, T)}
			if t.y[i] >= 0 && in[t.y[i]] {
				it.inScope = true
				it.correct = j.class[top] == t.y[i]
			}
			items = append(items, it)
		}
	}
	auc := auroc(items)
	// The cap holds on both estimates of the in-scope traffic: the
	// label-held-out folds' and the closed-set folds', whose models know
	// every label as the final one does.
	closed := make([]float64, len(t.oofScores))
	closedItems := make([]oosItem, len(t.oofScores))
	for r, s := range t.oofScores {
		top, p := topProb(s, T)
		closed[r] = oosScore(kind, s[top], p, T)
		closedItems[r] = oosItem{p: closed[r], inScope: true, correct: top == t.oofY[r]}
	}
	thr, oos := fitThreshold(items, o.OOSShare, o.MaxReject, maxThreshold(closed, o.MaxReject))
	oos.Score, oos.AUROC, oos.MinAUROC = kind, auc, o.MinAUROC
	rep.OOS = oos
	if oos.InScope == 0 || oos.OutScope == 0 {
		return
	}
	if auc < o.MinAUROC {
		// Unseen labels look like known ones (broad classes, sentiment):
		// a threshold would mostly send known topics to triage.
		oos.Rule = fmt.Sprintf("none: held-out labels are told from known ones with AUROC %.3f < %g", auc, o.MinAUROC)
		oos.InScopeAccuracy, oos.InScopeRejected, oos.OOSRecall = oos.BaseInScopeAccuracy, 0, 0
		oos.Objective = oos.EstimatedAccuracy(o.OOSShare)
		return
	}
	if math.IsInf(thr, -1) {
		return // rejecting nothing is best: no threshold
	}
	rep.Score, rep.Threshold = kind, thr
	// The curve's in-scope side is the closed-set folds', scored like the
	// final model (every label known); its out-of-scope side the held-out
	// labels'.
	var held []float64
	for _, it := range items {
		if !it.inScope {
			held = append(held, it.p)
		}
	}
	t.curve = newScoreCurve(closedItems, held)
}

// auroc is the probability that an in-scope item scores above an
// out-of-scope one (ties count half): how well the score alone tells
// them apart, whatever the threshold.
func auroc(items []oosItem) float64 {
	s := slices.Clone(items)
	slices.SortFunc(s, func(a, b oosItem) int { return cmp.Compare(a.p, b.p) })
	var nIn, nOut, rankSum float64
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j].p == s[i].p {
			j++
		}
		mid := float64(i+j+1) / 2 // mean 1-based rank of the tie
		for k := i; k < j; k++ {
			if s[k].inScope {
				nIn++
				rankSum += mid
			} else {
				nOut++
			}
		}
		i = j
	}
	if nIn == 0 || nOut == 0 {
		return 0.5
	}
	return (rankSum - nIn*(nIn+1)/2) / (nIn * nOut)
}

// model assembles the final model.
func (t *trainer) model(final jobResult) *Model {
	rep := &t.rep
	rep.Features = len(final.vocab.keys)
	m := &Model{
		Labels:      t.labels,
		Features:    t.o.Features,
		Weighting:   t.o.Weighting,
		Temperature: rep.Temperature,
		Score:       rep.Score,
		Threshold:   rep.Threshold,
		Curve:       t.curve,
		Meta: Metadata{
			Sources: t.ds.Sources,
			Options: t.o,
			Report:  *rep,
		},
		vocab: final.vocab,
		lin:   final.lin,
	}
	if !t.o.Created.IsZero() {
		m.Meta.Created = t.o.Created.UTC().Format(time.RFC3339)
	}
	return m
}

// runJobs runs jobs on up to workers goroutines.
func runJobs(ctx context.Context, jobs []job, docs [][]features.Term, y []int, K int, w Weighting, vb *vecBlock, lp linear.Params, workers int, step func()) ([]jobResult, error) {
	results := make([]jobResult, len(jobs))
	errs := make([]error, len(jobs))
	parallel(len(jobs), workers, func(n int) {
		if err := ctx.Err(); err != nil {
			errs[n] = err
			return
		}
		results[n], errs[n] = runJob(ctx, jobs[n], docs, y, K, w, vb, lp, step)
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return results, errors.Join(errs...)
}

func runJob(ctx context.Context, j job, docs [][]features.Term, y []int, K int, w Weighting, vb *vecBlock, lp linear.Params, step func()) (jobResult, error) {
	var res jobResult
	lp.C = j.c
	res.vocab = newVocab(docs, j.train, w, vb)
	local := make([]int, K) // global class → local class
	k := K
	if j.class != nil {
		for c := range local {
			local[c] = -1
		}
		for lc, c := range j.class {
			local[c] = lc
		}
		k = len(j.class)
	} else {
		for c := range local {
			local[c] = c
		}
	}
	X := make([]linear.Vector, len(j.train))
	ly := make([]int, len(j.train))
	for r, i := range j.train {
		X[r] = res.vocab.vector(docs[i])
		ly[r] = local[y[i]]
	}
	lin, err := linear.Train(ctx, X, ly, res.vocab.dim(), k, lp, func(int, int) { step() })
	if err != nil {
		return res, err
	}
	res.lin = lin
	res.scores = make([][]float64, len(j.test))
	for r, i := range j.test {
		s := make([]float64, k)
		lin.Scores(res.vocab.vector(docs[i]), s)
		res.scores[r] = s
	}
	return res, nil
}

// parallel calls fn(0..n-1) on up to workers goroutines.
func parallel(n, workers int, fn func(i int)) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var wg sync.WaitGroup
	ch := make(chan int)
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ch {
				fn(i)
			}
		}()
	}
	for i := range n {
		ch <- i
	}
	close(ch)
	wg.Wait()
}

// stratifiedFolds deals each class's rows (and the out-of-scope rows, y
// -1) round-robin into k folds after a seeded shuffle.
func stratifiedFolds(y []int, K, k int, seed uint64) []int {
	rng := rand.New(rand.NewPCG(seed, 1))
	byClass := make([][]int, K+1)
	for i, c := range y {
		byClass[c+1] = append(byClass[c+1], i)
	}
	fold := make([]int, len(y))
	next := 0
	for _, rows := range byClass {
		rng.Shuffle(len(rows), func(a, b int) { rows[a], rows[b] = rows[b], rows[a] })
		for _, i := range rows {
			fold[i] = next % k
			next++
		}
	}
	return fold
}

func argmax(s []float64) int {
	best := 0
	for i, v := range s {
		if v > s[best] {
			best = i
		}
	}
	return best
}

// softmax writes softmax(s/T) into p.
func softmax(s []float64, T float64, p []float64) {
	m := s[argmax(s)]
	var z float64
	for i, v := range s {
		p[i] = math.Exp((v - m) / T)
		z += p[i]
	}
	for i := range p {
		p[i] /= z
	}
}

// topProb is the top class and its calibrated probability.
func topProb(s []float64, T float64) (int, float64) {
	top := argmax(s)
	var z float64
	for _, v := range s {
		z += math.Exp((v - s[top]) / T)
	}
	return top, 1 / z
}

func logLoss(scores [][]float64, y []int, T float64) float64 {
	var sum float64
	for r, s := range scores {
		m := s[argmax(s)]
		var z float64
		for _, v := range s {
			z += math.Exp((v - m) / T)
		}
		sum += math.Log(z) - (s[y[r]]-m)/T
	}
	return sum / float64(len(scores))
}

// fitTemperature minimises the log loss over T by golden-section search
// on ln T (the loss is unimodal in T).
func fitTemperature(scores [][]float64, y []int) float64 {
	lo, hi := math.Log(1e-3), math.Log(1e2)
	f := func(t float64) float64 { return logLoss(scores, y, math.Exp(t)) }
	g := (math.Sqrt(5) - 1) / 2
	a, b := hi-g*(hi-lo), lo+g*(hi-lo)
	fa, fb := f(a), f(b)
	for range 60 {
		if fa < fb {
			hi, b, fb = b, a, fa
			a = hi - g*(hi-lo)
			fa = f(a)
		} else {
			lo, a, fa = a, b, fb
			b = lo + g*(hi-lo)
			fb = f(b)
		}
	}
	return math.Exp((lo + hi) / 2)
}

type oosItem struct {
	p                float64
	inScope, correct bool
}

// maxThreshold is the largest threshold that rejects at most maxReject of
// the in-scope items whose scores are ps (+Inf when maxReject ≥ 1).
func maxThreshold(ps []float64, maxReject float64) float64 {
	allowed := int(math.Floor(maxReject*float64(len(ps)) + 1e-9))
	if allowed >= len(ps) {
		return math.Inf(1)
	}
	ps = slices.Clone(ps)
	slices.Sort(ps)
	return ps[allowed] // rejects only the ps below it: at most allowed
}

// fitThreshold picks the score below which items are rejected (-Inf:
// none),
// maximising the expected accuracy (1-s)·in-scope accuracy + s·out-of-scope
// recall among the thresholds that reject at most maxReject of the
// in-scope items and are at most maxT.
func fitThreshold(items []oosItem, s, maxReject, maxT float64) (float64, *OOSReport) {
	slices.SortFunc(items, func(a, b oosItem) int { return cmp.Compare(a.p, b.p) })
	rep := &OOSReport{OOSShare: s, MaxReject: maxReject,
		Rule: fmt.Sprintf("max expected accuracy at %g%% out-of-scope", 100*s)}
	if maxReject < 1 {
		rep.Rule += fmt.Sprintf(", rejecting at most %g%% of in-scope items", 100*maxReject)
	}
	inCorrect := 0
	for _, it := range items {
		if it.inScope {
			rep.InScope++
			if it.correct {
				inCorrect++
			}
		} else {
			rep.OutScope++
		}
	}
	if rep.InScope == 0 || rep.OutScope == 0 {
		return math.Inf(-1), rep
	}
	nIn, nOut := float64(rep.InScope), float64(rep.OutScope)
	// Threshold at(i) rejects items[:i].
	at := func(i int) float64 {
		switch {
		case i == 0:
			return math.Inf(-1)
		case i == len(items):
			return math.Nextafter(items[i-1].p, math.Inf(1))
		}
		return (items[i-1].p + items[i].p) / 2
	}
	rep.BaseInScopeAccuracy = float64(inCorrect) / nIn
	bestI, best := 0, (1-s)*float64(inCorrect)/nIn
	bestAcc, bestRec, bestRej := float64(inCorrect)/nIn, 0.0, 0.0
	rejCorrect, rejIn, rejOut := 0, 0, 0
	for i := 0; i < len(items); i++ {
		switch it := items[i]; {
		case !it.inScope:
			rejOut++
		case it.correct:
			rejCorrect++
			rejIn++
		default:
			rejIn++
		}
		if i+1 < len(items) && items[i+1].p == items[i].p {
			continue
		}
		rej := float64(rejIn) / nIn
		if rej > maxReject+1e-12 || at(i+1) > maxT {
			break // rejections only grow with the threshold
		}
		acc, rec := float64(inCorrect-rejCorrect)/nIn, float64(rejOut)/nOut
		if v := (1-s)*acc + s*rec; v > best+1e-12 {
			best, bestI, bestAcc, bestRec, bestRej = v, i+1, acc, rec, rej
		}
	}
	t := at(bestI)
	rep.InScopeAccuracy, rep.InScopeRejected, rep.OOSRecall, rep.Objective = bestAcc, bestRej, bestRec, best
	return t, rep
}

// accuracyF1 returns the accuracy and the macro-averaged F1 over the
// classes that occur in truth or predictions.
func accuracyF1(truth, pred []int, K int) (float64, float64) {
	tp := make([]int, K)
	fp := make([]int, K)
	fn := make([]int, K)
	correct := 0
	for i := range truth {
		if truth[i] == pred[i] {
			correct++
			tp[truth[i]]++
			continue
		}
		fn[truth[i]]++
		fp[pred[i]]++
	}
	var f1s float64
	n := 0
	for c := range K {
		if tp[c]+fp[c]+fn[c] == 0 {
			continue
		}
		n++
		f1s += 2 * float64(tp[c]) / float64(2*tp[c]+fp[c]+fn[c])
	}
	return float64(correct) / float64(len(truth)), f1s / float64(max(n, 1))
}
