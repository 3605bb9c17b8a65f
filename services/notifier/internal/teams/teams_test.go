package teams_test

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/feedloop/feedloop/services/notifier/internal/teams"
)

func TestParseAndLookup(t *testing.T) {
	f, err := teams.Parse([]byte(`
teams:
  billing:
    - type: webhook
      url: https://hooks.example.com/billing
    - type: webhook
      url: https://hooks.example.com/billing-2
    - type: email
      to: billing@example.com
  product:
    - type: webhook
      name: pm-chat
      url: http://127.0.0.1:9000/hook
  default:
    - type: email
      to: [a@example.com, b@example.com]
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	billing := f.For("billing")
	if len(billing) != 3 || billing[0].Name != "billing-webhook" || billing[1].Name != "billing-webhook-2" {
		t.Errorf("billing webhooks named %+v, want billing-webhook and billing-webhook-2", billing)
	}
	if !reflect.DeepEqual([]string(billing[2].To), []string{"billing@example.com"}) {
		t.Errorf("single to = %v", billing[2].To)
	}
	if got := f.For("product"); len(got) != 1 || got[0].Name != "pm-chat" {
		t.Errorf("product = %+v", got)
	}
	if got := f.For("logistics"); len(got) != 1 || !reflect.DeepEqual([]string(got[0].To), []string{"a@example.com", "b@example.com"}) {
		t.Errorf("unlisted team got %+v, want the default entry", got)
	}
	if !f.Has(teams.TypeEmail) || !f.Has(teams.TypeWebhook) {
		t.Error("Has reports a type missing")
	}
}

func TestNoDefaultMeansNoChannels(t *testing.T) {
	f, err := teams.Parse([]byte("teams:\n  billing:\n    - {type: email, to: b@example.com}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.For("product"); len(got) != 0 {
		t.Errorf("For(product) = %+v, want none", got)
	}
}

func TestParseErrors(t *testing.T) {
	cases := map[string]struct{ yaml, want string }{
		"unknown type":    {"teams:\n  billing:\n    - {type: sms, to: x}\n", `teams.billing[0]: type must be webhook or email, got "sms"`},
		"webhook no url":  {"teams:\n  billing:\n    - {type: webhook}\n", "teams.billing[0]: url: must be an absolute http(s) URL"},
		"webhook bad url": {"teams:\n  billing:\n    - {type: webhook, url: 'ftp://x/y'}\n", "teams.billing[0]: url: must be an absolute http(s) URL"},
		// The URL may hold a secret: the error names what is wrong, not the URL.
		"webhook url without scheme": {"teams:\n  billing:\n    - {type: webhook, url: 'hooks.example/services/T0/B0/url-secret'}\n", `got scheme "" and host ""`},
		"webhook with to":            {"teams:\n  billing:\n    - {type: webhook, url: 'https://x', to: a@b.example}\n", "teams.billing[0]: a webhook channel takes url, not to"},
		"email no to":                {"teams:\n  billing:\n    - {type: email}\n", "teams.billing[0]: an email channel needs to"},
		"email bad addr":             {"teams:\n  billing:\n    - {type: email, to: [ok@example.com, 'Eve <eve@example.com>']}\n", "teams.billing[0].to[1]: must be a bare email address"},
		"bad team name":              {"teams:\n  Billing Team:\n    - {type: email, to: a@example.com}\n", "teams.Billing Team: team name must be"},
		"empty team":                 {"teams:\n  billing: []\n", "teams.billing: lists no channel"},
		"unknown field":              {"teams:\n  billing:\n    - {type: email, to: a@example.com, cc: b@example.com}\n", "field cc not found"},
		"duplicate name":             {"teams:\n  billing:\n    - {type: webhook, name: x, url: 'https://a'}\n    - {type: webhook, name: x, url: 'https://b'}\n", `teams.billing[1]: webhook name "x" used twice`},
		"top-level typo":             {"team:\n  billing: []\n", "field team not found"},
		"email with name":            {"teams:\n  billing:\n    - {type: email, name: n, to: a@example.com}\n", "an email channel takes to, not url or name"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := teams.Parse([]byte(tc.yaml))
			if !errors.Is(err, teams.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want ErrInvalid containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "url-secret") {
				t.Fatalf("error repeats the URL: %v", err)
			}
		})
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	_, err := teams.Load(filepath.Join(t.TempDir(), "missing.yaml"))
	if err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("error = %v, want one naming the file", err)
	}
}

func TestExampleFileIsValid(t *testing.T) {
	f, err := teams.Load(filepath.Join("..", "..", "..", "..", "deploy", "examples", "teams.yaml"))
	if err != nil {
		t.Fatalf("example teams file: %v", err)
	}
	if len(f.For("no-such-team")) == 0 {
		t.Error("example file has no default entry")
	}
}
