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
	index table
	w     Weighting
}

// table maps term keys to feature indexes by open addressing (linear
// probing, load ≤ 1/2): a lookup is usually one cache miss, several
// times faster than a map on the classify path.
type table struct {
	slots []slot
	shift uint // 64 - log2(len(slots))
}

type slot struct {
	key uint64 // key+1; 0 = empty
	val int32
}

func newTable(keys []uint64) table {
	bits := uint(1)
	for 1<<bits < 2*len(keys) {
		bits++
	}
	t := table{slots: make([]slot, 1<<bits), shift: 64 - bits}
	mask := uint64(len(t.slots) - 1)
	for j, k := range keys {
		i := (k * 0x9e3779b97f4a7c15) >> t.shift
		for t.slots[i].key != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = slot{key: k + 1, val: int32(j)}
	}
	return t
}

func (t *table) get(k uint64) (int32, bool) {
	mask := uint64(len(t.slots) - 1)
	for i := (k * 0x9e3779b97f4a7c15) >> t.shift; ; i = (i + 1) & mask {
		switch t.slots[i].key {
		case k + 1:
			return t.slots[i].val, true
		case 0:
			return -1, false
		}
	}
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

func (v *vocab) buildIndex() { v.index = newTable(v.keys) }

// sublinearTF[n] is 1 + ln n, for the common small counts.
var sublinearTF = func() (t [64]float64) {
	for n := 1; n < len(t); n++ {
		t[n] = 1 + math.Log(float64(n))
	}
	return t
}()

// vector turns a text's terms into a normalised sparse vector; terms not
// in the vocabulary are ignored. Terms sorted by (hash, block) give
// indexes in increasing order because keys sort the same way.
func (v *vocab) vector(ts []features.Term) linear.Vector {
	x, _ := v.appendVector(make(linear.Vector, 0, len(ts)), nil, ts)
	return x
}

// appendVector is vector appending to x, with blocks as scratch memory
// (returned for reuse).
func (v *vocab) appendVector(x linear.Vector, blocks []features.Block, ts []features.Term) (linear.Vector, []features.Block) {
	start := len(x)
	blocks = blocks[:0]
	var norm [features.NumBlocks]float64
	for _, t := range ts {
		j, ok := v.index.get(key(t))
		if !ok {
			continue
		}
		tf := float64(t.Count)
		if v.w.Sublinear && t.Count > 1 {
			if t.Count < uint32(len(sublinearTF)) {
				tf = sublinearTF[t.Count]
			} else {
				tf = 1 + math.Log(tf)
			}
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
		return x, blocks
	}
	var scale [features.NumBlocks]float64
	for b := range norm {
		if norm[b] > 0 {
			scale[b] = 1 / math.Sqrt(norm[b]*float64(used))
		}
	}
	for i, e := range x[start:] {
		x[start+i].Value = float32(float64(e.Value) * scale[blocks[i]])
	}
	return x, blocks
}
