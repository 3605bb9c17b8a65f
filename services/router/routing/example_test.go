package routing

import (
	"slices"
	"testing"
	"time"
)

// The example's escalation chains, as chainString renders them.
const (
	exRoot    = "support-escalations+0s"
	exDesk    = "customer-success+1h0m0s"
	exBilling = "support-escalations+0s,customer-success+4h0m0s"
)

// The shipped example must stay valid and route as its comments say.
func TestExampleRoutesFile(t *testing.T) {
	tree, err := Load("../../../deploy/examples/routes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		labels LabelSet
		want   []want
	}{
		{
			name:   "negative NPS survey about a delivery reaches customer success and logistics",
			labels: ls("topic", "delivery", "nps_band", "detractor", "channel", "survey", "sentiment", "negative"),
			want: []want{
				{"customer-success", "root/detractors", "high", 4 * h, 3 * d, exRoot},
				{"logistics", "root/logistics", "normal", 4 * h, 2 * d, exRoot},
			},
		},
		{
			name:   "critical refund: escalations and billing refunds",
			labels: ls("topic", "billing", "rule", "billing-refunds", "urgency", "critical"),
			want: []want{
				{"support-escalations", "root/escalations", "urgent", 30 * time.Minute, 1 * d, exDesk},
				{"billing", "root/billing/refunds", "high", 4 * h, 3 * d, exBilling},
			},
		},
		{
			name:   "a double charge and an app crash: billing and product",
			labels: ls("topic", "billing", "topic", "app", "sentiment", "negative", "channel", "email"),
			want: []want{
				{"billing", "root/billing", "normal", 8 * h, 3 * d, exBilling},
				{"product", "root/product", "normal", 1 * d, 14 * d, exRoot},
			},
		},
		{
			name:   "unclassified: triage",
			labels: ls(),
			want:   []want{{"triage", "root", "normal", 8 * h, 5 * d, exRoot}},
		},
		{
			name:   "unclassified and upset: triage, sooner",
			labels: ls("sentiment", "negative"),
			want:   []want{{"triage", "root/unclassified-negative", "high", 4 * h, 5 * d, exRoot}},
		},
		{
			name:   "app store review about the app: mobile",
			labels: ls("topic", "app", "channel", "app_review"),
			want:   []want{{"mobile", "root/product/mobile", "normal", 1 * d, 14 * d, exRoot}},
		},
		{
			name:   "German delivery: the DACH logistics team",
			labels: ls("topic", "delivery", "attr.region", "ch"),
			want:   []want{{"logistics-dach", "root/logistics/dach", "normal", 4 * h, 2 * d, exRoot}},
		},
		{
			name:   "praise from a promoter",
			labels: ls("sentiment", "positive", "nps_band", "promoter"),
			want:   []want{{"marketing", "root/praise", "low", 7 * d, 0, noChain}},
		},
	}
	for _, tc := range tests {
		if g := got(tree.MatchLabels(tc.labels)); !slices.Equal(g, tc.want) {
			t.Errorf("%s:\n got: %v\nwant: %v", tc.name, g, tc.want)
		}
	}
}
