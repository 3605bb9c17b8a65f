package model

import (
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// ErrColumn is wrapped when a CSV file lacks a column that was asked for.
var ErrColumn = errors.New("missing column")

// ErrData is wrapped by errors about unusable training or evaluation data.
var ErrData = errors.New("invalid data")

// Source describes one data file a Dataset was read from.
type Source struct {
	// File is the file's base name (paths are not recorded: they differ
	// between machines and would make model files irreproducible).
	File string `json:"file"`
	// SHA256 is the hex digest of the file's bytes.
	SHA256 string `json:"sha256"`
	// Rows is how many examples were taken from the file.
	Rows int `json:"rows"`
	// Skipped is how many rows had an empty text or label.
	Skipped int `json:"skipped,omitempty"`
}

// Dataset is labelled text.
type Dataset struct {
	Texts   []string
	Labels  []string
	Sources []Source
}

// Len is the number of examples.
func (d *Dataset) Len() int { return len(d.Texts) }

// Add appends one example.
func (d *Dataset) Add(text, label string) {
	d.Texts = append(d.Texts, text)
	d.Labels = append(d.Labels, label)
}

// Append adds every example and source of o.
func (d *Dataset) Append(o *Dataset) {
	d.Texts = append(d.Texts, o.Texts...)
	d.Labels = append(d.Labels, o.Labels...)
	d.Sources = append(d.Sources, o.Sources...)
}

// ReadCSV reads a UTF-8 CSV file with a header row and takes the text and
// label from the named columns. Rows whose text or label is empty (after
// trimming spaces) are skipped and counted in the source. Errors name the
// file, and the line or the missing column.
func ReadCSV(path, textCol, labelCol string) (*Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	d, err := readCSV(io.TeeReader(f, h), path, textCol, labelCol)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	d.Sources[0].SHA256 = hex.EncodeToString(h.Sum(nil))
	return d, nil
}

func readCSV(r io.Reader, name, textCol, labelCol string) (*Dataset, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%s: %w: empty file, want a header row", name, ErrData)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	header = append([]string(nil), header...)
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff")
	}
	col := func(want, flag string) (int, error) {
		for i, h := range header {
			if strings.TrimSpace(h) == want {
				return i, nil
			}
		}
		return 0, fmt.Errorf("%s: %w %q (%s); the header has %s", name, ErrColumn, want, flag, quoteAll(header))
	}
	ti, err := col(textCol, "text column")
	if err != nil {
		return nil, err
	}
	li, err := col(labelCol, "label column")
	if err != nil {
		return nil, err
	}
	d := &Dataset{Sources: []Source{{File: filepath.Base(name)}}}
	src := &d.Sources[0]
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if ti >= len(rec) || li >= len(rec) {
			line, _ := cr.FieldPos(0)
			return nil, fmt.Errorf("%s: line %d: %w: %d fields, want at least %d", name, line, ErrData, len(rec), max(ti, li)+1)
		}
		text, label := strings.TrimSpace(rec[ti]), strings.TrimSpace(rec[li])
		if text == "" || label == "" {
			src.Skipped++
			continue
		}
		d.Add(text, label)
		src.Rows++
	}
	return d, nil
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
