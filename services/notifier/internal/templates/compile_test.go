package templates

import (
	"bytes"
	htmltemplate "html/template"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	texttemplate "text/template"
	"time"

	"github.com/feedloop/feedloop/services/notifier/internal/steps"
)

func exampleSamples() map[string]any {
	out := map[string]any{}
	for _, n := range steps.Names() {
		out[n] = steps.Sample(n)
	}
	return out
}

func loadExamples(t testing.TB) *Set {
	t.Helper()
	s, err := Load(filepath.Join("..", "..", "..", "..", "deploy", "examples", "templates"), exampleSamples())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// reflected is what text/template and html/template make of data: the
// output compiled templates must match byte for byte.
func reflected(t *testing.T, st *step, data any) [3]string {
	t.Helper()
	var out [3]string
	for i, ex := range []executor{st.subject, st.text, st.html} {
		var b bytes.Buffer
		if err := ex.Execute(&b, data); err != nil {
			t.Fatal(err)
		}
		out[i] = b.String()
	}
	return out
}

func viaCompiled(st *step, data any) [3]string {
	var out [3]string
	for i, c := range []*compiled{st.subjectC, st.textC, st.htmlC} {
		if c == nil {
			continue
		}
		var b bytes.Buffer
		c.execute(&b, data)
		out[i] = b.String()
	}
	return out
}

// awkward are strings that test escaping, truncation and emptiness.
var awkward = []string{
	"", "a", "plain words", `<b>"Tom" & 'Jerry' + co</b>`, "nul\x00byte", "bad utf-8 \xff\xfe<", "é ü 日本語 <é>",
	"line\nbreaks\tand  spaces ", strings.Repeat("ß", 59), strings.Repeat("ß", 60), strings.Repeat("ß", 61) + "<&>",
	"\u2028\u2029 + \ufdd0\uffff", "{{.Team}}", "javascript:alert(1)",
	"https://status.example.com/t/a b?c=d&e=%zz%41%4", "HTTPS://X.example/ü'\"()", "mailto:ada@example.com", "/a:b", "a/b:c",
	"vbscript:x", " javascript:x", "%", "%4", "%41", "#frag",
}

// randomize sets every string, time and []string in v (a struct) from r.
func randomize(r *rand.Rand, v reflect.Value) {
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		switch {
		case f.Type() == reflect.TypeFor[time.Time]():
			if r.IntN(3) > 0 {
				f.Set(reflect.ValueOf(time.Unix(r.Int64N(4e9), 0).In(time.FixedZone("x", 3600))))
			}
		case f.Kind() == reflect.String:
			f.SetString(awkward[r.IntN(len(awkward))])
		case f.Type() == reflect.TypeFor[[]string]():
			n := r.IntN(4) - 1 // nil, empty, one, two
			if n >= 0 {
				s := make([]string, n)
				for j := range s {
					s[j] = awkward[r.IntN(len(awkward))]
				}
				f.Set(reflect.ValueOf(s))
			}
		case f.Kind() == reflect.Int:
			f.SetInt(int64(r.IntN(3)))
		case f.Kind() == reflect.Struct:
			randomize(r, f)
		}
	}
}

// Every example template renders the same compiled as by text/template and
// html/template, on the samples, on empty data and on random awkward data;
// and the team steps, which every routed item and escalation renders, do
// compile (the rest may be left to text/template).
func TestCompiledMatchesTextTemplate(t *testing.T) {
	set := loadExamples(t)
	for _, name := range []string{steps.StepRouted, steps.StepEscalated, steps.StepReopened, steps.StepReceived, steps.StepPlanned, steps.StepResolved} {
		st := set.byLocale[""][name]
		if st.subjectC == nil || st.textC == nil || st.htmlC == nil {
			t.Errorf("%s: not every part compiled (subject %v, text %v, html %v)", name, st.subjectC != nil, st.textC != nil, st.htmlC != nil)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	compiledParts := 0
	for loc, byStep := range set.byLocale {
		for name, st := range byStep {
			for _, c := range []*compiled{st.subjectC, st.textC, st.htmlC} {
				if c != nil {
					compiledParts++
				}
			}
			datas := []steps.Data{steps.Sample(name), {Step: name}}
			for range 300 {
				d := steps.Sample(name)
				randomize(r, reflect.ValueOf(&d).Elem())
				datas = append(datas, d)
			}
			for i, d := range datas {
				want := reflected(t, st, d)
				got := viaCompiled(st, d)
				for p, c := range []*compiled{st.subjectC, st.textC, st.htmlC} {
					if c != nil && got[p] != want[p] {
						t.Fatalf("%s/%s %s, data %d: compiled\n%q\nwant\n%q", loc, name, parts[p], i, got[p], want[p])
					}
				}
			}
		}
	}
	if compiledParts == 0 {
		t.Fatal("no example template compiled")
	}
	t.Logf("%d template parts compiled", compiledParts)
}

// Templates outside the subset are left to text/template and render as
// they always did; the data of another type than the samples' too.
func TestUncompiledTemplatesStillRender(t *testing.T) {
	cases := map[string]string{
		"range":    `{{range .Teams}}[{{.}}]{{end}}`,
		"variable": `{{$t := .Team}}{{$t}}`,
		"builtin":  `{{len .Teams}} {{printf "%05d" .Escalation.Level}}`,
		"method":   `{{.Escalation.IsZero}}{{.Escalation.IsBreach.X}}`,
		"root":     `{{with .Customer}}{{$.Team}}{{end}}`,
		"compare":  `{{if eq .Team "billing"}}yes{{end}}`,
	}
	d := steps.Sample(steps.StepRouted)
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			tm := textTemplate(t, src)
			if c := compile(tm.Tree, reflect.TypeOf(d), Funcs, false); c != nil {
				t.Fatalf("%s compiled; it is outside the subset", src)
			}
		})
	}
	// Within the subset: compiled, and a different data type falls back.
	tm := textTemplate(t, `{{.Team}}{{with .Assignment.Route}} {{.}}{{end}} {{.Escalation.Level}} {{.DueAt}} {{.Teams}}`)
	c := compile(tm.Tree, reflect.TypeOf(d), Funcs, false)
	if c == nil {
		t.Fatal("not compiled")
	}
	out, err := execute(tm, c, d)
	if want := "billing root/billing 1 2025-03-28 00:00:00 +0000 UTC [billing product]"; err != nil || out != want {
		t.Errorf("compiled: %q, %v; want %q", out, err, want)
	}
	out, err = execute(tm, c, &d)
	if want := "billing root/billing 1 2025-03-28 00:00:00 +0000 UTC [billing product]"; err != nil || out != want {
		t.Errorf("pointer data: %q, %v; want %q", out, err, want)
	}
}

func textTemplate(t *testing.T, src string) *texttemplate.Template {
	t.Helper()
	tm, err := texttemplate.New("t").Funcs(Funcs).Option("missingkey=error").Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// htmlEscape, urlFilter and urlNormalize are html/template's escaping of
// text, quoted attributes and URLs in them.
func TestHTMLEscapeMatchesHTMLTemplate(t *testing.T) {
	tm := htmltemplate.Must(htmltemplate.New("").Parse(`<p title="{{.}}">{{.}}</p><title>{{.}}</title><a href="{{.}}">`))
	r := rand.New(rand.NewPCG(3, 4))
	inputs := append([]string{}, awkward...)
	// Every ASCII character, NUL, invalid and multi-byte UTF-8, and the
	// letters of a scheme and an escape more often.
	alphabet := []byte("\x00\xc3\xa9\xff\x80:/%4Fhtps")
	for c := byte(0x20); c < 0x7f; c++ {
		alphabet = append(alphabet, c)
	}
	for range 20000 {
		b := make([]byte, r.IntN(12))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		inputs = append(inputs, string(b))
	}
	for _, s := range inputs {
		var b bytes.Buffer
		if err := tm.Execute(&b, s); err != nil {
			t.Fatal(err)
		}
		e := htmlEscape(s)
		u := htmlEscape(urlNormalize(urlFilter(s)))
		if want := `<p title="` + e + `">` + e + `</p><title>` + e + `</title><a href="` + u + `">`; b.String() != want {
			t.Fatalf("%q: html/template %q, htmlEscape gives %q", s, b.String(), want)
		}
	}
}

// BenchmarkRenderRouted renders one team alert, as every routed item does.
func BenchmarkRenderRouted(b *testing.B) {
	set := loadExamples(b)
	d := steps.Sample(steps.StepRouted)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := set.Render(steps.StepRouted, "", d); err != nil {
			b.Fatal(err)
		}
	}
}
