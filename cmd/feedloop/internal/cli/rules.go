package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"gopkg.in/yaml.v3"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
	"github.com/feedloop/feedloop/services/classifier/classify"
	"github.com/feedloop/feedloop/services/classifier/rules"
	"github.com/feedloop/feedloop/services/router/routing"
)

func newRulesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "Check routing trees and classifier rules files; try where an item goes",
	}
	cmd.AddCommand(newRulesCheckCmd(), newRulesTestCmd())
	return cmd
}

func newRulesCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE",
		Short: "Validate a routing tree (routes.yaml) or a classifier rules file (rules.yaml); every error names the bad entry",
		Long: `Validate a routing tree (ROUTER_ROUTES_FILE, a file with a top-level
"route") or a classifier rules file (CLASSIFIER_RULES_FILE, a file with
"topics", "urgency" or "sentiment"); which one is told by the file's
top-level keys. Every error names the node or entry at fault. Exit 2 when
the file is invalid.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, err := ruleFileKind(args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if kind == kindClassifierRules {
				c, err := rules.Load(args[0])
				if err != nil {
					return &exitError{2, err}
				}
				fmt.Fprintf(out, "%s: ok — classifier rules, version %s, topics %s\n", args[0], c.Version(), strings.Join(c.Topics(), ", "))
				return nil
			}
			tree, err := loadTree(args[0])
			if err != nil {
				return err
			}
			n := 0
			tree.Root.Walk(func(*routing.Route) { n++ })
			fmt.Fprintf(out, "%s: ok — routing tree, %d routes, default team %s, teams %s\n",
				args[0], n, tree.DefaultTeam(), strings.Join(tree.Teams(), ", "))
			return nil
		},
	}
}

// The kinds of file `rules check` validates.
const (
	kindRoutingTree     = "routing tree"
	kindClassifierRules = "classifier rules"
)

// ruleFileKind tells a routing tree from a classifier rules file by the
// top-level keys of the YAML document.
func ruleFileKind(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", &exitError{2, err}
	}
	var top map[string]yaml.Node
	if err := yaml.Unmarshal(data, &top); err != nil {
		return "", &exitError{2, fmt.Errorf("%s: not a YAML mapping: %w", path, err)}
	}
	switch {
	case hasKey(top, "route"):
		return kindRoutingTree, nil
	case hasKey(top, "topics") || hasKey(top, "urgency") || hasKey(top, "sentiment"):
		return kindClassifierRules, nil
	}
	return "", &exitError{2, fmt.Errorf(`%s: neither a routing tree (top-level "route") nor classifier rules ("topics", "urgency", "sentiment")`, path)}
}

func hasKey(m map[string]yaml.Node, k string) bool {
	_, ok := m[k]
	return ok
}

func loadTree(path string) (*routing.Tree, error) {
	tree, err := routing.Load(path)
	if err != nil {
		if errors.Is(err, routing.ErrInvalid) {
			return nil, &exitError{2, err}
		}
		return nil, &exitError{2, fmt.Errorf("%s: %w", path, err)}
	}
	return tree, nil
}

type rulesTestOpts struct {
	feedback, classification, rules string
	jsonOut                         bool
}

func newRulesTestCmd() *cobra.Command {
	o := &rulesTestOpts{}
	cmd := &cobra.Command{
		Use:   "test FILE --feedback JSON",
		Short: "Show the teams an item would go to and which route matched",
		Long: `Show the teams a feedback item would be routed to by the tree in FILE, and
why: the route that matched for each team and the matchers that held.

--feedback is a protojson Feedback, inline or as a file name. The item is
classified with --rules (a classifier rules file) when given; score bands
and sentiment from NPS/CSAT/CES answers are always derived. --classification
(protojson, inline or a file) gives the classification instead.`,
		Example: `  feedloop rules test deploy/examples/routes.yaml --rules deploy/examples/rules.yaml \
    --feedback '{"source":"helpdesk","text":"I was charged twice and the app crashes","nps":2}'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return o.run(cmd, args[0]) },
	}
	f := cmd.Flags()
	f.StringVar(&o.feedback, "feedback", "", "protojson Feedback, inline or a file name (required)")
	f.StringVar(&o.classification, "classification", "", "protojson Classification, inline or a file name")
	f.StringVar(&o.rules, "rules", "", "classifier rules file to classify the item with")
	f.BoolVar(&o.jsonOut, "json", false, "print the result as JSON")
	_ = cmd.MarkFlagRequired("feedback")
	return cmd
}

// jsonArg reads a flag that holds JSON inline or names a file.
func jsonArg(flag, v string, m proto.Message) error {
	data := []byte(v)
	if t := strings.TrimSpace(v); !strings.HasPrefix(t, "{") {
		var err error
		if data, err = os.ReadFile(v); err != nil {
			return &exitError{2, fmt.Errorf("--%s: %w", flag, err)}
		}
	}
	if err := protojson.Unmarshal(data, m); err != nil {
		return &exitError{2, fmt.Errorf("--%s: %w", flag, err)}
	}
	return nil
}

// noTopics is the model used without --rules: every item is unclassified.
type noTopics struct{}

func (noTopics) Classify(context.Context, *feedloopv1.Feedback) (*feedloopv1.Classification, error) {
	return &feedloopv1.Classification{}, nil
}

func (o *rulesTestOpts) run(cmd *cobra.Command, file string) error {
	tree, err := loadTree(file)
	if err != nil {
		return err
	}
	fb := &feedloopv1.Feedback{}
	if err := jsonArg("feedback", o.feedback, fb); err != nil {
		return err
	}
	cls := &feedloopv1.Classification{}
	switch {
	case o.classification != "":
		if err := jsonArg("classification", o.classification, cls); err != nil {
			return err
		}
	default:
		var model classify.Classifier = noTopics{}
		if o.rules != "" {
			rc, err := rules.Load(o.rules)
			if err != nil {
				return &exitError{2, fmt.Errorf("--rules: %w", err)}
			}
			model = rc
		}
		p := &classify.Pipeline{Model: model}
		if cls, err = p.Classify(cmd.Context(), fb); err != nil {
			return err
		}
	}
	matches := tree.Match(fb, cls)
	labels := routing.Labels(fb, cls)
	if o.jsonOut {
		type jsonMatch struct {
			Team        string   `json:"team"`
			Route       string   `json:"route"`
			Priority    string   `json:"priority"`
			Acknowledge string   `json:"acknowledge,omitempty"`
			Resolve     string   `json:"resolve,omitempty"`
			Matchers    []string `json:"matchers"`
		}
		out := struct {
			Labels  map[string][]string `json:"labels"`
			Matches []jsonMatch         `json:"matches"`
		}{Labels: labels, Matches: []jsonMatch{}}
		for _, m := range matches {
			jm := jsonMatch{Team: m.Team, Route: m.Route, Priority: routing.PriorityName(m.Priority), Matchers: []string{}}
			if m.SLA.Acknowledge > 0 {
				jm.Acknowledge = m.SLA.Acknowledge.String()
			}
			if m.SLA.Resolve > 0 {
				jm.Resolve = m.SLA.Resolve.String()
			}
			for _, mt := range m.Matchers {
				jm.Matchers = append(jm.Matchers, mt.String())
			}
			out.Matches = append(out.Matches, jm)
		}
		return printJSON(cmd, out)
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "labels: %s\n", labels)
	fmt.Fprintf(w, "%d team(s):\n", len(matches))
	for _, m := range matches {
		fmt.Fprintf(w, "  %s\n", m)
	}
	return nil
}
