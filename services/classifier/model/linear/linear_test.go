package linear

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

// blobs makes k classes, each with its own features 3k..3k+2 plus shared
// noise features, so a linear model separates them.
func blobs(n, k int, seed uint64) ([]Vector, []int, int) {
	rng := rand.New(rand.NewPCG(seed, 0))
	dim := 3*k + 10
	X := make([]Vector, n)
	y := make([]int, n)
	for i := range X {
		c := i % k
		y[i] = c
		x := Vector{{Index: int32(3*c + rng.IntN(3)), Value: 1}}
		x = append(x, Entry{Index: int32(3*k + rng.IntN(10)), Value: 0.5})
		X[i] = x
	}
	return X, y, dim
}

func TestTrainSeparates(t *testing.T) {
	X, y, dim := blobs(300, 4, 1)
	m, err := Train(context.Background(), X, y, dim, 4, DefaultParams(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := make([]float64, 4)
	for i, x := range X {
		m.Scores(x, s)
		if best := slices.Index(s, slices.Max(s)); best != y[i] {
			t.Fatalf("row %d: predicted %d, want %d (scores %v)", i, best, y[i], s)
		}
	}
}

func TestTrainDeterministicAcrossWorkers(t *testing.T) {
	X, y, dim := blobs(500, 5, 2)
	p := DefaultParams()
	p.Seed = 7
	var prev *Model
	for _, w := range []int{1, 2, 5} {
		p.Workers = w
		calls := 0
		m, err := Train(context.Background(), X, y, dim, 5, p, func(done, total int) {
			calls++
			if total != 5 || done != calls {
				t.Errorf("progress(%d, %d) on call %d", done, total, calls)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if calls != 5 {
			t.Errorf("%d progress calls, want 5", calls)
		}
		if prev != nil && (!slices.Equal(prev.W, m.W) || !slices.Equal(prev.B, m.B)) {
			t.Fatalf("workers=%d gives different weights", w)
		}
		prev = m
	}
}

func TestTrainRejectsBadInput(t *testing.T) {
	X, y, dim := blobs(10, 2, 3)
	for name, f := range map[string]func() error{
		"one class": func() error { _, err := Train(context.Background(), X, y, dim, 1, DefaultParams(), nil); return err },
		"label range": func() error {
			_, err := Train(context.Background(), X, append(y[:9:9], 5), dim, 2, DefaultParams(), nil)
			return err
		},
		"feature": func() error { _, err := Train(context.Background(), X, y, 2, 2, DefaultParams(), nil); return err },
		"C": func() error {
			p := DefaultParams()
			p.C = 0
			_, err := Train(context.Background(), X, y, dim, 2, p, nil)
			return err
		},
		"lengths": func() error {
			_, err := Train(context.Background(), X, y[:5], dim, 2, DefaultParams(), nil)
			return err
		},
	} {
		if err := f(); !errors.Is(err, ErrInput) {
			t.Errorf("%s: err = %v, want ErrInput", name, err)
		}
	}
}

func TestTrainCancelled(t *testing.T) {
	X, y, dim := blobs(100, 3, 4)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Train(ctx, X, y, dim, 3, DefaultParams(), nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
