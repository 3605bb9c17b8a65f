// Package mailparse reads what a person sees of an email: sender, subject
// and the text and HTML bodies, decoded to UTF-8. The dev mailbox shows
// messages with it and tests read what the notifier sent with it, so both
// see one message the same way.
package mailparse

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"

	"golang.org/x/text/encoding/htmlindex"
)

// maxDepth bounds multipart nesting, so a hostile message cannot recurse
// without end.
const maxDepth = 8

// decoder decodes RFC 2047 words in any charset htmlindex knows, not only
// the UTF-8, US-ASCII and ISO-8859-1 of mime's default.
var decoder = &mime.WordDecoder{CharsetReader: charsetReader}

// Content is what a reader sees of a message.
type Content struct {
	// From is the From header, decoded ("Acme Support <support@acme.example>").
	From string
	// Subject is the decoded Subject header.
	Subject string
	// Text and HTML are the first plain-text and HTML bodies,
	// transfer-decoded and converted to UTF-8; either may be empty.
	Text, HTML string
}

// Parse reads an RFC 5322 message: its From and Subject headers and its
// first text/plain and text/html bodies, from any depth of multipart
// (alternative, mixed, related) except attachments, transfer-decoded
// (quoted-printable, base64) and converted to UTF-8.
func Parse(raw []byte) (Content, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Content{}, fmt.Errorf("mailparse: %w", err)
	}
	m := Content{From: decodeHeader(msg.Header.Get("From")), Subject: decodeHeader(msg.Header.Get("Subject"))}
	if a, err := mail.ParseAddress(msg.Header.Get("From")); err == nil {
		m.From = a.Address
		if a.Name != "" {
			m.From = a.Name + " <" + a.Address + ">"
		}
	}
	ct := msg.Header.Get("Content-Type")
	if ct == "" {
		ct = "text/plain; charset=us-ascii" // RFC 2045's default
	}
	if err := m.walk(ct, msg.Header.Get("Content-Transfer-Encoding"), "", msg.Body, 0); err != nil {
		return Content{}, err
	}
	return m, nil
}

// walk fills m.Text and m.HTML from one entity and, for a multipart, its parts.
func (m *Content) walk(contentType, encoding, disposition string, body io.Reader, depth int) error {
	if d, _, err := mime.ParseMediaType(disposition); err == nil && d == "attachment" {
		return nil
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("mailparse: content type %q: %w", contentType, err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		if depth >= maxDepth {
			return fmt.Errorf("mailparse: multipart nested deeper than %d", maxDepth)
		}
		mr := multipart.NewReader(body, params["boundary"])
		for {
			// Raw: multipart.Reader would undo quoted-printable itself but
			// not base64; decode both in one place.
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("mailparse: %s: %w", mt, err)
			}
			ct := p.Header.Get("Content-Type")
			if ct == "" {
				ct = "text/plain; charset=us-ascii"
			}
			if err := m.walk(ct, p.Header.Get("Content-Transfer-Encoding"), p.Header.Get("Content-Disposition"), p, depth+1); err != nil {
				return err
			}
		}
	}
	var dst *string
	switch {
	case mt == "text/plain" && m.Text == "":
		dst = &m.Text
	case mt == "text/html" && m.HTML == "":
		dst = &m.HTML
	default:
		return nil
	}
	b, err := io.ReadAll(transferDecoder(encoding, body))
	if err != nil {
		return fmt.Errorf("mailparse: %s body (%s): %w", mt, encoding, err)
	}
	s, err := toUTF8(params["charset"], b)
	if err != nil {
		return err
	}
	*dst = s
	return nil
}

func transferDecoder(encoding string, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	case "base64":
		// The decoder skips the line breaks between base64 lines itself.
		return base64.NewDecoder(base64.StdEncoding, r)
	default: // 7bit, 8bit, binary
		return r
	}
}

func toUTF8(charset string, b []byte) (string, error) {
	switch strings.ToLower(charset) {
	case "", "utf-8", "us-ascii":
		return string(b), nil
	}
	r, err := charsetReader(charset, bytes.NewReader(b))
	if err != nil {
		return "", err
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return "", fmt.Errorf("mailparse: charset %s: %w", charset, err)
	}
	return string(out), nil
}

func charsetReader(charset string, r io.Reader) (io.Reader, error) {
	enc, err := htmlindex.Get(charset)
	if err != nil {
		return nil, fmt.Errorf("mailparse: charset %q: %w", charset, err)
	}
	return enc.NewDecoder().Reader(r), nil
}

// decodeHeader decodes RFC 2047 words; a header that does not decode is
// shown as it came.
func decodeHeader(v string) string {
	s, err := decoder.DecodeHeader(v)
	if err != nil {
		return v
	}
	return s
}
