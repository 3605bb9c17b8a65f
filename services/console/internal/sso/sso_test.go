package sso

import (
	"slices"
	"strings"
	"testing"
)

// The teams claim maps to the teams the console has tokens for: a string
// or an array, the prefix kept and stripped, anything else ignored.
func TestTeams(t *testing.T) {
	c := New(Config{TeamPrefix: "feedloop-", Tokens: map[string]string{"billing": "a", "logistics": "b"}}, nil)
	for _, tc := range []struct {
		claim any
		want  []string
	}{
		{[]any{"feedloop-logistics", "staff", "feedloop-billing", "feedloop-billing"}, []string{"billing", "logistics"}},
		{"feedloop-billing", []string{"billing"}},
		{[]any{"billing", "feedloop-product", 7}, nil}, // no prefix; no token; not a string
		{nil, nil},
		{map[string]any{"feedloop-billing": true}, nil},
	} {
		if got := c.teams(tc.claim); !slices.Equal(got, tc.want) {
			t.Errorf("teams(%v) = %v, want %v", tc.claim, got, tc.want)
		}
	}
	plain := New(Config{Tokens: map[string]string{"billing": "a"}}, nil)
	if got := plain.teams([]any{"billing", "staff"}); !slices.Equal(got, []string{"billing"}) {
		t.Errorf("without a prefix: %v", got)
	}
}

func TestActor(t *testing.T) {
	for _, tc := range []struct {
		id   Identity
		want string
	}{
		{Identity{Subject: "s", Name: " Ada Lovelace ", Email: "ada@x"}, "Ada Lovelace"},
		{Identity{Subject: "s", Email: "ada@x"}, "ada@x"},
		{Identity{Subject: "s"}, "s"},
		{Identity{Subject: "s", Name: "Ada\nLovelace"}, "AdaLovelace"},
		{Identity{Name: strings.Repeat("é", 200)}, strings.Repeat("é", 128)},
	} {
		if got := tc.id.Actor(); got != tc.want {
			t.Errorf("%+v.Actor() = %q, want %q", tc.id, got, tc.want)
		}
	}
}

func TestParseTokens(t *testing.T) {
	if m, err := ParseTokens([]byte("billing: tok-1\nlogistics: tok-2\n")); err != nil || m["billing"] != "tok-1" || len(m) != 2 {
		t.Fatalf("good file: %v %v", m, err)
	}
	if m, err := ParseTokens([]byte("tokens:\n  billing: tok-1\n  logistics: tok-2\n")); err != nil || m["billing"] != "tok-1" || m["logistics"] != "tok-2" || len(m) != 2 {
		t.Fatalf("the map under tokens: %v %v", m, err)
	}
	if m, err := ParseTokens([]byte("tokens: {billing: tok-1}\n")); err != nil || m["billing"] != "tok-1" || len(m) != 1 {
		t.Fatalf("a flow map under tokens: %v %v", m, err)
	}
	for in, want := range map[string]string{
		"":                        "no team",
		"- billing\n":             "want a YAML map",
		"Billing: x\n":            `team "Billing"`,
		"billing: \"\"\n":         "team billing: empty token",
		"billing: [a, b]\n":       "want a YAML map",
		"tokens: {}\n":            "no team",
		"tokens:\n  Billing: x\n": `team "Billing"`,
		"tokens: [a]\n":           "want a YAML map",
	} {
		if _, err := ParseTokens([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}
