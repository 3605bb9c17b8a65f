package model

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// A file of format 1 (no score in the header) still loads, its threshold
// on the top probability, with the same predictions; an unknown version
// is refused by name.
func TestLoadFormat1(t *testing.T) {
	o := testOptions()
	o.FitThreshold, o.Threshold = false, 0.4
	m, _ := train(t, fixture(t, "intents.csv"), o)
	m.Score = "" // omitted from the header, as format 1 wrote it
	b := saved(t, m)
	binary.LittleEndian.PutUint32(b[8:], 1)
	got, err := Load(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if got.Score != ScoreProb || got.Threshold != 0.4 {
		t.Fatalf("format 1: score %q threshold %v", got.Score, got.Threshold)
	}
	m.Score = ScoreProb
	for _, text := range fixture(t, "intents_test.csv").Texts {
		if a, b := m.Predict(text), got.Predict(text); a.Label != b.Label || a.Prob != b.Prob {
			t.Fatalf("%q: %+v, reloaded %+v", text, a, b)
		}
	}
	binary.LittleEndian.PutUint32(b[8:], FormatVersion+1)
	if _, err := Load(bytes.NewReader(b)); err == nil || !strings.Contains(err.Error(), "format version") {
		t.Errorf("version %d: %v", FormatVersion+1, err)
	}
}

// With the default options, a model of a mattress shop's chatbot (HINT3
// SOFMattress) sends most banking questions to "unknown" while keeping
// most of its own topics, and reloads with identical predictions.
func TestDefaultRejectsOffTopicText(t *testing.T) {
	shop, err := ReadCSV(expRoot+"hint3/v1/sofmattress_train.csv", "sentence", "label")
	if err != nil {
		t.Skip(err)
	}
	bank, err := ReadCSV(banking77, "text", "category")
	if err != nil {
		t.Skip(err)
	}
	m, rep := train(t, shop, testOptions())
	if m.Score != ScoreEnergy || rep.OOS == nil || rep.OOS.AUROC < rep.OOS.MinAUROC {
		t.Fatalf("score %q, oos %+v", m.Score, rep.OOS)
	}
	if rep.CVRejected > testOptions().MaxReject+0.02 {
		t.Errorf("%.3f of in-scope rows rejected out of fold", rep.CVRejected)
	}
	got, err := Load(bytes.NewReader(saved(t, m)))
	if err != nil {
		t.Fatal(err)
	}
	unknown, n := 0, 0
	for i := 0; i < bank.Len(); i += 50 {
		p := m.Predict(bank.Texts[i])
		if q := got.Predict(bank.Texts[i]); q.Label != p.Label || q.OOSScore != p.OOSScore {
			t.Fatalf("%q: %+v, reloaded %+v", bank.Texts[i], p, q)
		}
		n++
		if p.Label == Unknown {
			unknown++
		}
	}
	if rate := float64(unknown) / float64(n); rate < 0.7 {
		t.Errorf("only %.2f of %d banking questions unknown to the mattress shop", rate, n)
	}
}
