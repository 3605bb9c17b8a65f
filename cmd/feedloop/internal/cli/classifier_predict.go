package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/feedloop/feedloop/services/classifier/model"
)

type classifierPredictOpts struct {
	model     string
	top, expl int
	jsonOut   bool
}

func newClassifierPredictCmd() *cobra.Command {
	o := &classifierPredictOpts{}
	cmd := &cobra.Command{
		Use:   `predict --model MODEL "text" [--json]`,
		Short: "Classify one text and show why",
		Long: `Classify one text (- reads it from stdin): the label ("unknown" when the top
probability is below the model's out-of-scope threshold), its calibrated
probability, the most probable labels and the n-grams that drove the
decision with their contributions.`,
		Example: `  feedloop classifier predict --model banking77.model "my card still hasn't arrived"`,
		Args:    cobra.ExactArgs(1),
		RunE:    func(cmd *cobra.Command, args []string) error { return o.run(cmd, args[0]) },
	}
	f := cmd.Flags()
	f.StringVar(&o.model, "model", "", "model file (required)")
	f.IntVar(&o.top, "top", 5, "how many labels to show")
	f.IntVar(&o.expl, "explain", 8, "how many explaining n-grams to show")
	f.BoolVar(&o.jsonOut, "json", false, "print the prediction as JSON")
	_ = cmd.MarkFlagRequired("model")
	return cmd
}

func (o *classifierPredictOpts) run(cmd *cobra.Command, text string) error {
	if text == "-" {
		b, err := readAll(cmd.InOrStdin())
		if err != nil {
			return err
		}
		text = string(b)
	}
	if strings.TrimSpace(text) == "" {
		return &exitError{2, fmt.Errorf("empty text")}
	}
	if o.top < 1 || o.expl < 0 {
		return &exitError{2, fmt.Errorf("--top must be ≥ 1 and --explain ≥ 0")}
	}
	m, err := loadModel(o.model)
	if err != nil {
		return err
	}
	p := m.PredictWith(text, model.PredictOptions{TopLabels: o.top, Explain: o.expl})
	if o.jsonOut {
		return printJSON(cmd, struct {
			model.Prediction
			Score     string  `json:"score"`
			Threshold float64 `json:"threshold"`
		}{p, m.Score, m.Threshold})
	}
	w := cmd.OutOrStdout()
	if p.Label == model.Unknown {
		fmt.Fprintf(w, "label: %s (top label %s at %.3f; its %s score %.3f is below the threshold %.3f)\n", p.Label, p.Top[0].Label, p.Prob, m.Score, p.OOSScore, m.Threshold)
	} else {
		fmt.Fprintf(w, "label: %s (%.3f)\n", p.Label, p.Prob)
	}
	fmt.Fprintln(w, "top labels:")
	for _, lp := range p.Top {
		fmt.Fprintf(w, "  %.3f  %s\n", lp.Prob, lp.Label)
	}
	if len(p.Explain) > 0 {
		fmt.Fprintf(w, "because of (for %s):\n", p.Top[0].Label)
		for _, c := range p.Explain {
			fmt.Fprintf(w, "  %+.4f  %-24q %s\n", c.Weight, c.Feature, c.Kind)
		}
	}
	return nil
}
