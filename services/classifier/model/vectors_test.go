package model

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/feedloop/feedloop/services/classifier/model/features"
)

func vectorOptions() TrainOptions {
	o := testOptions()
	o.Features = o.Features.WithWordVectors()
	return o
}

// ngramOptions are the test options without word vectors.
func ngramOptions() TrainOptions {
	o := testOptions()
	o.Features.WordVectors, o.Features.WordVectorWeight = "", 0
	return o
}

// A model with the word vector block saves, loads and predicts exactly
// as trained, explanations included, and its file re-saves to the same
// bytes.
func TestWordVectorsSaveLoad(t *testing.T) {
	m, rep := train(t, fixture(t, "intents.csv"), vectorOptions())
	if m.NumFeatures() != rep.Features+100 {
		t.Errorf("%d features, want the %d n-grams + 100 dimensions", m.NumFeatures(), rep.Features)
	}
	data := saved(t, m)
	m2, err := Load(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if m2.Features != m.Features || m2.Features.WordVectors != "glove6b-100d-50k-q32" {
		t.Errorf("feature config %+v after loading", m2.Features)
	}
	texts := append(fixture(t, "intents_test.csv").Texts, "", "😀", "reimbursement of a duplicated payment", "I don't like it")
	for _, text := range texts {
		a, b := m.Predict(text), m2.Predict(text)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%q: %+v before, %+v after", text, a, b)
		}
	}
	if !bytes.Equal(data, saved(t, m2)) {
		t.Error("saving a loaded model gives other bytes")
	}
}

// A file written before word vectors existed (format 2, testdata) loads
// and predicts what it predicted then: labels, probabilities, top labels
// and explanations.
func TestOldModelFilePredictsAsBefore(t *testing.T) {
	m, err := LoadFile("testdata/format2-ngrams.model")
	if err != nil {
		t.Fatal(err)
	}
	if m.Features.WordVectors != "" || m.NumFeatures() != len(m.vocab.keys) {
		t.Fatalf("old file has word vectors: %+v", m.Features)
	}
	raw, err := os.ReadFile("testdata/format2-ngrams.predictions.json")
	if err != nil {
		t.Fatal(err)
	}
	var want []struct {
		Text string     `json:"text"`
		P    Prediction `json:"prediction"`
	}
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		got := m.Predict(w.Text)
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(w.P)
		if !bytes.Equal(gj, wj) {
			t.Errorf("%q: %s, was %s", w.Text, gj, wj)
		}
	}
}

// A tiny fixture whose test texts share no word with the training texts:
// n-grams alone cannot tell the topics apart, the pre-trained vectors do.
func TestWordVectorsGeneraliseToUnseenWords(t *testing.T) {
	ds := &Dataset{}
	for _, s := range []string{"pizza with cheese", "pasta and tomato sauce", "a bowl of rice soup", "fresh bread and butter", "chocolate cake dessert", "grilled chicken salad"} {
		ds.Texts, ds.Labels = append(ds.Texts, s), append(ds.Labels, "food")
	}
	for _, s := range []string{"football match tonight", "the tennis tournament", "our team won the championship", "a great goal by the striker", "golf players on the course", "the boxing fight"} {
		ds.Texts, ds.Labels = append(ds.Texts, s), append(ds.Labels, "sport")
	}
	test := map[string]string{
		"sushi noodles":          "food",
		"hamburgers fries":       "food",
		"spaghetti lasagna":      "food",
		"hockey playoffs":        "sport",
		"basketball quarterback": "sport",
		"rugby coach":            "sport",
	}
	right := func(o TrainOptions) int {
		o.Folds, o.FitThreshold, o.CGrid = 2, false, nil
		m, _ := train(t, ds, o)
		n := 0
		for text, label := range test {
			if m.Predict(text).Top[0].Label == label {
				n++
			}
		}
		return n
	}
	without, with := right(ngramOptions()), right(vectorOptions())
	t.Logf("right on %d of %d with word vectors, %d without", with, len(test), without)
	if with != len(test) || without >= with {
		t.Errorf("right on %d of %d unseen paraphrases with word vectors, %d without", with, len(test), without)
	}
}

// The dense block is explained as one entry, never as an n-gram.
func TestWordVectorsExplained(t *testing.T) {
	m, _ := train(t, fixture(t, "intents.csv"), vectorOptions())
	text := "I was charged twice, please refund me"
	p := m.PredictWith(text, PredictOptions{TopLabels: 3, Explain: 40})
	n := 0
	for _, c := range p.Explain {
		switch {
		case c.Kind == features.Vectors.String():
			n++
			if c.Feature != VectorsFeature || c.Weight <= 0 {
				t.Errorf("vector contribution %+v", c)
			}
		case !strings.Contains(strings.ToLower(text), strings.Trim(c.Feature, "<>")):
			t.Errorf("explaining n-gram %q is not in the text", c.Feature)
		}
	}
	if n != 1 {
		t.Errorf("%d word vector entries in %+v, want 1", n, p.Explain)
	}
}

// The dense block costs no allocation beyond the n-grams' path: the sum
// lives on the stack.
func TestWordVectorsPredictAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	text := "I was charged twice, please refund me"
	allocs := func(o TrainOptions) float64 {
		m, _ := train(t, fixture(t, "intents.csv"), o)
		m.PredictWith(text, PredictOptions{TopLabels: 1}) // warm the pool
		return testing.AllocsPerRun(200, func() { m.PredictWith(text, PredictOptions{TopLabels: 1}) })
	}
	if with, without := allocs(vectorOptions()), allocs(ngramOptions()); with > without {
		t.Errorf("%v allocations per prediction with word vectors, %v without", with, without)
	}
}
