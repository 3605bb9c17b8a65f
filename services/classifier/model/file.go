package model

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/klauspost/compress/zstd"

	"github.com/feedloop/feedloop/pkg/atomicfile"
	"github.com/feedloop/feedloop/services/classifier/model/linear"
)

// The file format, version 2 (version 1 is the same without the header's
// "score": its threshold is always on the top probability):
//
//	magic    8 bytes  "FLMODEL\x00"
//	version  uint32   little endian, FormatVersion
//	length   uint64   little endian, bytes of payload
//	checksum 32 bytes SHA-256 of payload
//	payload  zstd frame of:
//	  header length uint32, header JSON (labels, feature config,
//	    weighting, calibration, threshold, optional score curve,
//	    training metadata)
//	  term keys: uvarint deltas (dim of them, ascending)
//	  idf:       dim float32
//	  weights:   (dim+D)*K float32, feature-major
//	  biases:    K float32
//	  with word vectors (the feature config's word_vectors, D its
//	  dimensions; D = 0 and nothing more without them):
//	    n uvarint, then n table rows seen in training as uvarint
//	    deltas of row+1, n float32 IDF weights and the unseen rows'
//	    float32 weight
//
// Everything is little endian. Word vectors left the version at 2: a
// build that predates them fails on the weights' length, so it never
// silently ignores the dense block. The checksum is verified before anything
// is decoded, so a corrupt or truncated file is reported as such.
const (
	magic = "FLMODEL\x00"
	// FormatVersion is the version Save writes; Load also reads 1.
	FormatVersion = 2
	// maxPayload bounds what Load reads (a defence against a corrupt
	// length field).
	maxPayload = 1 << 31
)

// ErrFormat is wrapped by every error about a model file's content:
// not a model, an unsupported version, truncated, or corrupt.
var ErrFormat = errors.New("invalid model file")

type header struct {
	Format      int             `json:"format"`
	Labels      []string        `json:"labels"`
	Features    json.RawMessage `json:"features"`
	Weighting   Weighting       `json:"weighting"`
	Temperature float64         `json:"temperature"`
	Score       string          `json:"score,omitempty"`
	Threshold   float64         `json:"threshold"`
	Curve       *ScoreCurve     `json:"oos_curve,omitempty"`
	Dim         int             `json:"dim"`
	Meta        Metadata        `json:"meta"`
}

// Save writes m in the model file format. The same model always gives the
// same bytes.
func (m *Model) Save(w io.Writer) error {
	var raw bytes.Buffer
	fc, err := json.Marshal(m.Features)
	if err != nil {
		return err
	}
	h, err := json.Marshal(header{
		Format: FormatVersion, Labels: m.Labels, Features: fc, Weighting: m.Weighting,
		Temperature: m.Temperature, Score: m.Score, Threshold: m.Threshold, Curve: m.Curve, Dim: len(m.vocab.keys), Meta: m.Meta,
	})
	if err != nil {
		return err
	}
	raw.Grow(len(h) + len(m.vocab.keys)*8 + len(m.lin.W)*4)
	_ = binary.Write(&raw, binary.LittleEndian, uint32(len(h)))
	raw.Write(h)
	var buf [binary.MaxVarintLen64]byte
	prev := uint64(0)
	for _, k := range m.vocab.keys {
		raw.Write(buf[:binary.PutUvarint(buf[:], k-prev)])
		prev = k
	}
	writeFloats(&raw, m.vocab.idf)
	writeFloats(&raw, m.lin.W)
	writeFloats(&raw, m.lin.B)
	if vb := m.vocab.vec; vb != nil {
		raw.Write(buf[:binary.PutUvarint(buf[:], uint64(len(vb.rows)))])
		prev := int32(-1)
		for _, r := range vb.rows {
			raw.Write(buf[:binary.PutUvarint(buf[:], uint64(r-prev))])
			prev = r
		}
		writeFloats(&raw, vb.idf)
		writeFloats(&raw, []float32{vb.unseen})
	}

	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedBetterCompression))
	if err != nil {
		return err
	}
	payload := enc.EncodeAll(raw.Bytes(), nil)
	sum := sha256.Sum256(payload)
	m.setVersion(sum)
	bw := bufio.NewWriter(w)
	bw.WriteString(magic)
	_ = binary.Write(bw, binary.LittleEndian, uint32(FormatVersion))
	_ = binary.Write(bw, binary.LittleEndian, uint64(len(payload)))
	bw.Write(sum[:])
	bw.Write(payload)
	return bw.Flush()
}

func writeFloats(b *bytes.Buffer, fs []float32) {
	var buf [4]byte
	for _, f := range fs {
		binary.LittleEndian.PutUint32(buf[:], math.Float32bits(f))
		b.Write(buf[:])
	}
}

// SaveFile writes m to path atomically (a temporary file renamed into
// place), so a service watching path never reads half a model.
func (m *Model) SaveFile(path string) error {
	return atomicfile.WriteFunc(path, 0o644, m.Save)
}

// LoadFile reads a model file.
func LoadFile(path string) (*Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := Load(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Load reads a model in the file format, verifying its checksum.
func Load(r io.Reader) (*Model, error) {
	var pre [8 + 4 + 8 + 32]byte
	if n, err := io.ReadFull(r, pre[:]); err != nil {
		if n >= 8 && string(pre[:8]) != magic || n > 0 && n < 8 && string(pre[:n]) != magic[:n] {
			return nil, fmt.Errorf("%w: not a feedloop model (bad magic)", ErrFormat)
		}
		return nil, fmt.Errorf("%w: truncated header (%d of %d bytes)", ErrFormat, n, len(pre))
	}
	if string(pre[:8]) != magic {
		return nil, fmt.Errorf("%w: not a feedloop model (bad magic)", ErrFormat)
	}
	if v := binary.LittleEndian.Uint32(pre[8:]); v < 1 || v > FormatVersion {
		return nil, fmt.Errorf("%w: format version %d, this build reads 1 to %d", ErrFormat, v, FormatVersion)
	}
	n := binary.LittleEndian.Uint64(pre[12:])
	if n > maxPayload {
		return nil, fmt.Errorf("%w: payload length %d is implausible", ErrFormat, n)
	}
	payload, err := io.ReadAll(io.LimitReader(r, int64(n)))
	if err != nil {
		return nil, err
	}
	if uint64(len(payload)) != n {
		return nil, fmt.Errorf("%w: truncated payload (%d of %d bytes)", ErrFormat, len(payload), n)
	}
	if sum := sha256.Sum256(payload); !bytes.Equal(sum[:], pre[20:52]) {
		return nil, fmt.Errorf("%w: checksum mismatch (file corrupt)", ErrFormat)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(4<<30))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	raw, err := dec.DecodeAll(payload, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrFormat, err)
	}
	m, err := decode(raw)
	if err != nil {
		return nil, err
	}
	var sum [sha256.Size]byte
	copy(sum[:], pre[20:52])
	m.setVersion(sum)
	return m, nil
}

// VersionLen is the number of hex digits of the checksum Version gives.
const VersionLen = 12

// Version identifies the model: the first VersionLen hex digits of the
// SHA-256 checksum of its file payload, so the same file always has the
// same version and a retrained model another one.
func (m *Model) Version() string {
	if v := m.version.Load(); v != nil {
		return *v
	}
	// Save computes the checksum and records it; a model that cannot be
	// encoded has no version.
	if err := m.Save(io.Discard); err != nil {
		return ""
	}
	return *m.version.Load()
}

// setVersion records the payload checksum. Save gives the same checksum
// every time for the same model, so the first one recorded stays.
func (m *Model) setVersion(sum [sha256.Size]byte) {
	v := hex.EncodeToString(sum[:])[:VersionLen]
	m.version.CompareAndSwap(nil, &v)
}

func decode(raw []byte) (*Model, error) {
	bad := func(what string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrFormat, fmt.Sprintf(what, args...))
	}
	if len(raw) < 4 {
		return nil, bad("payload too short")
	}
	hl := int(binary.LittleEndian.Uint32(raw))
	raw = raw[4:]
	if hl > len(raw) {
		return nil, bad("header length %d beyond payload", hl)
	}
	var h header
	if err := json.Unmarshal(raw[:hl], &h); err != nil {
		return nil, bad("header: %v", err)
	}
	raw = raw[hl:]
	m := &Model{Labels: h.Labels, Weighting: h.Weighting, Temperature: h.Temperature, Score: h.Score, Threshold: h.Threshold, Curve: h.Curve, Meta: h.Meta}
	if m.Score == "" {
		m.Score = ScoreProb // format 1
	}
	if err := json.Unmarshal(h.Features, &m.Features); err != nil {
		return nil, bad("feature config: %v", err)
	}
	if err := m.Features.Validate(); err != nil {
		return nil, bad("%v", err)
	}
	if m.Curve != nil {
		if err := m.Curve.validate(); err != nil {
			return nil, bad("header: %v", err)
		}
	}
	K, dim := len(h.Labels), h.Dim
	badThreshold := math.IsNaN(h.Threshold) || math.IsInf(h.Threshold, 0)
	switch m.Score {
	case ScoreProb:
		badThreshold = badThreshold || h.Threshold < 0 || h.Threshold >= 1
	case ScoreEnergy:
	default:
		return nil, bad("header: out-of-scope score %q unknown to this build", m.Score)
	}
	if K < 2 || dim < 0 || !(h.Temperature > 0) || badThreshold {
		return nil, bad("header: %d labels, dim %d, temperature %v, threshold %v", K, dim, h.Temperature, h.Threshold)
	}
	v := &vocab{w: h.Weighting, keys: make([]uint64, dim)}
	prev := uint64(0)
	for j := range dim {
		d, n := binary.Uvarint(raw)
		if n <= 0 {
			return nil, bad("term keys truncated at %d of %d", j, dim)
		}
		raw = raw[n:]
		if j > 0 && d == 0 {
			return nil, bad("term keys not ascending at %d", j)
		}
		prev += d
		v.keys[j] = prev
	}
	vb, err := newVecBlock(m.Features)
	if err != nil {
		return nil, bad("%v", err)
	}
	D := 0
	if vb != nil {
		D = vb.tab.Dim()
	}
	want := 4 * (dim + (dim+D)*K + K)
	if len(raw) < want || vb == nil && len(raw) != want {
		return nil, bad("weights: %d bytes, want %d", len(raw), want)
	}
	v.idf = readFloats(raw[:4*dim])
	raw = raw[4*dim:]
	lin := &linear.Model{Dim: dim + D, K: K, W: readFloats(raw[:4*(dim+D)*K]), B: readFloats(raw[4*(dim+D)*K : 4*((dim+D)*K+K)])}
	raw = raw[4*((dim+D)*K+K):]
	if vb != nil {
		if err := vb.decode(raw); err != nil {
			return nil, bad("word vector weights: %v", err)
		}
		v.vec = vb
	}
	v.buildIndex()
	m.vocab, m.lin = v, lin
	return m, nil
}

// decode reads the rows and weights Save writes after the biases.
func (b *vecBlock) decode(raw []byte) error {
	n, k := binary.Uvarint(raw)
	if k <= 0 || n > uint64(b.tab.Len()) {
		return fmt.Errorf("bad row count")
	}
	raw = raw[k:]
	b.rows = make([]int32, n)
	prev := int64(-1)
	for i := range b.rows {
		d, k := binary.Uvarint(raw)
		if k <= 0 || d == 0 || prev+int64(d) >= int64(b.tab.Len()) {
			return fmt.Errorf("rows: bad delta at %d of %d", i, n)
		}
		raw = raw[k:]
		prev += int64(d)
		b.rows[i] = int32(prev)
	}
	if len(raw) != 4*(int(n)+1) {
		return fmt.Errorf("%d bytes of weights, want %d", len(raw), 4*(n+1))
	}
	w := readFloats(raw)
	b.idf, b.unseen = w[:n], w[n]
	return nil
}

func readFloats(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}
