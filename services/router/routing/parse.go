package routing

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/feedloop/feedloop/pkg/bus"
	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// ErrInvalid is wrapped by every error Parse and Load return for a bad tree.
var ErrInvalid = errors.New("invalid routing tree")

// Error is one problem in a routes file, at a YAML path such as
// route.routes[1].matchers[0].
type Error struct {
	Path string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s: %s (line %d)", e.Path, e.Msg, e.Line)
	}
	return e.Path + ": " + e.Msg
}

// Load reads and parses the routes file at path.
func Load(path string) (*Tree, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("routing: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Parse parses and validates a routes file:
//
//	route:
//	  team: triage            # required: the default team
//	  priority: normal        # low | normal | high | urgent (default normal)
//	  sla: {acknowledge: 8h, resolve: 5d}
//	  escalate:               # who is alerted when a deadline is missed
//	    - {team: support-escalations, after: 0s}
//	    - {team: customer-success, after: 4h}
//	  routes:
//	    - name: billing
//	      team: billing
//	      matchers: ['topic="billing"']
//	      continue: false
//	      routes: [...]
//
// It reports every problem it finds, each with its path, joined in one
// error wrapping ErrInvalid. Unknown fields are errors, so a typo cannot
// silently change routing.
func Parse(data []byte) (*Tree, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	p := &parser{}
	root := p.document(&doc)
	if len(p.errs) > 0 {
		// In file order, which is how people fix them.
		slices.SortStableFunc(p.errs, func(a, b error) int { return a.(*Error).Line - b.(*Error).Line })
		return nil, fmt.Errorf("%w:\n%w", ErrInvalid, errors.Join(p.errs...))
	}
	return &Tree{Root: root}, nil
}

type parser struct{ errs []error } // each an *Error

func (p *parser) errorf(n *yaml.Node, path, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errorAt(line, path, format, args...)
}

func (p *parser) errorAt(line int, path, format string, args ...any) {
	p.errs = append(p.errs, &Error{Path: path, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) document(doc *yaml.Node) *Route {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || isNull(doc.Content[0]) {
		p.errorf(nil, "route", "missing: the file needs a top-level route with the default team")
		return nil
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		p.errorf(top, "(top level)", "must be a mapping with the key route")
		return nil
	}
	var rootNode *yaml.Node
	p.fields(top, "(top level)", func(k, v *yaml.Node) {
		switch k.Value {
		case "route":
			rootNode = v
		default:
			p.errorf(k, "(top level)", "unknown field %q (want route)", k.Value)
		}
	})
	if rootNode == nil || isNull(rootNode) {
		p.errorf(top, "route", "missing: the file needs a top-level route with the default team")
		return nil
	}
	root := p.route(rootNode, "route", nil)
	if root == nil {
		return nil
	}
	if root.ownTeam == "" {
		p.errorf(rootNode, "route", "the root route must have a team: it is the default team")
	}
	if len(root.Matchers) > 0 {
		p.errorf(rootNode, "route", "the root route must not have matchers: it catches what no other route takes")
	}
	if root.Continue {
		p.errorf(rootNode, "route", "the root route cannot have continue")
	}
	if root.Name == "" {
		root.Path = "root"
	} else {
		root.Path = root.Name
	}
	p.paths(root)
	return root
}

// fields calls f for each key/value of mapping n, rejecting duplicate keys.
func (p *parser) fields(n *yaml.Node, path string, f func(k, v *yaml.Node)) {
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		if seen[k.Value] {
			p.errorf(k, path, "field %q given twice", k.Value)
			continue
		}
		seen[k.Value] = true
		f(k, v)
	}
}

// route builds the node at path; parent is nil for the root. Options not
// set on the node are inherited from parent.
func (p *parser) route(n *yaml.Node, path string, parent *Route) *Route {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, path, "must be a mapping")
		return nil
	}
	r := &Route{parent: parent, src: path, line: n.Line, Priority: feedloopv1.Priority_PRIORITY_NORMAL}
	if parent != nil {
		r.Team, r.Priority, r.SLA, r.Escalation = parent.Team, parent.Priority, parent.SLA, parent.Escalation
	}
	var children *yaml.Node
	p.fields(n, path, func(k, v *yaml.Node) {
		if isNull(v) {
			return // `team:` with no value is as if unset
		}
		switch k.Value {
		case "name":
			if s, ok := p.str(v, path, "name"); ok {
				if !bus.ValidToken(s) {
					p.errorf(v, path, "name %q must match [a-z0-9_-]{1,64}", s)
				}
				r.Name = s
			}
		case "team":
			if s, ok := p.str(v, path, "team"); ok {
				// Teams become NATS subject tokens: feedback.routed.<team>.
				if !bus.ValidToken(s) {
					p.errorf(v, path, "team %q must match [a-z0-9_-]{1,64}", s)
				}
				r.Team, r.ownTeam = s, s
			}
		case "matchers":
			r.Matchers = p.matchers(v, path+".matchers")
		case "continue":
			if err := v.Decode(&r.Continue); err != nil || v.Kind != yaml.ScalarNode {
				p.errorf(v, path, "continue must be true or false, got %q", v.Value)
			}
		case "priority":
			if s, ok := p.str(v, path, "priority"); ok {
				pr, err := ParsePriority(s)
				if err != nil {
					p.errorf(v, path, "%v", err)
				}
				r.Priority = pr
			}
		case "sla":
			p.sla(v, path+".sla", &r.SLA)
		case "escalate":
			r.Escalation = p.escalate(v, path+".escalate")
		case "routes":
			children = v
		default:
			p.errorf(k, path, "unknown field %q (want name, team, matchers, continue, priority, sla, escalate or routes)", k.Value)
		}
	})
	if r.SLA.Acknowledge > 0 && r.SLA.Resolve > 0 && r.SLA.Resolve < r.SLA.Acknowledge {
		p.errorf(n, path, "sla: resolve (%s) must not be shorter than acknowledge (%s)", r.SLA.Resolve, r.SLA.Acknowledge)
	}
	if children != nil {
		if children.Kind != yaml.SequenceNode {
			p.errorf(children, path+".routes", "must be a list of routes")
			return r
		}
		for i, c := range children.Content {
			if child := p.route(deref(c), fmt.Sprintf("%s.routes[%d]", path, i), r); child != nil {
				r.Routes = append(r.Routes, child)
			}
		}
	}
	return r
}

func (p *parser) str(v *yaml.Node, path, field string) (string, bool) {
	if v.Kind != yaml.ScalarNode {
		p.errorf(v, path, "%s must be a string", field)
		return "", false
	}
	return v.Value, true
}

func (p *parser) matchers(v *yaml.Node, path string) Matchers {
	if v.Kind != yaml.SequenceNode {
		p.errorf(v, path, `must be a list of strings like 'topic="billing"'`)
		return nil
	}
	var ms Matchers
	for i, item := range v.Content {
		item = deref(item)
		ipath := fmt.Sprintf("%s[%d]", path, i)
		if item.Kind != yaml.ScalarNode {
			p.errorf(item, ipath, `must be a string like 'topic="billing"'`)
			continue
		}
		m, err := ParseMatcher(item.Value)
		if err != nil {
			p.errorf(item, ipath, "%v", err)
			continue
		}
		ms = append(ms, m)
	}
	return ms
}

// sla overrides the inherited durations that the node sets; each one
// is inherited on its own.
func (p *parser) sla(v *yaml.Node, path string, sla *SLA) {
	if v.Kind != yaml.MappingNode {
		p.errorf(v, path, "must be a mapping with acknowledge and/or resolve")
		return
	}
	p.fields(v, path, func(k, val *yaml.Node) {
		var dst *time.Duration
		switch k.Value {
		case "acknowledge":
			dst = &sla.Acknowledge
		case "resolve":
			dst = &sla.Resolve
		default:
			p.errorf(k, path, "unknown field %q (want acknowledge or resolve)", k.Value)
			return
		}
		if d, ok := p.duration(val, path+"."+k.Value); ok {
			*dst = d
		}
	})
}

// escalate parses a chain, which replaces the inherited one as a whole
// (`escalate: []` clears it). A step's after defaults to 0s: alert at once.
func (p *parser) escalate(v *yaml.Node, path string) []EscalationStep {
	if v.Kind != yaml.SequenceNode {
		p.errorf(v, path, "must be a list of steps like {team: support-escalations, after: 1h}")
		return nil
	}
	chain := []EscalationStep{} // not nil: an explicit empty list clears the inherited chain
	for i, item := range v.Content {
		item = deref(item)
		spath := fmt.Sprintf("%s[%d]", path, i)
		if item.Kind != yaml.MappingNode {
			p.errorf(item, spath, "must be a mapping like {team: support-escalations, after: 1h}")
			continue
		}
		var step EscalationStep
		p.fields(item, spath, func(k, val *yaml.Node) {
			switch k.Value {
			case "team":
				if s, ok := p.str(val, spath, "team"); ok {
					// Escalations are published and alerted per team, like routes.
					if !bus.ValidToken(s) {
						p.errorf(val, spath, "team %q must match [a-z0-9_-]{1,64}", s)
					}
					step.Team = s
				}
			case "after":
				if d, ok := p.duration(val, spath+".after"); ok {
					step.After = d
				}
			default:
				p.errorf(k, spath, "unknown field %q (want team or after)", k.Value)
			}
		})
		if step.Team == "" {
			p.errorf(item, spath, "team is required")
		}
		chain = append(chain, step)
	}
	return chain
}

// duration parses a non-negative duration at path.
func (p *parser) duration(val *yaml.Node, path string) (time.Duration, bool) {
	if val.Kind != yaml.ScalarNode {
		p.errorf(val, path, "must be a duration like 30m, 8h or 3d")
		return 0, false
	}
	d, err := ParseDuration(val.Value)
	switch {
	case err != nil:
		p.errorf(val, path, "%v", err)
		return 0, false
	case d < 0:
		p.errorf(val, path, "must not be negative, got %s", val.Value)
		return 0, false
	}
	return d, true
}

// paths names every route below r; see Route.Path.
func (p *parser) paths(r *Route) {
	used := map[string]bool{}
	for i, c := range r.Routes {
		seg := c.Name
		switch {
		case seg != "" && used[seg]:
			p.errorAt(c.line, c.src, "name %q is already used by a sibling route", seg)
		case seg == "" && c.ownTeam != "" && !used[c.ownTeam]:
			seg = c.ownTeam
		case seg == "":
			seg = strconv.Itoa(i)
		}
		used[seg] = true
		c.Path = r.Path + "/" + seg
		p.paths(c)
	}
}

// deref follows a YAML alias (*name) to its anchored node, so shared
// matcher lists or SLAs can be written once.
func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// ParsePriority parses low, normal, high or urgent.
func ParsePriority(s string) (feedloopv1.Priority, error) {
	switch s {
	case "low":
		return feedloopv1.Priority_PRIORITY_LOW, nil
	case "normal":
		return feedloopv1.Priority_PRIORITY_NORMAL, nil
	case "high":
		return feedloopv1.Priority_PRIORITY_HIGH, nil
	case "urgent":
		return feedloopv1.Priority_PRIORITY_URGENT, nil
	}
	return feedloopv1.Priority_PRIORITY_UNSPECIFIED, fmt.Errorf("priority %q must be one of low, normal, high, urgent", s)
}

// PriorityName is the routes-file spelling of p: low, normal, high, urgent.
func PriorityName(p feedloopv1.Priority) string {
	return enumLabel(p)
}

var daysWeeks = regexp.MustCompile(`^(?:(\d+)w)?(?:(\d+)d)?(.*)$`)

// ParseDuration parses a Go duration ("90m", "1h30m") that may start with
// weeks and days ("1w", "3d", "1d12h"), as SLAs are often counted in days.
func ParseDuration(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	neg := strings.HasPrefix(in, "-")
	in = strings.TrimPrefix(in, "-")
	m := daysWeeks.FindStringSubmatch(in)
	if in == "" || m == nil {
		return 0, fmt.Errorf("invalid duration %q (want e.g. 30m, 8h, 3d, 1w)", s)
	}
	var d time.Duration
	for i, unit := range []time.Duration{7 * 24 * time.Hour, 24 * time.Hour} {
		if m[i+1] != "" {
			n, err := strconv.Atoi(m[i+1])
			if err != nil || n > 10000 {
				return 0, fmt.Errorf("invalid duration %q (want e.g. 30m, 8h, 3d, 1w)", s)
			}
			d += time.Duration(n) * unit
		}
	}
	if m[3] != "" {
		rest, err := time.ParseDuration(m[3])
		if err != nil || rest < 0 {
			return 0, fmt.Errorf("invalid duration %q (want e.g. 30m, 8h, 3d, 1w)", s)
		}
		d += rest
	}
	if neg {
		d = -d
	}
	return d, nil
}
