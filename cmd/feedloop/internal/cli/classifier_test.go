package cli

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/feedloop/feedloop/services/classifier/model"
)

const intentsFixture = "../../../../services/classifier/model/testdata/intents.csv"
const intentsTestFixture = "../../../../services/classifier/model/testdata/intents_test.csv"

func trainFixture(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "intents.model")
	code, stdout, stderr := run(t, "classifier", "train", "--data", intentsFixture, "--text-col", "text",
		"--label-col", "label", "--out", out, "--seed", "3")
	if code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"6 classes", "120 examples", "intents.csv", "cross-validated (5 folds): accuracy 0.", "threshold", "trained in"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("train summary lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stderr, "[") {
		t.Errorf("progress bar drawn on a non-terminal: %q", stderr)
	}
	return out
}

func TestClassifierTrainEvalPredict(t *testing.T) {
	model := trainFixture(t)

	code, stdout, stderr := run(t, "classifier", "eval", "--model", model, "--data", intentsTestFixture,
		"--text-col", "text", "--label-col", "label", "--json")
	if code != 0 {
		t.Fatalf("eval: exit %d: %s", code, stderr)
	}
	var ev struct {
		N              int      `json:"n"`
		Accuracy       *float64 `json:"accuracy"`
		MacroF1        *float64 `json:"macro_f1"`
		ClosedAccuracy float64  `json:"closed_accuracy"`
		PerLabel       map[string]struct {
			Precision, Recall, F1 *float64
			Support               int
		} `json:"per_label"`
		P50 *float64 `json:"p50_us"`
		P99 *float64 `json:"p99_us"`
	}
	if err := json.Unmarshal([]byte(stdout), &ev); err != nil {
		t.Fatalf("eval output is not one JSON object: %v\n%s", err, stdout)
	}
	if ev.N != 30 || ev.Accuracy == nil || ev.MacroF1 == nil || ev.P50 == nil || ev.P99 == nil {
		t.Fatalf("eval JSON lacks fields: %s", stdout)
	}
	if *ev.Accuracy < 0.5 || *ev.Accuracy > 1 || ev.ClosedAccuracy < 0.9 || *ev.MacroF1 <= 0 || *ev.MacroF1 > 1 {
		t.Errorf("implausible figures: %s", stdout)
	}
	if *ev.P50 <= 0 || *ev.P99 < *ev.P50 {
		t.Errorf("timings p50 %v p99 %v", *ev.P50, *ev.P99)
	}
	if len(ev.PerLabel) != 6 || ev.PerLabel["billing"].Support != 5 || ev.PerLabel["billing"].F1 == nil {
		t.Errorf("per_label %+v", ev.PerLabel)
	}

	code, stdout, stderr = run(t, "classifier", "predict", "--model", model, "--json", "I was charged twice on my card")
	if code != 0 {
		t.Fatalf("predict: exit %d: %s", code, stderr)
	}
	var p struct {
		Label   string  `json:"label"`
		Prob    float64 `json:"prob"`
		Top     []struct{ Label string }
		Explain []struct {
			Feature string
			Weight  float64
		}
	}
	if err := json.Unmarshal([]byte(stdout), &p); err != nil {
		t.Fatalf("predict JSON: %v\n%s", err, stdout)
	}
	if p.Top[0].Label != "billing" || p.Prob <= 0 || p.Prob > 1 || len(p.Explain) == 0 {
		t.Errorf("prediction %s", stdout)
	}
	code, stdout, _ = run(t, "classifier", "predict", "--model", model, "My parcel never arrived")
	if code != 0 || !strings.Contains(stdout, "delivery") || !strings.Contains(stdout, "because of") {
		t.Errorf("predict text: exit %d\n%s", code, stdout)
	}
}

func TestClassifierEvalOOSLabel(t *testing.T) {
	model := trainFixture(t)
	// Out-of-scope rows: correct when the model says unknown.
	path := filepath.Join(t.TempDir(), "oos.csv")
	data := "text,label\nwhat is the weather on mars tomorrow,NO_NODES_DETECTED\nI want a refund for the double charge,billing\n"
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run(t, "classifier", "eval", "--model", model, "--data", path, "--text-col", "text",
		"--label-col", "label", "--oos-label", "NO_NODES_DETECTED", "--json")
	if code != 0 {
		t.Fatalf("eval: exit %d: %s", code, stderr)
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(stdout), &ev); err != nil {
		t.Fatal(err)
	}
	// One object with the figures the README's table quotes.
	for _, k := range []string{"accuracy", "in_scope_accuracy", "oos_recall", "macro_f1", "p50_us", "p99_us", "score", "threshold"} {
		if _, ok := ev[k]; !ok {
			t.Errorf("no %s: %s", k, stdout)
		}
	}
	if _, ok := ev["per_label"].(map[string]any)["NO_NODES_DETECTED"]; !ok {
		t.Errorf("out-of-scope label not reported: %s", stdout)
	}
}

func TestClassifierBadInput(t *testing.T) {
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.model")
	if err := os.WriteFile(corrupt, []byte("FLMODEL\x00garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad text column", []string{"train", "--data", intentsFixture, "--text-col", "body", "--label-col", "label", "--out", filepath.Join(dir, "m")}, `"body"`},
		{"bad label column", []string{"train", "--data", intentsFixture, "--text-col", "text", "--label-col", "intent", "--out", filepath.Join(dir, "m")}, `"intent"`},
		{"column missing in second file", []string{"train", "--data", intentsFixture, "--data", filepath.Join(dir, "corrupt.model"), "--text-col", "text", "--label-col", "label", "--out", filepath.Join(dir, "m")}, `"text"`},
		{"missing data file", []string{"train", "--data", filepath.Join(dir, "none.csv"), "--text-col", "text", "--label-col", "label", "--out", filepath.Join(dir, "m")}, "none.csv"},
		{"bad threshold", []string{"train", "--data", intentsFixture, "--text-col", "text", "--label-col", "label", "--out", filepath.Join(dir, "m"), "--oos-threshold", "2"}, "--oos-threshold"},
		{"bad oos share", []string{"train", "--data", intentsFixture, "--text-col", "text", "--label-col", "label", "--out", filepath.Join(dir, "m"), "--oos-share", "1.5"}, "--oos-share"},
		{"bad max reject", []string{"train", "--data", intentsFixture, "--text-col", "text", "--label-col", "label", "--out", filepath.Join(dir, "m"), "--max-reject", "-1"}, "--max-reject"},
		{"one fold", []string{"train", "--data", intentsFixture, "--text-col", "text", "--label-col", "label", "--out", filepath.Join(dir, "m"), "--folds", "1"}, "folds"},
		{"missing model", []string{"predict", "--model", filepath.Join(dir, "none.model"), "hello"}, "none.model"},
		{"corrupt model", []string{"predict", "--model", corrupt, "hello"}, "truncated"},
		{"eval corrupt model", []string{"eval", "--model", corrupt, "--data", intentsFixture, "--text-col", "text", "--label-col", "label"}, "invalid model file"},
	} {
		code, _, stderr := run(t, append([]string{"classifier"}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit 2 naming %s", tc.name, code, stderr, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "m")); !os.IsNotExist(err) {
		t.Error("a failed train wrote a model")
	}
}

func TestClassifierEvalBadColumn(t *testing.T) {
	model := trainFixture(t)
	code, _, stderr := run(t, "classifier", "eval", "--model", model, "--data", intentsTestFixture, "--text-col", "text", "--label-col", "category", "--json")
	if code != 2 || !strings.Contains(stderr, `"category"`) || !strings.Contains(stderr, "intents_test.csv") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

// The threshold objective is set by flags, reported and recorded in the
// model: the product default caps in-scope rejections; a chatbot setting
// (HINT3) assumes half the traffic is out of scope.
func TestClassifierTrainThresholdObjective(t *testing.T) {
	dir := t.TempDir()
	type report struct {
		Report struct {
			Threshold float64 `json:"threshold"`
			OOS       struct {
				Rule            string  `json:"rule"`
				OOSShare        float64 `json:"oos_share"`
				MaxReject       float64 `json:"max_reject"`
				InScopeRejected float64 `json:"in_scope_rejected"`
				Score           string  `json:"score"`
				AUROC           float64 `json:"auroc"`
			} `json:"oos"`
		} `json:"report"`
	}
	trainJSON := func(name string, extra ...string) report {
		out := filepath.Join(dir, name)
		args := append([]string{"classifier", "train", "--data", intentsFixture, "--text-col", "text", "--label-col", "label", "--out", out, "--json"}, extra...)
		code, stdout, stderr := run(t, args...)
		if code != 0 {
			t.Fatalf("train %v: exit %d: %s", extra, code, stderr)
		}
		var r report
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Fatalf("train JSON: %v\n%s", err, stdout)
		}
		return r
	}
	def := trainJSON("default.model")
	if o := def.Report.OOS; o.OOSShare != 0.3 || o.MaxReject != 0.15 || o.InScopeRejected > 0.15 || o.Score != "energy" || o.AUROC <= 0.5 {
		t.Errorf("default objective %+v", o)
	}
	// The fixture's 20 examples a label give an AUROC below the default bar.
	chat := trainJSON("chatbot.model", "--oos-share", "0.5", "--max-reject", "1", "--min-auroc", "0.6")
	if o := chat.Report.OOS; o.OOSShare != 0.5 || o.MaxReject != 1 || strings.Contains(o.Rule, "at most") {
		t.Errorf("chatbot objective %+v", o)
	}
	// The default's bar is not met on the fixture (no threshold); the
	// lowered one is, so the chatbot model can say "unknown".
	if !strings.HasPrefix(def.Report.OOS.Rule, "none") || def.Report.Threshold != 0 {
		t.Errorf("default on the fixture: threshold %v, rule %q", def.Report.Threshold, def.Report.OOS.Rule)
	}
	if chat.Report.OOS.Score != "energy" || chat.Report.OOS.InScopeRejected <= 0 {
		t.Errorf("chatbot objective %+v", chat.Report.OOS)
	}
	// Word vectors are on by default; --word-vectors=false trains n-grams only.
	for name, want := range map[string]string{"default.model": "glove6b-100d-50k-q32", "ngrams.model": ""} {
		if name == "ngrams.model" {
			trainJSON(name, "--word-vectors=false")
		}
		m, err := model.LoadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if m.Features.WordVectors != want {
			t.Errorf("%s: word vectors %q, want %q", name, m.Features.WordVectors, want)
		}
	}
	m, err := model.LoadFile(filepath.Join(dir, "chatbot.model"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Meta.Options.OOSShare != 0.5 || m.Meta.Options.MaxReject != 1 || m.Meta.Report.OOS == nil || m.Meta.Report.OOS.Rule != chat.Report.OOS.Rule || m.Threshold != chat.Report.Threshold {
		t.Errorf("model file records options %+v, oos %+v, threshold %v", m.Meta.Options, m.Meta.Report.OOS, m.Threshold)
	}
}

// sharedCSV reads a training file of ../shared/datasets (beside the
// repository on developer machines and in CI); without it the test is
// skipped, except under CI=true.
func sharedCSV(t *testing.T, rel, textCol, labelCol string) *model.Dataset {
	t.Helper()
	ds, err := model.ReadCSV("../../../../../shared/datasets/"+rel, textCol, labelCol)
	switch {
	case errors.Is(err, os.ErrNotExist) && os.Getenv("CI") != "true":
		t.Skipf("%s not present (../shared/datasets)", rel)
	case err != nil:
		t.Fatalf("shared data set: %v", err)
	}
	return ds
}

func writeCSV(t *testing.T, path string, ds *model.Dataset) {
	t.Helper()
	var b strings.Builder
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"text", "label"})
	for i, text := range ds.Texts {
		_ = w.Write([]string{text, ds.Labels[i]})
	}
	w.Flush()
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

type adaptEval struct {
	Accuracy    float64  `json:"accuracy"`
	UnknownRate float64  `json:"unknown_rate"`
	OOSRecall   *float64 `json:"oos_recall"`
	Adapted     bool     `json:"oos_adapted"`
	Share       *float64 `json:"oos_share_estimate"`
	Threshold   *float64 `json:"adapted_threshold"`
}

// By default eval estimates the data's out-of-scope share from the
// model's scores and decides with the threshold for it: on in-scope rows
// it rejects fewer than the fixed threshold, on rows mostly off topic
// (banking questions to a mattress shop's model) it catches more; with
// --oos-adapt=false the fixed threshold decides and the estimate is null.
func TestClassifierEvalAdapt(t *testing.T) {
	shop := sharedCSV(t, "hint3/v1/sofmattress_train.csv", "sentence", "label")
	bank := sharedCSV(t, "banking77/train.csv", "text", "category")
	dir := t.TempDir()
	trainPart, held, mixed := &model.Dataset{}, &model.Dataset{}, &model.Dataset{}
	for i, text := range shop.Texts {
		if i%5 == 0 {
			held.Add(text, shop.Labels[i])
		} else {
			trainPart.Add(text, shop.Labels[i])
		}
	}
	inScope := &model.Dataset{}
	inScope.Append(held)
	inScope.Append(held) // 130 rows: an estimate needs 100
	for i := range 30 {
		mixed.Add(held.Texts[i], held.Labels[i])
	}
	for i := 0; mixed.Len() < 130; i += 97 {
		mixed.Add(bank.Texts[i], "OOS")
	}
	for name, ds := range map[string]*model.Dataset{"train.csv": trainPart, "in.csv": inScope, "mixed.csv": mixed} {
		writeCSV(t, filepath.Join(dir, name), ds)
	}
	modelPath := filepath.Join(dir, "shop.model")
	// N-grams only: with word vectors, this sample's fixed threshold
	// already rejects most banking text and the adapted one, which
	// overestimates the share of such foreign text (docs/classifier.md),
	// ends one item behind it. The adaptation, not the features, is
	// tested here.
	if code, _, stderr := run(t, "classifier", "train", "--data", filepath.Join(dir, "train.csv"), "--text-col", "text",
		"--label-col", "label", "--out", modelPath, "--word-vectors=false"); code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	eval := func(data string, adapt bool) adaptEval {
		t.Helper()
		code, stdout, stderr := run(t, "classifier", "eval", "--model", modelPath, "--data", filepath.Join(dir, data),
			"--text-col", "text", "--label-col", "label", "--oos-label", "OOS", "--json", "--oos-adapt="+strconv.FormatBool(adapt))
		if code != 0 {
			t.Fatalf("eval: exit %d: %s", code, stderr)
		}
		var ev adaptEval
		if err := json.Unmarshal([]byte(stdout), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Adapted != adapt || (ev.Share != nil) != adapt || !adapt && ev.Threshold != nil {
			t.Errorf("%s adapt=%v: %s", data, adapt, stdout)
		}
		return ev
	}
	inA, inF := eval("in.csv", true), eval("in.csv", false)
	if !(inA.UnknownRate < inF.UnknownRate) || !(inA.Accuracy > inF.Accuracy) {
		t.Errorf("in-scope rows: adapted %+v, fixed %+v", inA, inF)
	}
	mixA, mixF := eval("mixed.csv", true), eval("mixed.csv", false)
	if inA.Share == nil || mixA.Share == nil || !(*mixA.Share > *inA.Share) || !(*mixA.OOSRecall > *mixF.OOSRecall) || !(mixA.Accuracy > mixF.Accuracy) {
		t.Errorf("mostly off-topic rows: adapted %+v, fixed %+v; in-scope share %v", mixA, mixF, inA.Share)
	}
}
