package model

import (
	"math"
	"slices"

	"github.com/feedloop/feedloop/services/classifier/model/features"
	"github.com/feedloop/feedloop/services/classifier/model/linear"
)

// Weighting says how term counts become feature values.
type Weighting struct {
	// Sublinear uses 1 + ln(count) instead of the count.
	Sublinear bool `json:"sublinear"`
	// IDF multiplies by the smoothed inverse document frequency
	// ln((1+n)/(1+df)) + 1 of the training texts.
	IDF bool `json:"idf"`
	// MinDF drops terms seen in fewer training texts.
	MinDF int `json:"min_df"`
}

// vocab maps the terms seen in training to dense feature indexes, with
// their IDF. Each block of a vector is L2-normalised on its own and the
// whole vector has unit length.
type vocab struct {
	keys  []uint64 // sorted term keys: hash<<8 | block
	idf   []float32
	index map[uint64]int32
	w     Weighting
}

func key(t features.Term) uint64 { return uint64(t.Hash)<<8 | uint64(t.Block) }

// newVocab builds the vocabulary of the given documents' terms.
func newVocab(docs [][]features.Term, rows []int, w Weighting) *vocab {
	df := map[uint64]int32{}
	for _, i := range rows {
		for _, t := range docs[i] {
			df[key(t)]++
		}
	}
	v := &vocab{w: w}
	for k, n := range df {
		if int(n) >= max(w.MinDF, 1) {
			v.keys = append(v.keys, k)
		}
	}
	slices.Sort(v.keys)
	v.idf = make([]float32, len(v.keys))
	n := float64(len(rows))
	for j, k := range v.keys {
		v.idf[j] = 1
		if w.IDF {
			v.idf[j] = float32(math.Log((1+n)/(1+float64(df[k]))) + 1)
		}
	}
	v.buildIndex()
	return v
}

func (v *vocab) buildIndex() {
	v.index = make(map[uint64]int32, len(v.keys))
	for j, k := range v.keys {
		v.index[k] = int32(j)
	}
}

// vector turns a text's terms into a normalised sparse vector; terms not
// in the vocabulary are ignored. Terms sorted by (hash, block) give
// indexes in increasing order because keys sort the same way.
func (v *vocab) vector(ts []features.Term) linear.Vector {
	x := make(linear.Vector, 0, len(ts))
	var norm [features.NumBlocks]float64
	blocks := make([]features.Block, 0, len(ts))
	for _, t := range ts {
		j, ok := v.index[key(t)]
		if !ok {
			continue
		}
		tf := float64(t.Count)
		if v.w.Sublinear {
			tf = 1 + math.Log(tf)
		}
		val := tf * float64(v.idf[j])
		norm[t.Block] += val * val
		x = append(x, linear.Entry{Index: j, Value: float32(val)})
		blocks = append(blocks, t.Block)
	}
	used := 0
	for b := range norm {
		if norm[b] > 0 {
			used++
		}
	}
	if used == 0 {
		return x
	}
	var scale [features.NumBlocks]float64
	for b := range norm {
		if norm[b] > 0 {
			scale[b] = 1 / math.Sqrt(norm[b]*float64(used))
		}
	}
	for i := range x {
		x[i].Value = float32(float64(x[i].Value) * scale[blocks[i]])
	}
	return x
}
