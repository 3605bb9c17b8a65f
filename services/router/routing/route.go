// Package routing is feedloop's routing tree, modelled on Alertmanager's:
// a root route that names the default team, child routes with label
// matchers, depth-first matching where the first matching child wins unless
// it sets continue, and options (team, priority, SLA, escalation chain) that
// children inherit.
//
// A feedback item's labels come from Labels; a Tree maps them to one Match
// per team, and each Match becomes one feedback.routed.<team> event.
package routing

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// SLA is how long a team has to acknowledge and to resolve an item,
// counted from when the item was classified. Zero means no deadline.
type SLA struct {
	Acknowledge time.Duration
	Resolve     time.Duration
}

// EscalationStep is one level of an SLA escalation chain: when a deadline
// is missed, level 1 alerts its team After the deadline, and each next
// level alerts its team After the level before it.
type EscalationStep struct {
	Team  string
	After time.Duration
}

// Route is one node of the tree, with its inherited options resolved.
type Route struct {
	// Name as configured; empty when the route has none.
	Name string
	// Path from the root, e.g. "root/billing/refunds": each segment is the
	// route's name, else its own team, else its index among its siblings.
	Path string
	// Team, Priority, SLA and Escalation after inheritance.
	Team     string
	Priority feedloopv1.Priority
	SLA      SLA
	// Escalation is the chain alerted when an SLA deadline is missed; empty
	// when the route has none (the team is still told of the breach).
	Escalation []EscalationStep
	// Matchers must all hold for the route to match; none matches everything.
	Matchers Matchers
	// Continue lets the siblings after this route match too (fan-out).
	Continue bool
	// Routes are the children, tried in order.
	Routes []*Route

	parent  *Route
	ownTeam string // the team set on this node, for its path segment
	src     string // position in the file, e.g. route.routes[1], for errors
	line    int
}

// Match returns the routes ls reaches from r, depth first: nil if r's
// matchers do not hold; else the matches of its children, where the first
// matching child ends the search unless it has Continue; else, when no
// child matched, r itself.
func (r *Route) Match(ls LabelSet) []*Route {
	if !r.Matchers.Matches(ls) {
		return nil
	}
	var all []*Route
	for _, c := range r.Routes {
		m := c.Match(ls)
		all = append(all, m...)
		if m != nil && !c.Continue {
			break
		}
	}
	if len(all) == 0 {
		all = append(all, r)
	}
	return all
}

// PathMatchers returns the matchers of r and of its ancestors, root first:
// everything that had to hold for an item to reach r.
func (r *Route) PathMatchers() Matchers {
	var chain []*Route
	for n := r; n != nil; n = n.parent {
		chain = append(chain, n)
	}
	var ms Matchers
	for i := len(chain) - 1; i >= 0; i-- {
		ms = append(ms, chain[i].Matchers...)
	}
	return ms
}

// Walk calls f for r and every route below it, depth first.
func (r *Route) Walk(f func(*Route)) {
	f(r)
	for _, c := range r.Routes {
		c.Walk(f)
	}
}

// Tree is a validated routing tree. It is immutable and safe for
// concurrent use.
type Tree struct {
	Root *Route
}

// Match is one team's share of an item.
type Match struct {
	Team     string
	Route    string // path of the route that matched
	Priority feedloopv1.Priority
	SLA      SLA
	// Escalation is the route's chain; shared with the tree, do not modify.
	Escalation []EscalationStep
	// Matchers explains the match: every matcher from the root down to the
	// route, all of which held for the item.
	Matchers Matchers
}

// String renders m for people, e.g.
// `billing via root/billing/refunds priority=high acknowledge=8h0m0s resolve=72h0m0s escalate=support-escalations+0s,customer-success+4h0m0s matched {topic="billing"}`.
func (m Match) String() string {
	return fmt.Sprintf("%s via %s priority=%s acknowledge=%s resolve=%s escalate=%s matched %s",
		m.Team, m.Route, PriorityName(m.Priority), durationOrNone(m.SLA.Acknowledge), durationOrNone(m.SLA.Resolve), chainString(m.Escalation), m.Matchers)
}

// chainString renders a chain as team+after,team+after or none.
func chainString(chain []EscalationStep) string {
	if len(chain) == 0 {
		return "none"
	}
	var b strings.Builder
	for i, s := range chain {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s.Team + "+" + s.After.String())
	}
	return b.String()
}

func durationOrNone(d time.Duration) string {
	if d <= 0 {
		return "none"
	}
	return d.String()
}

// Match routes a classified feedback item: Labels, then MatchLabels.
func (t *Tree) Match(fb *feedloopv1.Feedback, c *feedloopv1.Classification) []Match {
	return t.MatchLabels(Labels(fb, c))
}

// MatchLabels returns one Match per team that ls reaches, in tree order.
// When several routes of one team match, the first wins: a team gets an
// item once.
func (t *Tree) MatchLabels(ls LabelSet) []Match {
	routes := t.Root.Match(ls)
	out := make([]Match, 0, len(routes))
	seen := make(map[string]bool, len(routes))
	for _, r := range routes {
		if seen[r.Team] {
			continue
		}
		seen[r.Team] = true
		out = append(out, Match{Team: r.Team, Route: r.Path, Priority: r.Priority, SLA: r.SLA, Escalation: r.Escalation, Matchers: r.PathMatchers()})
	}
	return out
}

// Teams lists every team the tree can route to, sorted.
func (t *Tree) Teams() []string {
	set := map[string]bool{}
	t.Root.Walk(func(r *Route) { set[r.Team] = true })
	return slices.Sorted(maps.Keys(set))
}

// DefaultTeam is the root's team: it gets what no other route takes.
func (t *Tree) DefaultTeam() string { return t.Root.Team }
