package webhook

import (
	"bytes"
	"encoding/json"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// encode is json.Marshal(p), byte for byte, written out field by field:
// json.Marshal walked the payload by reflection on every message, and its
// strings (the rendered HTML above all) are most of a webhook's bytes. A
// test compares both on random payloads; a field added to Payload must be
// added here too, which that test tells.
func (p *Payload) encode() ([]byte, error) {
	if !p.plainTimes() {
		// A time RFC 3339 cannot write: json.Marshal says why.
		return json.Marshal(p)
	}
	bp := buffers.Get().(*[]byte)
	b := p.appendTo((*bp)[:0])
	// The body is the request's until it is done: a copy of the exact size
	// (not zeroed first), the buffer back for the next message.
	out := bytes.Clone(b)
	if cap(b) <= maxPooled {
		*bp = b
		buffers.Put(bp)
	}
	return out, nil
}

// buffers are encode's buffers: a body is a few KB, grown afresh for each
// message otherwise.
var buffers = sync.Pool{New: func() any { return new([]byte) }}

// maxPooled bounds the buffers kept: a huge digest must not pin its buffer.
const maxPooled = 64 << 10

func (p *Payload) appendTo(b []byte) []byte {
	b = append(b, `{"version":`...)
	b = strconv.AppendInt(b, int64(p.Version), 10)
	b = appendField(b, "idempotency_key", p.IdempotencyKey)
	b = appendField(b, "step", p.Step)
	b = appendField(b, "audience", p.Audience)
	b = appendField(b, "feedback_id", p.FeedbackID)
	b = appendOmitEmpty(b, "team", p.Team)
	b = append(b, `,"customer":`...)
	o := object{b: b}
	o.omitEmpty("id", p.Customer.ID)
	o.omitEmpty("name", p.Customer.Name)
	o.omitEmpty("email", p.Customer.Email)
	o.omitEmpty("locale", p.Customer.Locale)
	b = o.end()
	b = appendOmitEmpty(b, "source", p.Source)
	b = appendOmitEmpty(b, "subject", p.Subject)
	b = appendField(b, "text", p.Text)
	b = appendTime(b, "received_at", p.ReceivedAt)
	b = append(b, `,"message":{"subject":`...)
	b = appendString(b, p.Message.Subject)
	b = appendField(b, "text", p.Message.Text)
	b = appendField(b, "html", p.Message.HTML)
	b = append(b, '}')
	b = appendOmitEmpty(b, "status_url", p.StatusURL)
	if c := p.Classification; c != nil {
		b = append(b, `,"classification":`...)
		o := object{b: b}
		if len(c.Topics) > 0 {
			o.name("topics")
			o.b = appendStrings(o.b, c.Topics)
		}
		o.omitEmpty("sentiment", c.Sentiment)
		o.omitEmpty("urgency", c.Urgency)
		o.omitEmpty("language", c.Language)
		b = o.end()
	}
	if a := p.Assignment; a != nil {
		b = append(b, `,"assignment":`...)
		o := object{b: b}
		o.omitEmpty("route", a.Route)
		o.omitEmpty("priority", a.Priority)
		o.omitZero("acknowledge_by", a.AcknowledgeBy)
		o.omitZero("resolve_by", a.ResolveBy)
		b = o.end()
	}
	b = appendOmitEmpty(b, "customer_message", p.CustomerMessage)
	b = appendOmitEmpty(b, "reason", p.Reason)
	b = appendOmitEmpty(b, "actor", p.Actor)
	b = appendTime(b, "due_at", p.DueAt)
	b = appendTime(b, "previous_due_at", p.PreviousDueAt)
	b = appendOmitEmpty(b, "rerouted_from", p.ReroutedFrom)
	if len(p.Teams) > 0 {
		b = append(b, `,"teams":`...)
		b = appendStrings(b, p.Teams)
	}
	if len(p.Survey) > 0 {
		b = append(b, `,"survey":[`...)
		for i, l := range p.Survey {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"score":`...)
			b = strconv.AppendInt(b, int64(l.Score), 10)
			b = appendField(b, "url", l.URL)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if e := p.Escalation; e != nil {
		b = append(b, `,"escalation":{"kind":`...)
		b = appendString(b, e.Kind)
		b = append(b, `,"level":`...)
		b = strconv.AppendInt(b, int64(e.Level), 10)
		b = appendOmitEmpty(b, "escalate_to", e.EscalateTo)
		b = appendOmitEmpty(b, "deadline", e.Deadline)
		b = appendTime(b, "due_at", e.DueAt)
		b = append(b, '}')
	}
	if len(p.Digest) > 0 {
		b = append(b, `,"digest":[`...)
		for i, it := range p.Digest {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"feedback_id":`...)
			b = appendString(b, it.FeedbackID)
			b = appendField(b, "step", it.Step)
			b = appendField(b, "subject", it.Subject)
			b = appendField(b, "text", it.Text)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// plainTimes reports whether every time of p is one RFC 3339 writes (a
// year of four digits, an offset under a day), as appendTime does.
func (p *Payload) plainTimes() bool {
	ok := func(t time.Time) bool {
		if t.IsZero() {
			return true
		}
		_, off := t.Zone()
		return t.Year() >= 0 && t.Year() <= 9999 && off > -24*3600 && off < 24*3600
	}
	if !ok(p.ReceivedAt) || !ok(p.DueAt) || !ok(p.PreviousDueAt) {
		return false
	}
	if a := p.Assignment; a != nil && (!ok(a.AcknowledgeBy) || !ok(a.ResolveBy)) {
		return false
	}
	if e := p.Escalation; e != nil && !ok(e.DueAt) {
		return false
	}
	return true
}

// object writes a JSON object whose members may all be left out.
type object struct {
	b    []byte
	some bool
}

func (o *object) name(n string) {
	if o.some {
		o.b = append(o.b, ',', '"')
	} else {
		o.b = append(o.b, '{', '"')
	}
	o.some = true
	o.b = append(o.b, n...)
	o.b = append(o.b, '"', ':')
}

func (o *object) omitEmpty(n, v string) {
	if v != "" {
		o.name(n)
		o.b = appendString(o.b, v)
	}
}

func (o *object) omitZero(n string, t time.Time) {
	if !t.IsZero() {
		o.name(n)
		o.b = appendTimeValue(o.b, t)
	}
}

func (o *object) end() []byte {
	if !o.some {
		return append(o.b, '{', '}')
	}
	return append(o.b, '}')
}

// appendField appends `,"name":"value"`.
func appendField(b []byte, name, value string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, `":`...)
	return appendString(b, value)
}

func appendOmitEmpty(b []byte, name, value string) []byte {
	if value == "" {
		return b
	}
	return appendField(b, name, value)
}

// appendTime appends `,"name":<t>` unless t is zero (omitzero).
func appendTime(b []byte, name string, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, `":`...)
	return appendTimeValue(b, t)
}

// appendTimeValue is time.Time's MarshalJSON for the times plainTimes admits.
func appendTimeValue(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

const hexDigits = "0123456789abcdef"

// htmlSafe are the ASCII bytes encoding/json writes as they are.
var htmlSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString is encoding/json's string encoding with HTML escaping (its
// default): <, > and & as \u003c…, control characters, invalid UTF-8 as
// \ufffd, U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if htmlSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
