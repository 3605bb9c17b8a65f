package model

import (
	"context"
	"errors"
	"os"
	"testing"
)

func benchData(b *testing.B, big bool) *Dataset {
	if !big {
		return fixture(b, "intents.csv")
	}
	ds, err := ReadCSV(banking77, "text", "category")
	if errors.Is(err, os.ErrNotExist) {
		b.Skip("banking77 not present")
	}
	if err != nil {
		b.Fatal(err)
	}
	return ds
}

func benchPredict(b *testing.B, big bool, o PredictOptions) {
	ds := benchData(b, big)
	opts := testOptions()
	opts.Folds, opts.FitThreshold = 2, false
	m, _, err := Train(context.Background(), ds, opts, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m.PredictWith(ds.Texts[i%ds.Len()], o)
		i++
	}
}

// Classification of one item with its explanation, as the CLI and the
// service do it; one goroutine.
func BenchmarkPredict(b *testing.B) {
	benchPredict(b, false, PredictOptions{TopLabels: 5, Explain: 8})
}

func BenchmarkPredictBanking77(b *testing.B) {
	benchPredict(b, true, PredictOptions{TopLabels: 5, Explain: 8})
}

func BenchmarkPredictBanking77NoExplain(b *testing.B) {
	benchPredict(b, true, PredictOptions{TopLabels: 1})
}

// Training with the default options: 5-fold cross-validation, the
// label-held-out threshold fit and the final model.
func benchTrain(b *testing.B, big bool) {
	ds := benchData(b, big)
	for b.Loop() {
		if _, _, err := Train(context.Background(), ds, testOptions(), nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTrain(b *testing.B)          { benchTrain(b, false) }
func BenchmarkTrainBanking77(b *testing.B) { benchTrain(b, true) }
