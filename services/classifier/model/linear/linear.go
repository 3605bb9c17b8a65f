// Package linear trains and applies linear multiclass models over sparse
// vectors: one-vs-rest L2-regularised squared-hinge SVMs fitted by dual
// coordinate descent (Hsieh et al. 2008, the LIBLINEAR solver), one class
// per goroutine. Training is deterministic for a given seed whatever the
// number of workers.
package linear

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
)

// Entry is one non-zero of a sparse vector.
type Entry struct {
	Index int32
	Value float32
}

// Vector is a sparse vector, entries in increasing Index order.
type Vector []Entry

// Params are the solver's settings.
type Params struct {
	// C is the inverse regularisation strength (> 0).
	C float64
	// Epsilon is the stopping tolerance on the projected gradient (> 0;
	// LIBLINEAR's default is 0.1).
	Epsilon float64
	// MaxEpochs bounds the passes over the data per class.
	MaxEpochs int
	// Bias is the value of the constant feature that carries the
	// intercept (1 is usual; 0 fits no intercept).
	Bias float64
	// Seed seeds the visiting order.
	Seed uint64
	// Workers is how many classes are fitted at once; 0 = GOMAXPROCS.
	Workers int
}

// DefaultParams are LIBLINEAR's defaults with C = 1.
func DefaultParams() Params {
	return Params{C: 1, Epsilon: 0.1, MaxEpochs: 1000, Bias: 1}
}

// Model holds K weight vectors over Dim features, stored feature-major
// (W[j*K+k]) so scoring a sparse input reads contiguous rows.
type Model struct {
	Dim, K int
	W      []float32
	B      []float32
}

// ErrInput is wrapped by errors about the training data or parameters.
var ErrInput = errors.New("invalid training input")

// Train fits one binary classifier per class (class k against the rest)
// on rows X with labels y in [0, k). progress, if not nil, is called after
// each class with the number done and k; it may be called from several
// goroutines, never concurrently.
func Train(ctx context.Context, X []Vector, y []int, dim, k int, p Params, progress func(done, total int)) (*Model, error) {
	if len(X) != len(y) || len(X) == 0 {
		return nil, fmt.Errorf("%w: %d rows, %d labels", ErrInput, len(X), len(y))
	}
	if k < 2 {
		return nil, fmt.Errorf("%w: %d classes, need at least 2", ErrInput, k)
	}
	if !(p.C > 0) || !(p.Epsilon > 0) || p.MaxEpochs < 1 {
		return nil, fmt.Errorf("%w: C %v, epsilon %v, max epochs %d", ErrInput, p.C, p.Epsilon, p.MaxEpochs)
	}
	for i, c := range y {
		if c < 0 || c >= k {
			return nil, fmt.Errorf("%w: row %d has class %d, want 0..%d", ErrInput, i, c, k-1)
		}
	}
	for i, x := range X {
		for _, e := range x {
			if e.Index < 0 || int(e.Index) >= dim {
				return nil, fmt.Errorf("%w: row %d has feature %d, want 0..%d", ErrInput, i, e.Index, dim-1)
			}
		}
	}
	diag := 1 / (2 * p.C)
	qd := make([]float64, len(X))
	for i, x := range X {
		s := p.Bias*p.Bias + diag
		for _, e := range x {
			s += float64(e.Value) * float64(e.Value)
		}
		qd[i] = s
	}
	m := &Model{Dim: dim, K: k, W: make([]float32, dim*k), B: make([]float32, k)}
	workers := p.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, k)
	var (
		next atomic.Int64
		mu   sync.Mutex
		done int
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := make([]float64, dim)
			alpha := make([]float64, len(X))
			index := make([]int, len(X))
			for {
				c := int(next.Add(1) - 1)
				if c >= k || ctx.Err() != nil {
					return
				}
				clear(w)
				clear(alpha)
				b := solve(X, y, c, qd, diag, p, w, alpha, index)
				for j, v := range w {
					if v != 0 {
						m.W[j*k+c] = float32(v)
					}
				}
				m.B[c] = float32(b * p.Bias)
				mu.Lock()
				done++
				if progress != nil {
					progress(done, k)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return m, nil
}

// solve runs dual coordinate descent with shrinking for class c against
// the rest, leaving the weights in w and returning the bias weight.
func solve(X []Vector, y []int, c int, qd []float64, diag float64, p Params, w, alpha []float64, index []int) float64 {
	n := len(X)
	rng := rand.New(rand.NewPCG(p.Seed, uint64(c)+0x9e3779b97f4a7c15))
	for i := range index {
		index[i] = i
	}
	var b float64
	active := n
	pgMaxOld := math.Inf(1)
	for epoch := 0; epoch < p.MaxEpochs; epoch++ {
		pgMaxNew, pgMinNew := math.Inf(-1), math.Inf(1)
		rng.Shuffle(active, func(i, j int) { index[i], index[j] = index[j], index[i] })
		for s := 0; s < active; s++ {
			i := index[s]
			yi := -1.0
			if y[i] == c {
				yi = 1
			}
			x := X[i]
			dot := b * p.Bias
			for _, e := range x {
				dot += w[e.Index] * float64(e.Value)
			}
			g := yi*dot - 1 + diag*alpha[i]
			pg := 0.0
			if alpha[i] == 0 {
				if g > pgMaxOld {
					active--
					index[s], index[active] = index[active], index[s]
					s--
					continue
				}
				if g < 0 {
					pg = g
				}
			} else {
				pg = g
			}
			pgMaxNew = max(pgMaxNew, pg)
			pgMinNew = min(pgMinNew, pg)
			if math.Abs(pg) > 1e-12 {
				old := alpha[i]
				alpha[i] = max(old-g/qd[i], 0)
				d := (alpha[i] - old) * yi
				for _, e := range x {
					w[e.Index] += d * float64(e.Value)
				}
				b += d * p.Bias
			}
		}
		if pgMaxNew-pgMinNew <= p.Epsilon {
			if active == n {
				break
			}
			active = n
			pgMaxOld = math.Inf(1)
			continue
		}
		pgMaxOld = pgMaxNew
		if pgMaxOld <= 0 {
			pgMaxOld = math.Inf(1)
		}
	}
	return b
}

// Scores writes the K decision values of x into out (len K).
func (m *Model) Scores(x Vector, out []float64) {
	out = out[:m.K]
	for c := range out {
		out[c] = float64(m.B[c])
	}
	for _, e := range x {
		row := m.W[int(e.Index)*m.K:][:len(out)]
		v := float64(e.Value)
		for c := range out {
			out[c] += v * float64(row[c])
		}
	}
}
