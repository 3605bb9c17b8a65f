package cli

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/feedloop/feedloop/services/classifier/model"
)

type classifierEvalOpts struct {
	model, data       string
	textCol, labelCol string
	oosLabel          string
	adapt             bool
	jsonOut           bool
}

func newClassifierEvalCmd() *cobra.Command {
	o := &classifierEvalOpts{}
	cmd := &cobra.Command{
		Use:   "eval --model MODEL --data FILE.csv --text-col COL --label-col COL [--oos-label LABEL] [--oos-adapt=false] [--json]",
		Short: "Measure a model on labelled data: accuracy, F1 per label, speed",
		Long: `Classify every row of --data with the model and compare with its label.

accuracy counts the model's decisions as they are, "unknown" included (an
in-scope row the threshold rejects is an error); closed_accuracy takes the
top label and ignores the threshold. With --oos-label, rows carrying that
label are out of scope: correct when the model says "unknown". macro_f1
averages F1 over the labels that occur in the data. p50_us and p99_us are
the time to classify one item (with its explanation), one at a time.

The file is treated as the traffic the model serves: by default the share
of out-of-scope text in it is estimated from the model's scores alone
(never from the labels; oos_share_estimate) and every decision is taken
with the threshold the model's score curve gives for that share
(adapted_threshold; null when rejecting nothing is best). This needs a
model trained with a fitted threshold and at least 100 rows; otherwise, and
with --oos-adapt=false, the model's fixed threshold decides.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	f := cmd.Flags()
	f.StringVar(&o.model, "model", "", "model file (required)")
	f.StringVar(&o.data, "data", "", "labelled CSV file (required)")
	f.StringVar(&o.textCol, "text-col", "", "column holding the text (required)")
	f.StringVar(&o.labelCol, "label-col", "", "column holding the label (required)")
	f.StringVar(&o.oosLabel, "oos-label", "", "label of out-of-scope rows: right when the model says unknown")
	f.BoolVar(&o.adapt, "oos-adapt", true, "estimate the out-of-scope share from the data's scores and adapt the threshold to it")
	f.BoolVar(&o.jsonOut, "json", false, "print one JSON object")
	for _, name := range []string{"model", "data", "text-col", "label-col"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

type labelStats struct {
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	Support   int     `json:"support"`
}

type evalResult struct {
	Model          string  `json:"model"`
	N              int     `json:"n"`
	Accuracy       float64 `json:"accuracy"`
	MacroF1        float64 `json:"macro_f1"`
	ClosedAccuracy float64 `json:"closed_accuracy"`
	UnknownRate    float64 `json:"unknown_rate"`
	Score          string  `json:"score"`
	Threshold      float64 `json:"threshold"`
	// OOSAdapted tells whether the decisions used a threshold adapted to
	// the data's estimated out-of-scope share (both null when not).
	OOSAdapted       bool                  `json:"oos_adapted"`
	OOSShareEstimate *float64              `json:"oos_share_estimate"`
	AdaptedThreshold *float64              `json:"adapted_threshold"`
	OOSRecall        *float64              `json:"oos_recall,omitempty"`
	InScopeAcc       *float64              `json:"in_scope_accuracy,omitempty"`
	PerLabel         map[string]labelStats `json:"per_label"`
	P50us            float64               `json:"p50_us"`
	P99us            float64               `json:"p99_us"`
	MeanUs           float64               `json:"mean_us"`
}

func (o *classifierEvalOpts) run(cmd *cobra.Command) error {
	m, err := loadModel(o.model)
	if err != nil {
		return err
	}
	ds, err := readData([]string{o.data}, o.textCol, o.labelCol)
	if err != nil {
		return err
	}
	if ds.Len() == 0 {
		return &exitError{2, fmt.Errorf("%s: no labelled rows", o.data)}
	}
	res := evaluate(m, ds, o.oosLabel, o.adapt)
	res.Model = o.model
	if o.jsonOut {
		return printJSON(cmd, res)
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "%s on %s: %d items\n", o.model, o.data, res.N)
	fmt.Fprintf(w, "accuracy %.4f, macro-F1 %.4f, closed-set accuracy %.4f, unknown %.1f%% (%s threshold %.3f)\n",
		res.Accuracy, res.MacroF1, res.ClosedAccuracy, 100*res.UnknownRate, res.Score, res.Threshold)
	if res.OOSAdapted {
		thr := "none (nothing rejected)"
		if res.AdaptedThreshold != nil {
			thr = fmt.Sprintf("%.3f", *res.AdaptedThreshold)
		}
		fmt.Fprintf(w, "out-of-scope share estimated from the scores %.3f: adapted threshold %s\n", *res.OOSShareEstimate, thr)
	}
	if res.OOSRecall != nil {
		fmt.Fprintf(w, "out-of-scope recall %.4f, in-scope accuracy %.4f\n", *res.OOSRecall, *res.InScopeAcc)
	}
	fmt.Fprintf(w, "per item: p50 %.0f µs, p99 %.0f µs\n", res.P50us, res.P99us)
	labels := make([]string, 0, len(res.PerLabel))
	for l := range res.PerLabel {
		labels = append(labels, l)
	}
	slices.Sort(labels)
	fmt.Fprintf(w, "%-40s %9s %9s %9s %8s\n", "label", "precision", "recall", "f1", "support")
	for _, l := range labels {
		s := res.PerLabel[l]
		fmt.Fprintf(w, "%-40s %9.4f %9.4f %9.4f %8d\n", l, s.Precision, s.Recall, s.F1, s.Support)
	}
	return nil
}

// evaluate classifies every row, one at a time, timing each; with adapt,
// the decisions are re-taken with the threshold adapted to all the rows'
// scores.
func evaluate(m *model.Model, ds *model.Dataset, oosLabel string, adapt bool) evalResult {
	n := ds.Len()
	res := evalResult{N: n, Score: m.Score, Threshold: m.Threshold, PerLabel: map[string]labelStats{}}
	tp, fp, support := map[string]int{}, map[string]int{}, map[string]int{}
	times := make([]time.Duration, n)
	correct, closed, unknown := 0, 0, 0
	inScope, inCorrect, oos, oosHit := 0, 0, 0, 0
	for _, text := range ds.Texts[:min(n, 20)] {
		m.Predict(text) // warm up: the timings are of the steady state
	}
	preds := make([]model.Prediction, n)
	for i, text := range ds.Texts {
		start := time.Now()
		preds[i] = m.Predict(text)
		times[i] = time.Since(start)
	}
	if adapt {
		scores := make([]float64, n)
		for i, p := range preds {
			scores[i] = p.OOSScore
		}
		if a, ok := m.AdaptThreshold(scores); ok {
			res.OOSAdapted, res.OOSShareEstimate = true, &a.Share
			if !math.IsInf(a.Threshold, -1) {
				res.AdaptedThreshold = &a.Threshold
			}
			for i := range preds {
				preds[i] = model.Decide(preds[i], a.Threshold)
			}
		}
	}
	for i, p := range preds {
		truth, pred := ds.Labels[i], p.Label
		if pred == model.Unknown {
			unknown++
			if oosLabel != "" {
				pred = oosLabel
			}
		}
		if p.Top[0].Label == truth {
			closed++
		}
		if truth == oosLabel && oosLabel != "" {
			oos++
			if pred == truth {
				oosHit++
			}
		} else {
			inScope++
			if pred == truth {
				inCorrect++
			}
		}
		support[truth]++
		if pred == truth {
			correct++
			tp[truth]++
		} else {
			fp[pred]++
		}
	}
	res.Accuracy = float64(correct) / float64(n)
	res.ClosedAccuracy = float64(closed) / float64(n)
	res.UnknownRate = float64(unknown) / float64(n)
	if oosLabel != "" {
		rec, acc := ratio(oosHit, oos), ratio(inCorrect, inScope)
		res.OOSRecall, res.InScopeAcc = &rec, &acc
	}
	var f1s float64
	for l, sup := range support {
		s := labelStats{Support: sup, Precision: ratio(tp[l], tp[l]+fp[l]), Recall: ratio(tp[l], sup)}
		if s.Precision+s.Recall > 0 {
			s.F1 = 2 * s.Precision * s.Recall / (s.Precision + s.Recall)
		}
		res.PerLabel[l] = s
		f1s += s.F1
	}
	res.MacroF1 = f1s / float64(len(support))
	slices.Sort(times)
	var sum time.Duration
	for _, t := range times {
		sum += t
	}
	us := func(d time.Duration) float64 { return math.Round(float64(d)/1e2) / 10 }
	res.P50us = us(times[quantileIndex(n, 0.50)])
	res.P99us = us(times[quantileIndex(n, 0.99)])
	res.MeanUs = us(sum / time.Duration(n))
	return res
}

// quantileIndex is the nearest-rank index of quantile q among n sorted
// values.
func quantileIndex(n int, q float64) int {
	return min(n-1, max(0, int(math.Ceil(q*float64(n)))-1))
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
