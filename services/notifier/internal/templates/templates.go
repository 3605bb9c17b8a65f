// Package templates loads the notifier's message templates from a
// directory and renders them per step and locale.
//
// Layout: for each step, three files in the directory
//
//	<step>.subject.tmpl  text/template, one line (whitespace is collapsed)
//	<step>.txt.tmpl      text/template, the plain-text body
//	<step>.html.tmpl     html/template, the HTML body (auto-escaped)
//
// and optional per-locale overrides in subdirectories named by BCP 47 tag
// (de, de-CH, pt-BR; case-insensitive, "_" allowed for "-"). A locale
// overrides a step with all three files or not at all, so a message is never
// half in one language. Rendering for "de-CH" tries de-CH, then de, then the
// default files.
//
// Every template is parsed and executed against sample data at load, so a
// broken template stops the service at start with the file's name, not at
// the first customer message.
package templates

import (
	"bytes"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	texttemplate "text/template"
	"time"

	"github.com/feedloop/feedloop/pkg/locale"
)

// ErrNoTemplate is returned by Render for a step that has no templates.
var ErrNoTemplate = errors.New("no template")

// Parts of a step's message, in file-name order.
const (
	partSubject = "subject"
	partText    = "txt"
	partHTML    = "html"
)

var parts = []string{partSubject, partText, partHTML}

// Rendered is one message rendered for one recipient.
type Rendered struct {
	Subject string
	Text    string
	HTML    string
	// Locale is the template locale used, "" for the default templates.
	Locale string
}

// Set is a validated set of templates.
type Set struct {
	dir string
	// byLocale maps a normalised locale ("" = default) to its steps.
	byLocale map[string]map[string]*step
	// unused are files found but not used (unknown step or name), for a warning.
	unused []string
}

type step struct {
	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template
	// The same compiled for the samples' type (compile.go), nil when a
	// template is outside the subset that compiles.
	subjectC, textC, htmlC *compiled
}

var localeName = regexp.MustCompile(`^[A-Za-z]{2,8}([-_][A-Za-z0-9]{1,8})*$`)

// Funcs are the functions templates may call besides the built-ins.
var Funcs = map[string]any{
	// truncate shortens s to at most n runes, ending in "…" when cut.
	"truncate": func(n int, s string) string {
		r := []rune(s)
		if n < 1 || len(r) <= n {
			return s
		}
		return string(r[:n-1]) + "…"
	},
	// date formats t as "2006-01-02 15:04 UTC", "" for the zero time.
	"date": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	// join joins elems with sep.
	"join": func(sep string, elems []string) string { return strings.Join(elems, sep) },
	// localdate formats t's UTC day the way lang writes dates: en "28 March
	// 2025", en-US "March 28, 2025", de "28. März 2025", fr "28 mars 2025",
	// any other language "2025-03-28"; "" for the zero time. A template
	// passes its own language, so the date matches the words around it.
	"localdate": locale.Date,
}

// Load reads and validates the templates in dir for every step of samples
// (step name → sample data the templates must execute on). The default
// files of every step are required. Errors name the file at fault.
func Load(dir string, samples map[string]any) (*Set, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("templates: %s: not a directory", dir)
	}
	steps := make([]string, 0, len(samples))
	for s := range samples {
		steps = append(steps, s)
	}
	sort.Strings(steps)

	s := &Set{dir: dir, byLocale: map[string]map[string]*step{}}
	var errs []error
	def, used, err := s.loadLocale("", steps, samples, true)
	if err != nil {
		errs = append(errs, err)
	}
	s.byLocale[""] = def

	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	seen := map[string]string{}
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() {
			if !used[name] {
				s.unused = append(s.unused, filepath.Join(dir, name))
			}
			continue
		}
		if !localeName.MatchString(name) {
			errs = append(errs, fmt.Errorf("templates: %s: directory name is not a locale (want e.g. de or de-CH)", filepath.Join(dir, name)))
			continue
		}
		norm := locale.Normalize(name)
		if prev, dup := seen[norm]; dup {
			errs = append(errs, fmt.Errorf("templates: %s and %s: the same locale twice", filepath.Join(dir, prev), filepath.Join(dir, name)))
			continue
		}
		seen[norm] = name
		loc, _, err := s.loadLocale(name, steps, samples, false)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.byLocale[norm] = loc
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// loadLocale loads sub (a locale directory, "" for dir itself). It returns
// the steps found and the file names used.
func (s *Set) loadLocale(sub string, steps []string, samples map[string]any, required bool) (map[string]*step, map[string]bool, error) {
	base := filepath.Join(s.dir, sub)
	out := map[string]*step{}
	used := map[string]bool{}
	var errs []error
	for _, name := range steps {
		var present, missing []string
		for _, p := range parts {
			f := fileName(name, p)
			if _, err := os.Stat(filepath.Join(base, f)); err == nil {
				present = append(present, f)
			} else if errors.Is(err, fs.ErrNotExist) {
				missing = append(missing, f)
			} else {
				errs = append(errs, fmt.Errorf("templates: %w", err))
			}
			used[f] = true
		}
		switch {
		case len(missing) == 0:
		case required:
			for _, f := range missing {
				errs = append(errs, fmt.Errorf("templates: %s: missing (step %q needs %s.subject.tmpl, %s.txt.tmpl and %s.html.tmpl)", filepath.Join(base, f), name, name, name, name))
			}
		case len(present) == 0:
			continue // this locale does not override the step
		default:
			for _, f := range missing {
				errs = append(errs, fmt.Errorf("templates: %s: missing (%s overrides step %q with %s, so it needs all three files)", filepath.Join(base, f), sub, name, strings.Join(present, ", ")))
			}
		}
		// Check the files that are there even when others are missing, so
		// one start reports every broken file.
		st, err := s.loadStep(base, name, samples[name])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(missing) > 0 {
			continue
		}
		out[name] = st
	}
	if sub != "" {
		entries, err := os.ReadDir(base)
		if err != nil {
			errs = append(errs, fmt.Errorf("templates: %w", err))
		}
		for _, e := range entries {
			if !used[e.Name()] {
				s.unused = append(s.unused, filepath.Join(base, e.Name()))
			}
		}
	}
	return out, used, errors.Join(errs...)
}

func (s *Set) loadStep(base, name string, sample any) (*step, error) {
	var errs []error
	st := &step{}
	for _, p := range parts {
		path := filepath.Join(base, fileName(name, p))
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // reported by the caller
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("templates: %w", err))
			continue
		}
		src := string(b)
		var out string
		switch p {
		case partHTML:
			t, err := htmltemplate.New(path).Funcs(Funcs).Option("missingkey=error").Parse(src)
			if err != nil {
				errs = append(errs, fmt.Errorf("templates: %s: parse: %w", path, err))
				continue
			}
			if out, err = execute(t, nil, sample); err != nil {
				errs = append(errs, fmt.Errorf("templates: %s: execute with sample data: %w", path, err))
				continue
			}
			st.html = t
			// Compiled after the execution above, which escaped the tree.
			st.htmlC = compile(t.Tree, reflect.TypeOf(sample), Funcs, true)
		default:
			t, err := texttemplate.New(path).Funcs(Funcs).Option("missingkey=error").Parse(src)
			if err != nil {
				errs = append(errs, fmt.Errorf("templates: %s: parse: %w", path, err))
				continue
			}
			if out, err = execute(t, nil, sample); err != nil {
				errs = append(errs, fmt.Errorf("templates: %s: execute with sample data: %w", path, err))
				continue
			}
			c := compile(t.Tree, reflect.TypeOf(sample), Funcs, false)
			if p == partSubject {
				st.subject, st.subjectC = t, c
				out = oneLine(out)
			} else {
				st.text, st.textC = t, c
			}
		}
		if strings.TrimSpace(out) == "" {
			errs = append(errs, fmt.Errorf("templates: %s: renders empty text for the sample data", path))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return st, nil
}

func fileName(step, part string) string { return step + "." + part + ".tmpl" }

// buffers are reused across renders: a message's parts are a few KB, and
// growing a fresh buffer to that size was most of a render's garbage.
var buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooled bounds the buffers kept: a huge message must not pin its
// buffer for good.
const maxPooled = 64 << 10

// executor is a parsed text or HTML template.
type executor interface {
	Execute(w io.Writer, data any) error
}

// execute executes t, or c when it is compiled for data's type.
func execute(t executor, c *compiled, data any) (string, error) {
	b := buffers.Get().(*bytes.Buffer)
	b.Reset()
	var err error
	if c != nil && reflect.TypeOf(data) == c.typ {
		c.execute(b, data)
	} else {
		err = t.Execute(b, data)
	}
	out := b.String()
	if b.Cap() <= maxPooled {
		buffers.Put(b)
	}
	return out, err
}

// oneLine collapses all whitespace, newlines included, to single spaces: a
// subject is a header and must stay on one line.
func oneLine(s string) string {
	if isOneLine(s) {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

// isOneLine reports whether s is ASCII words separated by single spaces,
// which oneLine returns as is (the usual subject).
func isOneLine(s string) bool {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' {
		return s == ""
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 0x80, c == '\t', c == '\n', c == '\v', c == '\f', c == '\r':
			return false
		case c == ' ' && s[i+1] == ' ':
			return false
		}
	}
	return true
}

// Render renders step for tag (a locale) with data, falling back from the
// locale to its base language to the default templates.
func (s *Set) Render(stepName, tag string, data any) (Rendered, error) {
	for _, loc := range locale.Candidates(tag) {
		st, ok := s.byLocale[loc][stepName]
		if !ok {
			continue
		}
		var r Rendered
		var err error
		r.Locale = loc
		if r.Subject, err = execute(st.subject, st.subjectC, data); err != nil {
			return Rendered{}, fmt.Errorf("templates: render %s subject: %w", stepName, err)
		}
		r.Subject = oneLine(r.Subject)
		if r.Text, err = execute(st.text, st.textC, data); err != nil {
			return Rendered{}, fmt.Errorf("templates: render %s text: %w", stepName, err)
		}
		if r.HTML, err = execute(st.html, st.htmlC, data); err != nil {
			return Rendered{}, fmt.Errorf("templates: render %s html: %w", stepName, err)
		}
		return r, nil
	}
	return Rendered{}, fmt.Errorf("templates: %w for step %q", ErrNoTemplate, stepName)
}

// Locales lists the locales with overrides, normalised and sorted.
func (s *Set) Locales() []string {
	var out []string
	for l := range s.byLocale {
		if l != "" {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

// Unused lists files in the template directory that no step uses (a typo,
// or a step this version does not send yet), for a start-up warning.
func (s *Set) Unused() []string { return s.unused }
