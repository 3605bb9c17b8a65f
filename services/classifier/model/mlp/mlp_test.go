package mlp

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/feedloop/feedloop/services/classifier/model/linear"
)

// xorData: class 1 when exactly one of features 0 and 1 is present,
// feature 2 always present, features 3..9 noise. No linear model gets
// more than 3 of the 4 patterns right.
func xorData(n int, seed uint64) ([]linear.Vector, []int) {
	rng := rand.New(rand.NewPCG(seed, 3))
	var X []linear.Vector
	var y []int
	for range n {
		a, b := rng.IntN(2) == 1, rng.IntN(2) == 1
		var x linear.Vector
		if a {
			x = append(x, linear.Entry{Index: 0, Value: 1})
		}
		if b {
			x = append(x, linear.Entry{Index: 1, Value: 1})
		}
		x = append(x, linear.Entry{Index: 2, Value: 1})
		x = append(x, linear.Entry{Index: int32(3 + rng.IntN(7)), Value: 0.5})
		X = append(X, x)
		c := 0
		if a != b {
			c = 1
		}
		y = append(y, c)
	}
	return X, y
}

func accuracy(X []linear.Vector, y []int, score func(linear.Vector, []float64)) float64 {
	s := make([]float64, 2)
	ok := 0
	for i, x := range X {
		score(x, s)
		if (s[1] > s[0]) == (y[i] == 1) {
			ok++
		}
	}
	return float64(ok) / float64(len(X))
}

func TestLearnsWhatALinearModelCannot(t *testing.T) {
	X, y := xorData(400, 1)
	tX, ty := xorData(200, 2)
	lin, err := linear.Train(context.Background(), X, y, 10, 2, linear.Params{C: 10, Epsilon: 0.01, MaxEpochs: 500, Bias: 1, Seed: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if acc := accuracy(tX, ty, lin.Scores); acc > 0.8 {
		t.Fatalf("linear model got %.2f on XOR: the task does not need a hidden layer", acc)
	}
	p := DefaultParams()
	p.Hidden, p.Epochs, p.Batch, p.Dropout, p.InputDropout, p.LR, p.Init = 16, 60, 8, 0, 0, 0.01, 0.5
	m, _, err := Train(context.Background(), X, y, 10, 2, nil, nil, p)
	if err != nil {
		t.Fatal(err)
	}
	if acc := accuracy(tX, ty, func(x linear.Vector, s []float64) { m.Logits(x, nil, s) }); acc < 0.99 {
		t.Fatalf("network got %.2f on XOR, want ≥ 0.99", acc)
	}
	// Without the ReLU the network is linear again.
	p.Linear = true
	ml, _, err := Train(context.Background(), X, y, 10, 2, nil, nil, p)
	if err != nil {
		t.Fatal(err)
	}
	if acc := accuracy(tX, ty, func(x linear.Vector, s []float64) { ml.Logits(x, nil, s) }); acc > 0.8 {
		t.Fatalf("linear-hidden network got %.2f on XOR, want ≤ 0.8", acc)
	}
}

func TestDeterministicWhateverTheWorkers(t *testing.T) {
	X, y := xorData(300, 1)
	vX, vy := xorData(50, 4)
	p := DefaultParams()
	p.Hidden, p.Epochs, p.Batch = 8, 5, 16
	var models []*Model
	var epochs []int
	for _, w := range []int{1, 2, 3} {
		p.Workers = w
		m, e, err := Train(context.Background(), X, y, 10, 2, vX, vy, p)
		if err != nil {
			t.Fatal(err)
		}
		models, epochs = append(models, m), append(epochs, e)
	}
	for i, m := range models[1:] {
		if !slices.Equal(m.W1, models[0].W1) || !slices.Equal(m.W2, models[0].W2) ||
			!slices.Equal(m.B1, models[0].B1) || !slices.Equal(m.B2, models[0].B2) || epochs[i+1] != epochs[0] {
			t.Fatalf("workers %d gave another model than 1 worker", i+2)
		}
	}
}

func TestRejectsBadInput(t *testing.T) {
	X, y := xorData(10, 1)
	y[3] = 2
	if _, _, err := Train(context.Background(), X, y, 10, 2, nil, nil, DefaultParams()); err == nil {
		t.Fatal("class out of range accepted")
	}
}

// One text of BANKING77's size (≈ 200 nonzeros of 20,000 features, 77
// classes) through a 256-unit network, one goroutine.
func BenchmarkLogits(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	m := &Model{Dim: 20000, H: 256, K: 77, W1: make([]float32, 20000*256), B1: make([]float32, 256),
		W2: make([]float32, 77*256), B2: make([]float32, 77)}
	for i := range m.W1 {
		m.W1[i] = float32(rng.NormFloat64())
	}
	var x linear.Vector
	for j := int32(0); j < 20000; j += 100 {
		x = append(x, linear.Entry{Index: j + int32(rng.IntN(100)), Value: 0.07})
	}
	h, s := make([]float32, m.H), make([]float64, m.K)
	for b.Loop() {
		m.Logits(x, h, s)
	}
}
