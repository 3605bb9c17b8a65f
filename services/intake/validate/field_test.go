package validate_test

import (
	"strings"
	"testing"

	"github.com/feedloop/feedloop/services/intake/validate"
)

// Text and Line apply the very rules of feedback.text and feedback.subject
// to an edge's own field, named as the edge names it.
func TestTextAndLineAreFeedbacksRules(t *testing.T) {
	cases := []struct {
		name, s    string
		text, line string // substring of the violation, "" for none
	}{
		{"plain", "Refunded.", "", ""},
		{"empty", "", "", ""},
		{"multi-line", "Hi,\r\n\tok", "", "must be one line"},
		{"NUL", "good\x00bad", "control characters", "must be one line"},
		{"ESC", "\x1b[31mred", "control characters", "must be one line"},
		{"line separator", "a\u2028b", "", "must be one line"},
		{"invalid UTF-8", "\xff\xfe", "valid UTF-8", "valid UTF-8"},
		{"too long", strings.Repeat("x", 11), "at most 10 bytes", "at most 10 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, k := range []struct {
				fn   func(string, string, int) []validate.Violation
				want string
			}{{validate.Text, c.text}, {validate.Line, c.line}} {
				vs := k.fn("comment", c.s, 10)
				switch {
				case k.want == "" && len(vs) != 0:
					t.Fatalf("%q: %v, want valid", c.s, vs)
				case k.want != "" && (len(vs) != 1 || vs[0].Field != "comment" || !strings.Contains(vs[0].Description, k.want)):
					t.Fatalf("%q: %v, want one violation on comment with %q", c.s, vs, k.want)
				}
			}
		})
	}
	// The same string in a Feedback's text breaks the same rule.
	fb := valid()
	fb.Text = "good\x00bad"
	vs := validate.Feedback(fb, now)
	if len(vs) != 1 || vs[0].Field != "feedback.text" || vs[0].Description != validate.Text("x", fb.Text, validate.MaxTextBytes)[0].Description {
		t.Fatalf("Feedback and Text disagree: %v", vs)
	}
}
