package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/feedloop/feedloop/services/classifier/model"
	"github.com/feedloop/feedloop/services/classifier/model/features"
)

func newClassifierCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "classifier",
		Short: "Train, evaluate and try out a text classifier",
		Long: `Train a text classifier on labelled CSV files, measure it on held-out data,
and try it on a text. Models are single files (checksummed, versioned) that
record their labels, feature settings and how they were trained.`,
	}
	cmd.AddCommand(newClassifierTrainCmd(), newClassifierEvalCmd(), newClassifierPredictCmd(), newClassifierCorrectionsCmd())
	return cmd
}

type classifierTrainOpts struct {
	data                []string
	textCol, labelCol   string
	out                 string
	seed                uint64
	folds               int
	oosLabel, threshold string
	oosShare, maxReject float64
	oosScore            string
	minAUROC            float64
	c                   string
	hashBits            int
	wordVectors         bool
	jsonOut             bool
}

func newClassifierTrainCmd() *cobra.Command {
	o := &classifierTrainOpts{}
	def := model.DefaultTrainOptions()
	cmd := &cobra.Command{
		Use:   "train --data FILE.csv [--data …] --text-col COL --label-col COL --out MODEL",
		Short: "Train a model and report its cross-validated accuracy",
		Long: `Train a model on one or more CSV files (with a header row; the files are
concatenated and each must have both columns) and write it to --out.

Accuracy, the probability calibration and the out-of-scope threshold are
measured by cross-validation on the training data (--folds). The threshold
is fitted by holding out whole labels as pseudo-out-of-scope, plus the rows
labelled --oos-label if the data has any: it maximises the accuracy expected
on traffic with --oos-share out-of-scope items, rejecting at most
--max-reject of the in-scope ones. The default assumes traffic in the wild
(30% about no topic, at most 15% of in-scope items to triage) and applies
the threshold to the energy score; when held-out labels cannot be told
from known ones (AUROC below --min-auroc: broad classes, sentiment) no
threshold is set. For chatbot logs where half the queries or more are out
of scope (HINT3): --oos-share 0.5 --max-reject 1. For data known to hold no
out-of-scope text: --oos-threshold off. A number fixes the threshold on the
top probability. The model file records the data files'
names and checksums, the settings and these figures. SOURCE_DATE_EPOCH, if
set, is the creation time recorded (for byte-identical rebuilds).`,
		Example: `  feedloop classifier train --data banking77/train.csv --text-col text \
    --label-col category --out banking77.model`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.data, "data", nil, "training CSV file (repeatable; required)")
	f.StringVar(&o.textCol, "text-col", "", "column holding the text (required)")
	f.StringVar(&o.labelCol, "label-col", "", "column holding the label (required)")
	f.StringVar(&o.out, "out", "", "model file to write (required)")
	f.Uint64Var(&o.seed, "seed", def.Seed, "random seed: same seed and data, same model file")
	f.IntVar(&o.folds, "folds", def.Folds, "cross-validation folds")
	f.StringVar(&o.oosLabel, "oos-label", "", "label of out-of-scope rows in the data (no class of its own)")
	f.StringVar(&o.threshold, "oos-threshold", "auto", `"auto" (fit by cross-validation), "off", or a probability`)
	f.Float64Var(&o.oosShare, "oos-share", def.OOSShare, "share of out-of-scope items assumed when fitting the threshold (0..1)")
	f.Float64Var(&o.maxReject, "max-reject", def.MaxReject, "most in-scope items the fitted threshold may send to unknown (0..1; 1 = no cap)")
	f.StringVar(&o.oosScore, "oos-score", def.OOSScore, `score the fitted threshold applies to: "energy" or "prob" (top probability)`)
	f.Float64Var(&o.minAUROC, "min-auroc", def.MinAUROC, "least AUROC of the score on held-out labels for a threshold to be fitted (0..1)")
	f.StringVar(&o.c, "c", joinFloats(def.CGrid), "SVM inverse regularisation strength; a comma-separated list is a grid searched by cross-validation")
	f.IntVar(&o.hashBits, "hash-bits", def.Features.HashBits, "feature hash space, 2^bits buckets")
	f.BoolVar(&o.wordVectors, "word-vectors", def.Features.WordVectors != "", "add the mean of the words' pre-trained GloVe vectors as a feature block (--word-vectors=false: n-grams only)")
	f.BoolVar(&o.jsonOut, "json", false, "print the training report as JSON")
	for _, name := range []string{"data", "text-col", "label-col", "out"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

// readData reads and concatenates CSV files; bad files and columns are
// invalid input (exit 2).
func readData(paths []string, textCol, labelCol string) (*model.Dataset, error) {
	ds := &model.Dataset{}
	for _, p := range paths {
		d, err := model.ReadCSV(p, textCol, labelCol)
		if err != nil {
			return nil, inputError(err)
		}
		ds.Append(d)
	}
	return ds, nil
}

// inputError marks errors caused by the user's files or flags as exit 2.
func inputError(err error) error {
	switch {
	case errors.Is(err, model.ErrColumn), errors.Is(err, model.ErrData), errors.Is(err, model.ErrOptions),
		errors.Is(err, model.ErrFormat), errors.Is(err, features.ErrConfig), errors.Is(err, fs.ErrNotExist),
		errors.Is(err, fs.ErrPermission):
		return &exitError{2, err}
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &exitError{2, err}
	}
	return err
}

func (o *classifierTrainOpts) run(cmd *cobra.Command) error {
	opts := model.DefaultTrainOptions()
	opts.Seed, opts.Folds, opts.OOSLabel = o.seed, o.folds, o.oosLabel
	opts.OOSShare, opts.MaxReject = o.oosShare, o.maxReject
	opts.OOSScore, opts.MinAUROC = o.oosScore, o.minAUROC
	if !(o.oosShare >= 0 && o.oosShare <= 1) || !(o.maxReject >= 0 && o.maxReject <= 1) {
		return &exitError{2, fmt.Errorf("--oos-share and --max-reject: want shares in [0, 1], got %v and %v", o.oosShare, o.maxReject)}
	}
	cs, err := parseFloats(o.c)
	if err != nil || len(cs) == 0 {
		return &exitError{2, fmt.Errorf("--c: want a number or a comma-separated list, got %q", o.c)}
	}
	opts.C, opts.CGrid = cs[0], nil
	if len(cs) > 1 {
		opts.CGrid = cs
	}
	opts.Features.HashBits = o.hashBits
	if o.wordVectors != (opts.Features.WordVectors != "") {
		if o.wordVectors {
			opts.Features = opts.Features.WithWordVectors()
		} else {
			opts.Features.WordVectors, opts.Features.WordVectorWeight = "", 0
		}
	}
	switch o.threshold {
	case "auto":
		opts.FitThreshold = true
	case "off", "0":
		opts.FitThreshold = false
	default:
		t, err := strconv.ParseFloat(o.threshold, 64)
		if err != nil || t < 0 || t >= 1 {
			return &exitError{2, fmt.Errorf("--oos-threshold: want auto, off or a probability in [0, 1), got %q", o.threshold)}
		}
		opts.FitThreshold, opts.Threshold, opts.OOSScore = false, t, model.ScoreProb
	}
	opts.Created = time.Now()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return &exitError{2, fmt.Errorf("SOURCE_DATE_EPOCH: want seconds since 1970, got %q", s)}
		}
		opts.Created = time.Unix(sec, 0)
	}
	if err := opts.Validate(); err != nil {
		return &exitError{2, err}
	}
	ds, err := readData(o.data, o.textCol, o.labelCol)
	if err != nil {
		return err
	}
	bar := newProgress(cmd.ErrOrStderr(), "training")
	m, rep, err := model.Train(cmd.Context(), ds, opts, bar.update)
	bar.finish()
	if err != nil {
		return inputError(err)
	}
	if err := m.SaveFile(o.out); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	size := int64(0)
	if st, err := os.Stat(o.out); err == nil {
		size = st.Size()
	}
	if o.jsonOut {
		return printJSON(cmd, struct {
			Model     string            `json:"model"`
			Bytes     int64             `json:"bytes"`
			Seconds   float64           `json:"seconds"`
			CVSeconds float64           `json:"cv_seconds"`
			Report    model.TrainReport `json:"report"`
		}{o.out, size, rep.TotalTime.Seconds(), rep.CVTime.Seconds(), rep})
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "%s: %d classes, %d examples", o.out, rep.Classes, rep.Examples)
	if rep.OOSExamples > 0 {
		fmt.Fprintf(w, " (+%d out-of-scope)", rep.OOSExamples)
	}
	fmt.Fprintf(w, " from %s, %d features\n", sourceNames(ds.Sources), rep.Features)
	fmt.Fprintf(w, "cross-validated (%d folds): accuracy %.4f, macro-F1 %.4f, log loss %.3f, C %g",
		rep.Folds, rep.CVAccuracy, rep.CVMacroF1, rep.CVLogLoss, rep.C)
	if len(rep.CVByC) > 0 {
		var parts []string
		for _, p := range rep.CVByC {
			parts = append(parts, fmt.Sprintf("%g: %.4f", p.C, p.Accuracy))
		}
		fmt.Fprintf(w, " (of %s)", strings.Join(parts, ", "))
	}
	fmt.Fprintln(w)
	switch {
	case rep.OOS != nil && rep.OOS.OutScope > 0 && strings.HasPrefix(rep.OOS.Rule, "none"):
		fmt.Fprintf(w, "out-of-scope threshold: %s\n", rep.OOS.Rule)
	case rep.OOS != nil && rep.OOS.OutScope > 0:
		fmt.Fprintf(w, "out-of-scope threshold %s %.3f (%s; AUROC on held-out labels %.3f): in-scope accuracy %.4f, in-scope rejected %.1f%%, out-of-scope recall %.4f, expected accuracy %.4f (labels held out by cross-validation); accuracy with the threshold %.4f, %.1f%% unknown\n",
			rep.Score, rep.Threshold, rep.OOS.Rule, rep.OOS.AUROC, rep.OOS.InScopeAccuracy, 100*rep.OOS.InScopeRejected, rep.OOS.OOSRecall, rep.OOS.Objective, rep.CVAccuracyAtThreshold, 100*rep.CVRejected)
	case rep.Threshold > 0:
		fmt.Fprintf(w, "out-of-scope threshold %.3f (given); accuracy with the threshold %.4f, %.1f%% unknown\n", rep.Threshold, rep.CVAccuracyAtThreshold, 100*rep.CVRejected)
	default:
		fmt.Fprintln(w, "out-of-scope threshold: off")
	}
	fmt.Fprintf(w, "model %s, trained in %s (cross-validation %s)\n", humanBytes(size),
		rep.TotalTime.Round(100*time.Millisecond), rep.CVTime.Round(100*time.Millisecond))
	return nil
}

func parseFloats(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func joinFloats(fs []float64) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = strconv.FormatFloat(f, 'g', -1, 64)
	}
	return strings.Join(parts, ",")
}

func sourceNames(ss []model.Source) string {
	names := make([]string, len(ss))
	for i, s := range ss {
		names[i] = s.File
	}
	return strings.Join(names, ", ")
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// loadModel reads --model; a missing or invalid file is invalid input.
func loadModel(path string) (*model.Model, error) {
	m, err := model.LoadFile(path)
	if err != nil {
		return nil, inputError(fmt.Errorf("--model: %w", err))
	}
	return m, nil
}
