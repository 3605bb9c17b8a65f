package model

import (
	"math"
	"slices"

	"github.com/feedloop/feedloop/services/classifier/model/features"
	"github.com/feedloop/feedloop/services/classifier/model/linear"
	"github.com/feedloop/feedloop/services/classifier/model/wordvec"
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
	// vec, with word vectors, is the dense block at indexes
	// len(keys)..len(keys)+dim-1.
	vec *vecBlock
}

// vecBlock turns a text's Vectors terms into the IDF-weighted mean of
// their words' unit vectors, scaled to length weight.
type vecBlock struct {
	tab    *wordvec.Table
	weight float64
	// rows are the table rows seen in training, ascending, and idf their
	// weights ln((1+n)/(1+df)) (1 without IDF); unseen is the weight of a
	// row training never saw (df 0). Without the +1 of the n-grams' IDF,
	// words in most texts add almost nothing to the mean.
	rows   []int32
	idf    []float32
	unseen float32
}

// newVecBlock is the dense block of the feature config c (nil when it has
// no word vectors), with no IDF yet.
func newVecBlock(c features.Config) (*vecBlock, error) {
	if c.WordVectors == "" {
		return nil, nil
	}
	tab, err := wordvec.Load(c.WordVectors)
	if err != nil {
		return nil, err
	}
	return &vecBlock{tab: tab, weight: c.WordVectorWeight}, nil
}

func (b *vecBlock) rowIDF(row int32) float64 {
	if i, ok := slices.BinarySearch(b.rows, row); ok {
		return float64(b.idf[i])
	}
	return float64(b.unseen)
}

// dim is the number of features: the n-grams' and the dense block's.
func (v *vocab) dim() int {
	if v.vec == nil {
		return len(v.keys)
	}
	return len(v.keys) + v.vec.tab.Dim()
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

// newVocab builds the vocabulary of the given documents' terms, with the
// dense block vb (nil: none) whose IDF it fills in.
func newVocab(docs [][]features.Term, rows []int, w Weighting, vb *vecBlock) *vocab {
	df := map[uint64]int32{}
	vdf := map[int32]int32{}
	for _, i := range rows {
		for _, t := range docs[i] {
			if t.Block == features.Vectors {
				vdf[int32(t.Hash)]++
				continue
			}
			df[key(t)]++
		}
	}
	v := &vocab{w: w, vec: vb}
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
	if vb != nil {
		vb = &vecBlock{tab: vb.tab, weight: vb.weight, unseen: 1}
		if w.IDF {
			vb.unseen = float32(math.Log(1 + n))
		}
		for r := range vdf {
			vb.rows = append(vb.rows, r)
		}
		slices.Sort(vb.rows)
		vb.idf = make([]float32, len(vb.rows))
		for i, r := range vb.rows {
			vb.idf[i] = 1
			if w.IDF {
				vb.idf[i] = float32(math.Log((1 + n) / (1 + float64(vdf[r]))))
			}
		}
		v.vec = vb
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
	var dense [features.MaxVectorDim]float64
	found := false
	for _, t := range ts {
		if t.Block == features.Vectors {
			if v.vec != nil {
				v.vec.tab.AddUnit(dense[:], int(t.Hash), float64(t.Count)*v.vec.rowIDF(int32(t.Hash)))
				found = true
			}
			continue
		}
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
	if used > 0 {
		var scale [features.NumBlocks]float64
		for b := range norm {
			if norm[b] > 0 {
				scale[b] = 1 / math.Sqrt(norm[b]*float64(used))
			}
		}
		for i, e := range x[start:] {
			x[start+i].Value = float32(float64(e.Value) * scale[blocks[i]])
		}
	}
	if found {
		x = v.vec.append(x, dense[:v.vec.tab.Dim()], len(v.keys))
	}
	return x, blocks
}

// append appends the dense block, sum scaled to length weight, at
// indexes base.. (nothing when sum is zero).
func (b *vecBlock) append(x linear.Vector, sum []float64, base int) linear.Vector {
	var n float64
	for _, s := range sum {
		n += s * s
	}
	if n == 0 {
		return x
	}
	scale := b.weight / math.Sqrt(n)
	for d, s := range sum {
		x = append(x, linear.Entry{Index: int32(base + d), Value: float32(s * scale)})
	}
	return x
}
