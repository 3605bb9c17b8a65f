package model

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/feedloop/feedloop/services/classifier/model/features"
)

// thresholdItems are pseudo-out-of-fold predictions: in-scope items are
// confident (and right) more often than out-of-scope ones.
func thresholdItems(seed uint64) []oosItem {
	rng := rand.New(rand.NewPCG(seed, 0))
	var items []oosItem
	for range 800 {
		p := 0.3 + 0.7*math.Sqrt(rng.Float64())
		items = append(items, oosItem{p: p, inScope: true, correct: rng.Float64() < p})
	}
	for range 200 {
		items = append(items, oosItem{p: 0.2 + 0.6*rng.Float64()})
	}
	return items
}

// rates recomputes, for a threshold, the figures fitThreshold reports.
func rates(items []oosItem, t float64) (acc, rej, rec float64) {
	var nIn, nOut, right, rejected, caught float64
	for _, it := range items {
		if !it.inScope {
			nOut++
			if it.p < t {
				caught++
			}
			continue
		}
		nIn++
		switch {
		case it.p < t:
			rejected++
		case it.correct:
			right++
		}
	}
	return right / nIn, rejected / nIn, caught / nOut
}

func TestFitThresholdObjective(t *testing.T) {
	items := thresholdItems(1)
	prev := math.Inf(-1)
	for _, share := range []float64{0, 0.15, 0.5, 0.9} {
		thr, rep := fitThreshold(slicesClone(items), share, 1, 1)
		acc, rej, rec := rates(items, thr)
		if math.Abs(acc-rep.InScopeAccuracy) > 1e-12 || math.Abs(rej-rep.InScopeRejected) > 1e-12 || math.Abs(rec-rep.OOSRecall) > 1e-12 {
			t.Errorf("share %g: report %+v, recomputed accuracy %v rejected %v recall %v", share, rep, acc, rej, rec)
		}
		if math.Abs(rep.Objective-rep.EstimatedAccuracy(share)) > 1e-12 {
			t.Errorf("share %g: objective %v, expected accuracy %v", share, rep.Objective, rep.EstimatedAccuracy(share))
		}
		// No threshold on a fine grid does better than the one fitted.
		for g := 0.0; g <= 1; g += 0.005 {
			a, _, r := rates(items, g)
			if v := (1-share)*a + share*r; v > rep.Objective+1e-12 {
				t.Fatalf("share %g: threshold %.3f scores %.4f, the fitted %.3f only %.4f", share, g, v, thr, rep.Objective)
			}
		}
		// Assuming more out-of-scope traffic never lowers the threshold.
		if thr < prev {
			t.Errorf("share %g: threshold %v below the %v of a smaller share", share, thr, prev)
		}
		prev = thr
		if share == 0 && !math.IsInf(thr, -1) {
			t.Errorf("share 0: threshold %v, want -Inf (rejecting never helps)", thr)
		}
	}
	// The cap binds: at most that share of in-scope items is rejected,
	// and the best threshold under the cap is found.
	free, freeRep := fitThreshold(slicesClone(items), 0.5, 1, 1)
	for _, maxReject := range []float64{0, 0.02, 0.05, 0.2} {
		thr, rep := fitThreshold(slicesClone(items), 0.5, maxReject, 1)
		_, rej, _ := rates(items, thr)
		if rej > maxReject || rep.InScopeRejected > maxReject {
			t.Errorf("cap %g: %.4f of in-scope items rejected", maxReject, rej)
		}
		if freeRep.InScopeRejected > maxReject && thr > free {
			t.Errorf("cap %g: threshold %v above the uncapped %v", maxReject, thr, free)
		}
		for g := 0.0; g <= 1; g += 0.005 {
			a, rj, r := rates(items, g)
			if v := 0.5*a + 0.5*r; rj <= maxReject && v > rep.Objective+1e-12 {
				t.Fatalf("cap %g: threshold %.3f rejects %.3f and scores %.4f, the fitted %.3f only %.4f", maxReject, g, rj, v, thr, rep.Objective)
			}
		}
		if !strings.Contains(rep.Rule, "50% out-of-scope") || !strings.Contains(rep.Rule, fmt.Sprintf("at most %g%%", 100*maxReject)) {
			t.Errorf("rule %q", rep.Rule)
		}
	}
	if freeRep.InScopeRejected <= 0.05 {
		t.Fatalf("the fixture should make the uncapped threshold reject > 5%%, got %v", freeRep.InScopeRejected)
	}
	if _, rep := fitThreshold(slicesClone(items), 0.5, 1, 1); strings.Contains(rep.Rule, "at most") {
		t.Errorf("uncapped rule %q", rep.Rule)
	}
}

// maxThreshold bounds the threshold so that at most the given share of
// in-scope items is rejected, and fitThreshold keeps to the bound.
func TestMaxThreshold(t *testing.T) {
	ps := []float64{0.9, 0.2, 0.5, 0.5, 0.3, 0.8, 0.7, 0.6, 0.95, 0.4}
	for _, tc := range []struct{ share, want float64 }{{0, 0.2}, {0.05, 0.2}, {0.1, 0.3}, {0.25, 0.4}, {0.3, 0.5}, {0.95, 0.95}, {1, math.Inf(1)}} {
		got := maxThreshold(ps, tc.share)
		if got != tc.want {
			t.Errorf("share %g: %v, want %v", tc.share, got, tc.want)
		}
		rejected := 0
		for _, p := range ps {
			if p < got {
				rejected++
			}
		}
		if float64(rejected) > tc.share*float64(len(ps)) {
			t.Errorf("share %g: threshold %v rejects %d of %d", tc.share, got, rejected, len(ps))
		}
	}
	items := thresholdItems(2)
	free, _ := fitThreshold(slicesClone(items), 0.5, 1, 1)
	bound := free / 2
	if got, _ := fitThreshold(slicesClone(items), 0.5, 1, bound); got > bound || math.IsInf(got, -1) {
		t.Errorf("threshold %v, bound %v (free %v)", got, bound, free)
	}
}

func slicesClone(items []oosItem) []oosItem { return append([]oosItem(nil), items...) }

// The default objective keeps in-scope rejections within the cap, and the
// settings are recorded in the model file.
func TestDefaultThresholdObjectiveRecorded(t *testing.T) {
	o := testOptions()
	if o.OOSShare <= 0 || o.OOSShare > 0.5 || o.MaxReject <= 0 || o.MaxReject > 0.2 || o.OOSScore != ScoreEnergy {
		t.Fatalf("defaults: share %v, max reject %v", o.OOSShare, o.MaxReject)
	}
	m, rep := train(t, fixture(t, "intents.csv"), o)
	if rep.CVRejected > o.MaxReject || rep.CVAccuracyAtThreshold < rep.CVAccuracy-o.MaxReject {
		t.Errorf("closed-set cross-validation: %.3f rejected, accuracy %.3f at the threshold, %.3f without", rep.CVRejected, rep.CVAccuracyAtThreshold, rep.CVAccuracy)
	}
	if rep.OOS == nil || rep.OOS.InScopeRejected > o.MaxReject || rep.OOS.OOSShare != o.OOSShare || rep.OOS.MaxReject != o.MaxReject || rep.OOS.Rule == "" {
		t.Fatalf("oos report %+v", rep.OOS)
	}
	var b bytes.Buffer
	if err := m.Save(&b); err != nil {
		t.Fatal(err)
	}
	got, err := Load(&b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Meta.Options.OOSShare != o.OOSShare || got.Meta.Options.MaxReject != o.MaxReject || got.Meta.Report.OOS == nil || got.Meta.Report.OOS.Rule != rep.OOS.Rule {
		t.Errorf("loaded metadata: options %+v, oos %+v", got.Meta.Options, got.Meta.Report.OOS)
	}
	o.OOSShare = 1.5
	if err := o.Validate(); err == nil {
		t.Error("share 1.5 accepted")
	}
	o.OOSShare, o.MaxReject = 0.1, -0.1
	if err := o.Validate(); err == nil {
		t.Error("max reject -0.1 accepted")
	}
}

// The vocabulary's table finds every key at its index and nothing else.
func TestVocabTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	seen := map[uint64]bool{}
	var keys []uint64
	for len(keys) < 5000 {
		k := uint64(rng.Uint32()>>10)<<8 | uint64(rng.IntN(2))
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	tab := newTable(keys)
	for j, k := range keys {
		if got, ok := tab.get(k); !ok || got != int32(j) {
			t.Fatalf("key %x: %d %v, want %d", k, got, ok, j)
		}
	}
	for range 5000 {
		k := uint64(rng.Uint32()>>10)<<8 | uint64(rng.IntN(2))
		if _, ok := tab.get(k); ok != seen[k] {
			t.Fatalf("key %x found %v, in the set %v", k, ok, seen[k])
		}
	}
	empty := newTable(nil)
	if _, ok := empty.get(0); ok {
		t.Error("empty table finds 0")
	}
}

// Predictions from pooled memory, on many goroutines at once, are those
// of a lone call; asking for no explanation changes nothing else.
func TestPredictConcurrentAndOptions(t *testing.T) {
	m, _ := train(t, fixture(t, "intents.csv"), testOptions())
	test := fixture(t, "intents_test.csv")
	texts := append(test.Texts, "", "😡😡", "Straße café über alles", strings.Repeat("refund my double charge please ", 40))
	want := make([]Prediction, len(texts))
	for i, text := range texts {
		want[i] = m.Predict(text)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range 20 {
				i := (g*7 + r) % len(texts)
				if got := m.Predict(texts[i]); !reflect.DeepEqual(got, want[i]) {
					errs <- fmt.Sprintf("%q: %+v, alone %+v", texts[i], got, want[i])
					return
				}
				// A cheaper call in between must not disturb the pool.
				m.PredictWith(texts[(i+1)%len(texts)], PredictOptions{TopLabels: 1})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	for i, text := range texts {
		p := m.PredictWith(text, PredictOptions{TopLabels: 2})
		if p.Explain != nil || len(p.Top) != 2 || p.Label != want[i].Label || p.Prob != want[i].Prob || p.Top[0] != want[i].Top[0] {
			t.Errorf("%q without explanation: %+v, with %+v", text, p, want[i])
		}
	}
	// Every explaining n-gram supports the top label, largest first.
	p := m.Predict("I was charged twice, please refund me")
	if len(p.Explain) == 0 {
		t.Fatal("no explanation")
	}
	for i, c := range p.Explain {
		if c.Weight <= 0 || i > 0 && c.Weight > p.Explain[i-1].Weight || c.Feature == "" {
			t.Errorf("explanation %+v", p.Explain)
		}
	}
	// The vector from pooled memory is the training-time vector.
	ts := m.Features.Terms(texts[len(texts)-1])
	var fb features.Buffer
	x, _ := m.vocab.appendVector(nil, nil, m.Features.AppendTerms(nil, texts[len(texts)-1], &fb))
	if !reflect.DeepEqual(x, m.vocab.vector(ts)) {
		t.Error("appendVector differs from vector")
	}
}
