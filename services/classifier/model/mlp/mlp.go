// Package mlp trains and applies a one-hidden-layer neural network over
// sparse vectors: ReLU hidden units (or linear ones, which makes it a
// fastText-style averaged-embedding model), dropout, a softmax output,
// cross-entropy loss, Adam with lazy updates of the input rows a batch
// touches. The first layer costs nonzeros × hidden per text. Training is
// deterministic for a seed whatever the number of workers: a batch's
// examples are split between workers and their gradients summed in a
// fixed order.
package mlp

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/feedloop/feedloop/services/classifier/model/linear"
)

// Params are the training settings.
type Params struct {
	Hidden int
	// Linear drops the ReLU: hidden = W1·x + b1 (a learned embedding of
	// the text, fastText-style).
	Linear bool
	// Epochs bounds the passes over the data; with validation rows the
	// weights of the best epoch are kept.
	Epochs int
	Batch  int
	// LR is Adam's step size.
	LR float64
	// Dropout is the share of hidden units zeroed in training;
	// InputDropout the share of input nonzeros.
	Dropout, InputDropout float64
	// Init is the standard deviation of the first layer's initial
	// weights.
	Init float64
	Seed uint64
	// Workers share each batch; 0 = GOMAXPROCS.
	Workers int
}

// DefaultParams are the settings measured in docs/classifier.md.
func DefaultParams() Params {
	return Params{Hidden: 256, Epochs: 12, Batch: 32, LR: 2e-3, Dropout: 0.5, InputDropout: 0.2, Init: 0.01, Seed: 1}
}

// Model is a trained network. W1 is feature-major (W1[j*H+h]) so a
// sparse input reads contiguous rows; W2 is class-major (W2[k*H+h]).
type Model struct {
	Dim, H, K int
	Linear    bool
	W1, B1    []float32
	W2, B2    []float32
}

// ErrInput is wrapped by errors about the training data or parameters.
var ErrInput = errors.New("invalid training input")

// Logits writes the K output scores of x into out; hid is scratch of
// length ≥ H (nil allocates).
func (m *Model) Logits(x linear.Vector, hid []float32, out []float64) {
	if len(hid) < m.H {
		hid = make([]float32, m.H)
	}
	h := hid[:m.H]
	m.hidden(x, h)
	for k := range m.K {
		w := m.W2[k*m.H : (k+1)*m.H]
		var s float32
		for j, v := range h {
			s += v * w[j]
		}
		out[k] = float64(s + m.B2[k])
	}
}

func (m *Model) hidden(x linear.Vector, h []float32) {
	copy(h, m.B1)
	for _, e := range x {
		row := m.W1[int(e.Index)*m.H : int(e.Index+1)*m.H]
		axpy(e.Value, row, h)
	}
	if !m.Linear {
		for j, v := range h {
			if v < 0 {
				h[j] = 0
			}
		}
	}
}

func axpy(a float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += a * v
	}
}

// Train fits a network on rows X with classes y in [0, k). Rows valX,
// valY (may be empty) choose the epoch whose weights are kept, by
// accuracy then log loss.
func Train(ctx context.Context, X []linear.Vector, y []int, dim, k int, valX []linear.Vector, valY []int, p Params) (*Model, int, error) {
	if len(X) != len(y) || len(X) == 0 || len(valX) != len(valY) {
		return nil, 0, fmt.Errorf("%w: %d rows, %d labels", ErrInput, len(X), len(y))
	}
	if k < 2 || p.Hidden < 1 || p.Epochs < 1 || p.Batch < 1 || !(p.LR > 0) ||
		!(p.Dropout >= 0 && p.Dropout < 1) || !(p.InputDropout >= 0 && p.InputDropout < 1) || !(p.Init >= 0) {
		return nil, 0, fmt.Errorf("%w: %d classes, params %+v", ErrInput, k, p)
	}
	for i, c := range y {
		if c < 0 || c >= k {
			return nil, 0, fmt.Errorf("%w: row %d has class %d, want 0..%d", ErrInput, i, c, k-1)
		}
	}
	workers := p.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, p.Batch)
	H := p.Hidden
	rng := rand.New(rand.NewPCG(p.Seed, 17))
	m := &Model{Dim: dim, H: H, K: k, Linear: p.Linear,
		W1: make([]float32, dim*H), B1: make([]float32, H), W2: make([]float32, k*H), B2: make([]float32, k)}
	// Inputs have unit norm, so a hidden unit's pre-activation has the
	// spread of one W1 entry. Rows of rare features are barely trained,
	// so they start small: their noise would otherwise stay.
	a1 := float32(math.Sqrt(3) * p.Init)
	for i := range m.W1 {
		m.W1[i] = a1 * float32(2*rng.Float64()-1)
	}
	a2 := float32(math.Sqrt(6 / float64(H+k)))
	for i := range m.W2 {
		m.W2[i] = a2 * float32(2*rng.Float64()-1)
	}
	t := &trainer{m: m, p: p, workers: workers,
		m1: make([]float32, dim*H), v1: make([]float32, dim*H), slot: make([]int32, dim),
		b1: newAdam(H), w2: newAdam(k * H), b2: newAdam(k)}
	for i := range t.slot {
		t.slot[i] = -1
	}
	var best *Model
	bestEpoch, bestAcc, bestLoss := 0, -1.0, math.Inf(1)
	order := make([]int, len(X))
	for i := range order {
		order[i] = i
	}
	for epoch := 1; epoch <= p.Epochs; epoch++ {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		for s := 0; s < len(order); s += p.Batch {
			batch := order[s:min(s+p.Batch, len(order))]
			t.step(X, y, batch, rng)
		}
		if len(valX) == 0 {
			continue
		}
		acc, loss := m.evaluate(valX, valY)
		if acc > bestAcc || acc == bestAcc && loss < bestLoss {
			bestAcc, bestLoss, bestEpoch = acc, loss, epoch
			best = m.clone()
		}
	}
	if best == nil {
		return m, p.Epochs, nil
	}
	return best, bestEpoch, nil
}

func (m *Model) clone() *Model {
	c := *m
	c.W1 = append([]float32(nil), m.W1...)
	c.B1 = append([]float32(nil), m.B1...)
	c.W2 = append([]float32(nil), m.W2...)
	c.B2 = append([]float32(nil), m.B2...)
	return &c
}

func (m *Model) evaluate(X []linear.Vector, y []int) (acc, loss float64) {
	h := make([]float32, m.H)
	s := make([]float64, m.K)
	correct := 0
	for i, x := range X {
		m.Logits(x, h, s)
		top := 0
		for c, v := range s {
			if v > s[top] {
				top = c
			}
		}
		if top == y[i] {
			correct++
		}
		var z float64
		for _, v := range s {
			z += math.Exp(v - s[top])
		}
		loss += math.Log(z) - (s[y[i]] - s[top])
	}
	return float64(correct) / float64(len(X)), loss / float64(len(X))
}

type adam struct{ m, v []float32 }

func newAdam(n int) adam { return adam{make([]float32, n), make([]float32, n)} }

const (
	beta1 = 0.9
	beta2 = 0.999
	eps   = 1e-8
)

// update applies one Adam step with gradient g to w; lr includes the
// bias correction.
func update(w, g, m, v []float32, lr float32) {
	g, m, v = g[:len(w)], m[:len(w)], v[:len(w)]
	for i, gi := range g {
		m[i] = beta1*m[i] + (1-beta1)*gi
		v[i] = beta2*v[i] + (1-beta2)*gi*gi
		w[i] -= lr * m[i] / (float32(math.Sqrt(float64(v[i]))) + eps)
	}
}

type trainer struct {
	m       *Model
	p       Params
	workers int
	steps   int
	// Adam moments of W1, updated only on the rows a batch touches.
	m1, v1 []float32
	b1, w2 adam
	b2     adam
	// slot maps a touched input row to its gradient row in g1.
	slot []int32
	rows []int32
	g1   []float32
	// Per example of the batch: inputs after input dropout, hidden
	// activations, output and hidden gradients.
	xs      []linear.Vector
	hs, dhs []float32
	gs      []float32
	gW2     []float32
	gB2     []float32
	scratch [][]float64
}

// step trains on one batch: forward and backward in parallel by example,
// then the gradients summed over the examples in order and the Adam
// updates, in parallel by hidden unit, so the sums do not depend on the
// number of workers.
func (t *trainer) step(X []linear.Vector, y []int, batch []int, rng *rand.Rand) {
	m, p, H, K := t.m, t.p, t.m.H, t.m.K
	n := len(batch)
	if len(t.xs) < p.Batch {
		t.xs = make([]linear.Vector, p.Batch)
		t.hs, t.dhs = make([]float32, p.Batch*H), make([]float32, p.Batch*H)
		t.gs = make([]float32, p.Batch*K)
		t.gW2, t.gB2 = make([]float32, K*H), make([]float32, K)
		t.scratch = make([][]float64, t.workers)
		for w := range t.scratch {
			t.scratch[w] = make([]float64, K)
		}
	}
	// Dropout masks and input dropout come from the one rng, in order,
	// so workers do not change the model. A dropped hidden unit is
	// marked in hs before the forward pass (-1), kept ones 0.
	keepIn := float32(1 / (1 - p.InputDropout))
	for r, i := range batch {
		x := X[i]
		if p.InputDropout > 0 {
			xs := t.xs[r][:0]
			for _, e := range x {
				if rng.Float64() >= p.InputDropout {
					xs = append(xs, linear.Entry{Index: e.Index, Value: e.Value * keepIn})
				}
			}
			t.xs[r] = xs
		} else {
			t.xs[r] = x
		}
		h := t.hs[r*H : (r+1)*H]
		for j := range h {
			h[j] = 0
			if p.Dropout > 0 && rng.Float64() < p.Dropout {
				h[j] = -1
			}
		}
	}
	chunk := (n + t.workers - 1) / t.workers
	var wg sync.WaitGroup
	for w := range t.workers {
		lo, hi := w*chunk, min((w+1)*chunk, n)
		if lo >= hi {
			continue
		}
		wg.Add(1)
		go func(w, lo, hi int) {
			defer wg.Done()
			for r := lo; r < hi; r++ {
				t.backward(t.xs[r], y[batch[r]], t.hs[r*H:(r+1)*H], t.dhs[r*H:(r+1)*H], t.gs[r*K:(r+1)*K], t.scratch[w])
			}
		}(w, lo, hi)
	}
	wg.Wait()

	t.steps++
	lr := float32(p.LR * math.Sqrt(1-math.Pow(beta2, float64(t.steps))) / (1 - math.Pow(beta1, float64(t.steps))))
	inv := 1 / float32(n)
	clear(t.gB2)
	for r := range n {
		axpy(inv, t.gs[r*K:(r+1)*K], t.gB2)
	}
	update(m.B2, t.gB2, t.b2.m, t.b2.v, lr)

	// Input rows touched by the batch.
	t.rows = t.rows[:0]
	for r := range n {
		for _, e := range t.xs[r] {
			if t.slot[e.Index] < 0 {
				t.slot[e.Index] = int32(len(t.rows))
				t.rows = append(t.rows, e.Index)
			}
		}
	}
	if cap(t.g1) < len(t.rows)*H {
		t.g1 = make([]float32, len(t.rows)*H*2)
	}
	g1 := t.g1[:len(t.rows)*H]
	clear(g1)
	gB1 := make([]float32, H)
	cols := (H + t.workers - 1) / t.workers
	for w := range t.workers {
		lo, hi := w*cols, min((w+1)*cols, H)
		if lo >= hi {
			continue
		}
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			for r := range n {
				dh := t.dhs[r*H+lo : r*H+hi]
				h := t.hs[r*H+lo : r*H+hi]
				axpy(inv, dh, gB1[lo:hi])
				for k := range K {
					gw := t.gW2[k*H+lo : k*H+hi]
					if r == 0 {
						clear(gw)
					}
					axpy(inv*t.gs[r*K+k], h, gw)
				}
				for _, e := range t.xs[r] {
					s := int(t.slot[e.Index]) * H
					axpy(e.Value*inv, dh, g1[s+lo:s+hi])
				}
			}
			for k := range K {
				o := k*H + lo
				update(m.W2[o:k*H+hi], t.gW2[o:k*H+hi], t.w2.m[o:k*H+hi], t.w2.v[o:k*H+hi], lr)
			}
			update(m.B1[lo:hi], gB1[lo:hi], t.b1.m[lo:hi], t.b1.v[lo:hi], lr)
			for s, j := range t.rows {
				o := int(j) * H
				update(m.W1[o+lo:o+hi], g1[s*H+lo:s*H+hi], t.m1[o+lo:o+hi], t.v1[o+lo:o+hi], lr)
			}
		}(lo, hi)
	}
	wg.Wait()
	for _, j := range t.rows {
		t.slot[j] = -1
	}
}

// backward runs one example forward and back to the hidden layer. h
// comes in marking dropped units (-1) and leaves holding the
// activations after dropout; g receives the output gradient
// (probabilities minus the one-hot truth), dh the gradient of the hidden
// pre-activations. W2's gradient is summed later, in order.
func (t *trainer) backward(x linear.Vector, y int, h, dh, g []float32, s []float64) {
	m, H := t.m, t.m.H
	keep := float32(1 / (1 - t.p.Dropout))
	copy(dh, h) // the dropout marks
	m.hidden(x, h)
	for j := range h {
		switch {
		case dh[j] < 0:
			h[j] = 0
		case t.p.Dropout > 0:
			h[j] *= keep
		}
	}
	top := math.Inf(-1)
	for k := range m.K {
		w := m.W2[k*H : (k+1)*H]
		var v float32
		for j, hv := range h {
			v += hv * w[j]
		}
		s[k] = float64(v + m.B2[k])
		top = max(top, s[k])
	}
	var z float64
	for k := range s {
		s[k] = math.Exp(s[k] - top)
		z += s[k]
	}
	mark := append([]float32(nil), dh...)
	clear(dh)
	for k := range m.K {
		gk := float32(s[k] / z)
		if k == y {
			gk--
		}
		g[k] = gk
		axpy(gk, m.W2[k*H:(k+1)*H], dh)
	}
	for j := range dh {
		switch {
		case mark[j] < 0, !m.Linear && h[j] <= 0:
			dh[j] = 0
		case t.p.Dropout > 0:
			dh[j] *= keep
		}
	}
}
