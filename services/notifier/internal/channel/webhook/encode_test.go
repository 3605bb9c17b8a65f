package webhook

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/feedloop/feedloop/services/notifier/internal/channel"
	"github.com/feedloop/feedloop/services/notifier/internal/steps"
)

var awkward = []string{
	"", "a", "plain words", `<p class="x">Tom & 'Jerry'</p>`, "quote \" and \\ backslash", "ctl \x00\x01\x08\x0c\n\r\t\x1f\x7f",
	"bad utf-8 \xff\xfe\xc3", "é ü 日本語 😀", "\u2028\u2029", strings.Repeat("<&>", 40), "https://x.example/a?b=1&c=<2>",
}

var zones = []*time.Location{time.UTC, time.FixedZone("plus", 5*3600+1800), time.FixedZone("minus", -7*3600), time.FixedZone("odd", -(23*3600 + 59*60))}

// fill sets every field of v from r: strings, ints, times, slices and
// pointers, each sometimes left zero, so that omitempty and omitzero are
// taken both ways.
func fill(r *rand.Rand, v reflect.Value) {
	switch {
	case v.Type() == reflect.TypeFor[time.Time]():
		if r.IntN(4) > 0 {
			t := time.Unix(r.Int64N(5e9)-1e9, int64(r.IntN(3))*r.Int64N(1e9)).In(zones[r.IntN(len(zones))])
			v.Set(reflect.ValueOf(t))
		}
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(awkward[r.IntN(len(awkward))])
	case reflect.Int:
		v.SetInt(r.Int64N(2000) - 1000)
	case reflect.Struct:
		for i := range v.NumField() {
			fill(r, v.Field(i))
		}
	case reflect.Pointer:
		if r.IntN(3) > 0 {
			p := reflect.New(v.Type().Elem())
			fill(r, p.Elem())
			v.Set(p)
		}
	case reflect.Slice:
		n := r.IntN(4) - 1 // nil, empty, one, two
		if n >= 0 {
			s := reflect.MakeSlice(v.Type(), n, n)
			for i := range n {
				fill(r, s.Index(i))
			}
			v.Set(s)
		}
	default:
		panic("fill: unhandled " + v.Type().String())
	}
}

// encode writes what json.Marshal writes, on random payloads, on the
// payload of every step's sample and on the empty one.
func TestEncodeIsJSONMarshal(t *testing.T) {
	var ps []Payload
	for _, name := range steps.Names() {
		ps = append(ps, NewPayload(channel.Message{Key: "k", Subject: "s", Text: "t", HTML: "<p>h</p>", Data: steps.Sample(name)}))
	}
	ps = append(ps, Payload{})
	r := rand.New(rand.NewPCG(5, 6))
	for range 5000 {
		var p Payload
		fill(r, reflect.ValueOf(&p).Elem())
		ps = append(ps, p)
	}
	for i, p := range ps {
		want, werr := json.Marshal(p)
		got, err := p.encode()
		if werr != nil || err != nil {
			t.Fatalf("payload %d: json.Marshal %v, encode %v", i, werr, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("payload %d:\nencode       %s\njson.Marshal %s", i, got, want)
		}
	}
}

// A time RFC 3339 cannot write fails as json.Marshal fails.
func TestEncodeRefusesWhatJSONMarshalRefuses(t *testing.T) {
	for _, p := range []Payload{
		{ReceivedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Assignment: &Assignment{ResolveBy: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{Escalation: &Escalation{DueAt: time.Date(2025, 1, 1, 0, 0, 0, 0, time.FixedZone("far", 25*3600))}},
	} {
		_, werr := json.Marshal(p)
		_, err := p.encode()
		if werr == nil || err == nil || err.Error() != werr.Error() {
			t.Errorf("encode: %v; json.Marshal: %v", err, werr)
		}
	}
}

func BenchmarkEncodeRouted(b *testing.B) {
	p := NewPayload(channel.Message{Key: "k", Subject: "[billing] [high] New feedback: Charged twice",
		Text: strings.Repeat("Priority: high\n", 30), HTML: strings.Repeat("<tr><th>Priority</th><td>high</td></tr>\n", 30),
		Data: steps.Sample(steps.StepRouted)})
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = p.encode()
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(p)
		}
	})
}
