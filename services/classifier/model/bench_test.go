package model

import (
	"context"
	"errors"
	"os"
	"testing"
)

// cfpb lives beside banking77; its narratives are long (≈ 260
// characters, ≈ 1500 n-grams each).
const cfpb = "../../../../shared/datasets/cfpb_complaints_1000/train.csv"

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
	benchPredictData(b, benchData(b, big), o)
}

func benchPredictData(b *testing.B, ds *Dataset, o PredictOptions) {
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

func cfpbData(b *testing.B) *Dataset {
	ds, err := ReadCSV(cfpb, "narrative", "product")
	if errors.Is(err, os.ErrNotExist) {
		b.Skip("cfpb_complaints_1000 not present")
	}
	if err != nil {
		b.Fatal(err)
	}
	return ds
}

// Long texts: the worst case of the p99 target.
func BenchmarkPredictCFPB(b *testing.B) {
	benchPredictData(b, cfpbData(b), PredictOptions{TopLabels: 5, Explain: 8})
}

func BenchmarkPredictCFPBNoExplain(b *testing.B) {
	benchPredictData(b, cfpbData(b), PredictOptions{TopLabels: 1})
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
