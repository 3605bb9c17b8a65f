package routing

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	feedloopv1 "github.com/feedloop/feedloop/proto/feedloop/v1"
)

// Label names a route can match on.
const (
	LabelTopic     = "topic"
	LabelRule      = "rule"
	LabelSentiment = "sentiment"
	LabelUrgency   = "urgency"
	LabelNPSBand   = "nps_band"
	LabelCSATBand  = "csat_band"
	LabelCESBand   = "ces_band"
	LabelChannel   = "channel"
	LabelSource    = "source"
	LabelLanguage  = "language"
	LabelProduct   = "product"
	LabelArea      = "area"
	// AttrPrefix prefixes a feedback attribute: attr.plan is Attributes["plan"].
	AttrPrefix = "attr."
)

// TopicUnknown is the topic of an item the classifier could not place, so
// `topic="unknown"` catches unclassified items (and the default team gets
// them when no route does).
const TopicUnknown = "unknown"

// LabelSet is the set of labels of one feedback item. Every label has one
// value except topic and rule, which have one per topic the classifier found
// and one per classifier rule that matched. A label
// that is absent reads as the empty string, as in Prometheus.
type LabelSet map[string][]string

// Get returns the values of name; nil when absent.
func (ls LabelSet) Get(name string) []string { return ls[name] }

// String renders the set as {name="value", topic=["a","b"]}, names sorted.
func (ls LabelSet) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, name := range slices.Sorted(maps.Keys(ls)) {
		if i > 0 {
			b.WriteString(", ")
		}
		vals := ls[name]
		if len(vals) == 1 {
			fmt.Fprintf(&b, "%s=%q", name, vals[0])
			continue
		}
		b.WriteString(name + "=[")
		for j, v := range vals {
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%q", v)
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
	return b.String()
}

// Labels returns the labels routes match for a feedback item and its
// classification (either may be nil). Enum values are lower case without
// their prefix (CHANNEL_APP_REVIEW → app_review); unspecified enums, empty
// strings and missing attributes are left out, so they match "".
func Labels(fb *feedloopv1.Feedback, c *feedloopv1.Classification) LabelSet {
	ls := LabelSet{}
	set := func(name, v string) {
		if v != "" {
			ls[name] = []string{v}
		}
	}
	var topics []string
	for _, t := range c.GetTopics() {
		if t.GetTopic() != "" && !slices.Contains(topics, t.GetTopic()) {
			topics = append(topics, t.GetTopic())
		}
	}
	if len(topics) == 0 {
		topics = []string{TopicUnknown}
	}
	ls[LabelTopic] = topics
	if ids := c.GetRuleIds(); len(ids) > 0 {
		ls[LabelRule] = slices.Clone(ids)
	}
	set(LabelSentiment, enumLabel(c.GetSentiment()))
	set(LabelUrgency, enumLabel(c.GetUrgency()))
	set(LabelNPSBand, enumLabel(c.GetNpsBand()))
	set(LabelCSATBand, enumLabel(c.GetCsatBand()))
	set(LabelCESBand, enumLabel(c.GetCesBand()))
	set(LabelChannel, enumLabel(fb.GetChannel()))
	set(LabelSource, fb.GetSource())
	set(LabelLanguage, c.GetLanguage())
	set(LabelProduct, fb.GetProduct())
	set(LabelArea, fb.GetArea())
	for k, v := range fb.GetAttributes() {
		set(AttrPrefix+k, v)
	}
	return ls
}

// enumLabels lists, for each enum label, the values it can take; a matcher
// `sentiment="angry"` can never match, so it is rejected at load. Labels
// absent here hold free text.
var enumLabels = map[string][]string{
	LabelSentiment: enumValues(feedloopv1.Sentiment(0)),
	LabelUrgency:   enumValues(feedloopv1.Urgency(0)),
	LabelNPSBand:   enumValues(feedloopv1.NpsBand(0)),
	LabelCSATBand:  enumValues(feedloopv1.CsatBand(0)),
	LabelCESBand:   enumValues(feedloopv1.CesBand(0)),
	LabelChannel:   enumValues(feedloopv1.Channel(0)),
}

// freeLabels hold free text (topic names and rule ids come from the
// classifier's rules file).
var freeLabels = []string{LabelTopic, LabelRule, LabelSource, LabelLanguage, LabelProduct, LabelArea}

// LabelNames lists the label names a matcher may use, attr.<key> aside.
func LabelNames() []string {
	names := append(slices.Collect(maps.Keys(enumLabels)), freeLabels...)
	slices.Sort(names)
	return names
}

// checkLabelName rejects a name no item can carry, naming the valid ones.
func checkLabelName(name string) error {
	if key, ok := strings.CutPrefix(name, AttrPrefix); ok {
		if key == "" {
			return fmt.Errorf("label %q: attribute key is empty", name)
		}
		return nil
	}
	if _, ok := enumLabels[name]; ok || slices.Contains(freeLabels, name) {
		return nil
	}
	return fmt.Errorf("unknown label %q (want one of %s, or attr.<key>)", name, strings.Join(LabelNames(), ", "))
}

// enumLabel is e's value name in lower case without the type prefix; ""
// for the zero (unspecified) value or a number the descriptor lacks.
func enumLabel(e protoreflect.Enum) string {
	if e.Number() == 0 {
		return ""
	}
	v := e.Descriptor().Values().ByNumber(e.Number())
	if v == nil {
		return ""
	}
	return valueName(v)
}

func enumValues(e protoreflect.Enum) []string {
	vals := e.Descriptor().Values()
	out := make([]string, 0, vals.Len())
	for i := range vals.Len() {
		if vals.Get(i).Number() != 0 {
			out = append(out, valueName(vals.Get(i)))
		}
	}
	return out
}

// valueName turns CHANNEL_APP_REVIEW into app_review: protobuf prefixes
// every value with the enum's name in upper snake case.
func valueName(v protoreflect.EnumValueDescriptor) string {
	prefix := upperSnake(string(v.Parent().Name())) + "_"
	return strings.ToLower(strings.TrimPrefix(string(v.Name()), prefix))
}

// upperSnake turns NpsBand into NPS_BAND.
func upperSnake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}
