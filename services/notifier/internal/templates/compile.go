package templates

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"text/template/parse"
	"time"
)

// A compiled template is a parsed template turned into Go closures for one
// data type, with field indexes and functions resolved once: executing a
// template by reflection (text/template) looked every field and function up
// by name again on each message, and was most of a message's rendering cost.
//
// Only a subset compiles: text, comments, fields and dot, methods without
// arguments that give a bool, if/with/else, pipelines of the templates'
// functions (Funcs) with string and integer constants, and html/template's
// escapers of strings and numbers in HTML text, attributes and URLs.
// Anything else (range, variables, built-ins such as len or printf, other
// methods, pointers, nested templates) makes compile give up, and the
// template is executed by text/template as before. Within the subset the output is
// text/template's, byte for byte (tests compare both on every example
// template); and no error is possible in it, as every type is checked here.
type compiled struct {
	typ reflect.Type
	run []action
}

// action writes one node's output for dot.
type action func(b *bytes.Buffer, dot reflect.Value)

// expr is a compiled pipeline or argument: str when its type is string (no
// reflect.Value to box it in), val otherwise; a string field has both, so
// that with can make it dot without boxing it.
type expr struct {
	typ reflect.Type
	str func(dot reflect.Value) string
	val func(dot reflect.Value) reflect.Value
}

var (
	stringType  = reflect.TypeFor[string]()
	intType     = reflect.TypeFor[int]()
	timeType    = reflect.TypeFor[time.Time]()
	stringsType = reflect.TypeFor[[]string]()
)

// compile compiles tree for data of type typ, with funcs the functions the
// template was parsed with; html: tree is an html/template's, escaped.
// It returns nil when the tree is outside the subset.
func compile(tree *parse.Tree, typ reflect.Type, funcs map[string]any, html bool) *compiled {
	if tree == nil || tree.Root == nil || typ == nil || typ.Kind() != reflect.Struct {
		return nil
	}
	c := compiler{funcs: funcs, html: html}
	run, ok := c.list(tree.Root, typ)
	if !ok {
		return nil
	}
	return &compiled{typ: typ, run: run}
}

// execute writes the template's output for data, which must be of c.typ.
func (c *compiled) execute(b *bytes.Buffer, data any) {
	dot := reflect.ValueOf(data)
	for _, a := range c.run {
		a(b, dot)
	}
}

type compiler struct {
	funcs map[string]any
	html  bool
}

func (c compiler) list(l *parse.ListNode, dot reflect.Type) ([]action, bool) {
	if l == nil {
		return nil, true
	}
	var out []action
	for _, n := range l.Nodes {
		a, ok := c.node(n, dot)
		if !ok {
			return nil, false
		}
		if a != nil {
			out = append(out, a)
		}
	}
	return out, true
}

func (c compiler) node(n parse.Node, dot reflect.Type) (action, bool) {
	switch n := n.(type) {
	case *parse.TextNode:
		text := n.Text
		return func(b *bytes.Buffer, _ reflect.Value) { b.Write(text) }, true
	case *parse.CommentNode:
		return nil, true
	case *parse.ActionNode:
		e, ok := c.pipe(n.Pipe, dot)
		if !ok {
			return nil, false
		}
		return c.print(e)
	case *parse.IfNode:
		return c.branch(n.Pipe, n.List, n.ElseList, dot, false)
	case *parse.WithNode:
		return c.branch(n.Pipe, n.List, n.ElseList, dot, true)
	}
	return nil, false
}

// print writes a value as text/template does (printableValue, then
// fmt.Fprint); dot is never addressable here, as Execute's data is passed by
// value.
func (c compiler) print(e expr) (action, bool) {
	if e.typ == stringType {
		f := e.str
		return func(b *bytes.Buffer, dot reflect.Value) { b.WriteString(f(dot)) }, true
	}
	switch e.typ.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return nil, false
	}
	f := e.val
	return func(b *bytes.Buffer, dot reflect.Value) { fmt.Fprint(b, f(dot).Interface()) }, true
}

// branch is if or with: the list runs when the pipeline's value is true (with
// it as dot, for with), the else list otherwise.
func (c compiler) branch(p *parse.PipeNode, list, elseList *parse.ListNode, dot reflect.Type, with bool) (action, bool) {
	e, ok := c.pipe(p, dot)
	if !ok {
		return nil, false
	}
	truth, ok := truthOf(e)
	if !ok {
		return nil, false
	}
	inner := dot
	if with {
		inner = e.typ
	}
	then, ok := c.list(list, inner)
	if !ok {
		return nil, false
	}
	els, ok := c.list(elseList, dot)
	if !ok {
		return nil, false
	}
	run := func(b *bytes.Buffer, as []action, dot reflect.Value) {
		for _, a := range as {
			a(b, dot)
		}
	}
	if !with {
		return func(b *bytes.Buffer, dot reflect.Value) {
			if truth(dot) {
				run(b, then, dot)
			} else {
				run(b, els, dot)
			}
		}, true
	}
	if e.str != nil && e.val == nil {
		// A string computed by a function is boxed only when the branch is taken.
		f := e.str
		return func(b *bytes.Buffer, dot reflect.Value) {
			if s := f(dot); s != "" {
				run(b, then, reflect.ValueOf(s))
			} else {
				run(b, els, dot)
			}
		}, true
	}
	return func(b *bytes.Buffer, dot reflect.Value) {
		v := e.val(dot)
		if isTrue(v) {
			run(b, then, v)
		} else {
			run(b, els, dot)
		}
	}, true
}

// truthOf is text/template's isTrue for e's type: false for the zero of a
// number, bool, string, slice, array or map; structs are always true.
func truthOf(e expr) (func(reflect.Value) bool, bool) {
	if e.str != nil {
		f := e.str
		return func(dot reflect.Value) bool { return f(dot) != "" }, true
	}
	switch e.typ.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String, reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Struct:
	default:
		return nil, false
	}
	f := e.val
	return func(dot reflect.Value) bool { return isTrue(f(dot)) }, true
}

func isTrue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() > 0
	case reflect.Bool:
		return v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() != 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint() != 0
	case reflect.Float32, reflect.Float64:
		return v.Float() != 0
	}
	return true // a struct (truthOf admits no other kind)
}

// pipe compiles a pipeline without variables: a field or dot, or a
// function call, then function calls each given the value so far as their
// last argument.
func (c compiler) pipe(p *parse.PipeNode, dot reflect.Type) (expr, bool) {
	if p == nil || len(p.Decl) > 0 || p.IsAssign || len(p.Cmds) == 0 {
		return expr{}, false
	}
	var e expr
	for i, cmd := range p.Cmds {
		var final *expr
		if i > 0 {
			final = &e
		}
		next, ok := c.command(cmd, dot, final)
		if !ok {
			return expr{}, false
		}
		e = next
	}
	return e, true
}

func (c compiler) command(cmd *parse.CommandNode, dot reflect.Type, final *expr) (expr, bool) {
	if len(cmd.Args) == 0 {
		return expr{}, false
	}
	switch first := cmd.Args[0].(type) {
	case *parse.FieldNode, *parse.DotNode:
		if len(cmd.Args) != 1 || final != nil {
			return expr{}, false
		}
		return c.operand(first, dot)
	case *parse.IdentifierNode:
		return c.call(first.Ident, cmd.Args[1:], dot, final)
	}
	return expr{}, false
}

// operand compiles dot or a field chain of dot.
func (c compiler) operand(n parse.Node, dot reflect.Type) (expr, bool) {
	switch n := n.(type) {
	case *parse.DotNode:
		val := func(dot reflect.Value) reflect.Value { return dot }
		if dot == stringType {
			return expr{typ: dot, val: val, str: func(dot reflect.Value) string { return dot.String() }}, true
		}
		return expr{typ: dot, val: val}, true
	case *parse.FieldNode:
		typ := dot
		var index []int
		for i, name := range n.Ident {
			if typ.Kind() != reflect.Struct {
				return expr{}, false
			}
			// text/template calls a method of that name before it looks
			// for a field. Compiled: a method of the value (dot is never
			// addressable) without arguments, ending the chain, giving a
			// bool (such as Escalation.IsBreach).
			if m, ok := typ.MethodByName(name); ok {
				if i != len(n.Ident)-1 || m.Type.NumIn() != 1 || m.Type.NumOut() != 1 || m.Type.Out(0).Kind() != reflect.Bool {
					return expr{}, false
				}
				recv := c.fields(index)
				fn := m.Func
				return expr{typ: m.Type.Out(0), val: func(dot reflect.Value) reflect.Value {
					return fn.Call([]reflect.Value{recv(dot)})[0]
				}}, true
			}
			if _, ok := reflect.PointerTo(typ).MethodByName(name); ok {
				return expr{}, false
			}
			f, ok := typ.FieldByName(name)
			if !ok || !f.IsExported() || len(f.Index) != 1 {
				return expr{}, false
			}
			index = append(index, f.Index[0])
			typ = f.Type
		}
		val := c.fields(index)
		if typ == stringType {
			return expr{typ: typ, val: val, str: func(dot reflect.Value) string { return val(dot).String() }}, true
		}
		return expr{typ: typ, val: val}, true
	}
	return expr{}, false
}

// plainNumber reports whether t is a predeclared integer or bool type,
// which html/template's escapers print with fmt.Sprint.
func plainNumber(t reflect.Type) bool {
	if t.PkgPath() != "" || t.Name() == "" {
		return false
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

// fields reads the field at index (a field of a field… of dot).
func (compiler) fields(index []int) func(reflect.Value) reflect.Value {
	switch len(index) {
	case 0:
		return func(dot reflect.Value) reflect.Value { return dot }
	case 1:
		i := index[0]
		return func(dot reflect.Value) reflect.Value { return dot.Field(i) }
	}
	return func(dot reflect.Value) reflect.Value { return dot.FieldByIndex(index) }
}

// escapers are html/template's escapers of HTML text, RCDATA, quoted
// attributes and URLs, as they treat a plain string (no html/template
// content type, which a string is not).
var escapers = map[string]func(string) string{
	"_html_template_htmlescaper":   htmlEscape,
	"_html_template_rcdataescaper": htmlEscape,
	"_html_template_attrescaper":   htmlEscape,
	"_html_template_urlfilter":     urlFilter,
	"_html_template_urlnormalizer": urlNormalize,
}

// call compiles a call of function name with args and, in a pipeline, the
// value so far as the last argument. Functions are called directly, by
// their signature; other signatures are left to text/template.
func (c compiler) call(name string, args []parse.Node, dot reflect.Type, final *expr) (expr, bool) {
	fn, ok := c.funcs[name]
	if !ok {
		if esc := escapers[name]; c.html && esc != nil && len(args) == 0 && final != nil {
			if final.typ == stringType {
				f := final.str
				return expr{typ: stringType, str: func(dot reflect.Value) string { return esc(f(dot)) }}, true
			}
			if plainNumber(final.typ) {
				// A number or bool is escaped as it prints (fmt.Sprint).
				f := final.val
				return expr{typ: stringType, str: func(dot reflect.Value) string { return esc(fmt.Sprint(f(dot).Interface())) }}, true
			}
		}
		// A built-in (len, printf, eq…) or another escaper.
		return expr{}, false
	}
	ft := reflect.TypeOf(fn)
	if ft == nil || ft.Kind() != reflect.Func || ft.IsVariadic() || ft.NumOut() != 1 || ft.Out(0) != stringType {
		return expr{}, false
	}
	nodes := args
	n := len(nodes)
	if final != nil {
		n++
	}
	if ft.NumIn() != n {
		return expr{}, false
	}
	in := make([]expr, n)
	for i, a := range nodes {
		e, ok := c.arg(a, ft.In(i), dot)
		if !ok {
			return expr{}, false
		}
		in[i] = e
	}
	if final != nil {
		if final.typ != ft.In(n-1) {
			return expr{}, false
		}
		in[n-1] = *final
	}
	var str func(reflect.Value) string
	switch f := fn.(type) {
	case func(int, string) string:
		a, b := in[0].val, in[1].str
		str = func(dot reflect.Value) string { return f(int(a(dot).Int()), b(dot)) }
	case func(time.Time) string:
		a := in[0].val
		str = func(dot reflect.Value) string { return f(timeOf(a(dot))) }
	case func(string, time.Time) string:
		a, b := in[0].str, in[1].val
		str = func(dot reflect.Value) string { return f(a(dot), timeOf(b(dot))) }
	case func(string, []string) string:
		a, b := in[0].str, in[1].val
		str = func(dot reflect.Value) string { return f(a(dot), stringsOf(b(dot))) }
	default:
		return expr{}, false
	}
	return expr{typ: stringType, str: str}, true
}

func timeOf(v reflect.Value) time.Time {
	if v.CanInterface() {
		return v.Interface().(time.Time)
	}
	return time.Time{}
}

func stringsOf(v reflect.Value) []string {
	if v.IsNil() {
		return nil
	}
	return v.Interface().([]string)
}

// arg compiles a function argument of type want: a string or integer
// constant, dot or a field of that very type.
func (c compiler) arg(n parse.Node, want reflect.Type, dot reflect.Type) (expr, bool) {
	switch n := n.(type) {
	case *parse.StringNode:
		if want != stringType {
			return expr{}, false
		}
		s := n.Text
		return expr{typ: want, str: func(reflect.Value) string { return s }}, true
	case *parse.NumberNode:
		if want != intType || !n.IsInt || int64(int(n.Int64)) != n.Int64 {
			return expr{}, false
		}
		v := reflect.ValueOf(int(n.Int64))
		return expr{typ: want, val: func(reflect.Value) reflect.Value { return v }}, true
	case *parse.FieldNode, *parse.DotNode:
		e, ok := c.operand(n, dot)
		if !ok || e.typ != want {
			return expr{}, false
		}
		if want != stringType && want != timeType && want != stringsType && want != intType {
			return expr{}, false
		}
		return e, true
	}
	return expr{}, false
}

// htmlEscape is html/template's escaping of a plain string in HTML text,
// RCDATA and quoted attributes (htmlReplacer with htmlReplacementTable).
// Every byte it replaces is ASCII, which never occurs inside a multi-byte
// UTF-8 sequence, so it can go byte by byte; other bytes, invalid UTF-8
// included, are kept, as there.
func htmlEscape(s string) string {
	var b []byte
	written := 0
	for i := 0; i < len(s); i++ {
		var repl string
		switch s[i] {
		case 0:
			repl = "\uFFFD"
		case '"':
			repl = "&#34;"
		case '&':
			repl = "&amp;"
		case '\'':
			repl = "&#39;"
		case '+':
			repl = "&#43;"
		case '<':
			repl = "&lt;"
		case '>':
			repl = "&gt;"
		default:
			continue
		}
		if b == nil {
			b = make([]byte, 0, len(s)+16)
		}
		b = append(b, s[written:i]...)
		b = append(b, repl...)
		written = i + 1
	}
	if b == nil {
		return s
	}
	return string(append(b, s[written:]...))
}

// urlFilter is html/template's urlFilter of a plain string: a URL with a
// scheme other than http, https or mailto becomes "#ZgotmplZ".
func urlFilter(s string) string {
	if protocol, _, ok := strings.Cut(s, ":"); ok && !strings.Contains(protocol, "/") {
		if !strings.EqualFold(protocol, "http") && !strings.EqualFold(protocol, "https") && !strings.EqualFold(protocol, "mailto") {
			return "#ZgotmplZ"
		}
	}
	return s
}

// urlNormalize is html/template's urlNormalizer of a plain string: bytes
// outside RFC 3986's unreserved and reserved sets are percent-encoded,
// valid escapes kept.
func urlNormalize(s string) string {
	var b []byte
	written := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
			continue
		case strings.IndexByte("!#$&*+,/:;=?@[]-._~", c) >= 0:
			continue
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			continue
		}
		b = append(b, s[written:i]...)
		b = append(b, '%', hexLower[c>>4], hexLower[c&0xF])
		written = i + 1
	}
	if b == nil {
		return s
	}
	return string(append(b, s[written:]...))
}

const hexLower = "0123456789abcdef"

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
