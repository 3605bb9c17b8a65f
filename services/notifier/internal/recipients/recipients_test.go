package recipients_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/feedloop/feedloop/services/notifier/internal/channel"
	"github.com/feedloop/feedloop/services/notifier/internal/recipients"
	"github.com/feedloop/feedloop/services/notifier/internal/steps"
	"github.com/feedloop/feedloop/services/notifier/internal/teams"
)

// named is a Sender that only identifies itself: these tests check which
// targets are chosen, not delivery.
type named string

func (named) Send(context.Context, channel.Message) error { return nil }

func targets(ts []recipients.Target) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Channel+":"+t.Recipient+"@"+string(t.Sender.(named)))
	}
	return out
}

func customerNotice(c steps.Customer) steps.Notice {
	s, _ := steps.SpecNamed(steps.StepReceived)
	return steps.Notice{Spec: s, Data: steps.Data{Customer: c}}
}

func teamNotice(team string) steps.Notice {
	s, _ := steps.SpecNamed(steps.StepRouted)
	return steps.Notice{Spec: s, Team: team}
}

func teamsFile(t *testing.T) *teams.File {
	f, err := teams.Parse([]byte(`
teams:
  billing:
    - {type: webhook, url: "https://h.example/billing"}
    - {type: email, to: [Billing@Example.com, billing@example.com]}
  default:
    - {type: webhook, name: catchall, url: "https://h.example/default"}
`))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestCustomerTargets(t *testing.T) {
	d := &recipients.Directory{Email: named("smtp"), CustomerWebhook: named("cwh")}
	cases := []struct {
		name string
		c    steps.Customer
		want []string
	}{
		{"email and id", steps.Customer{ID: "c1", Email: " Ada@Example.com "}, []string{"email:ada@example.com@smtp", "webhook:customer-webhook@cwh"}},
		{"id only", steps.Customer{ID: "c1"}, []string{"webhook:customer-webhook@cwh"}},
		{"no address", steps.Customer{Name: "Ada"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := targets(d.For(customerNotice(tc.c))); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("targets = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCustomerTargetsWithoutChannels(t *testing.T) {
	d := &recipients.Directory{Teams: teamsFile(t)}
	if got := d.For(customerNotice(steps.Customer{ID: "c1", Email: "ada@example.com"})); len(got) != 0 {
		t.Errorf("targets = %v, want none: no customer channel is configured", targets(got))
	}
}

func TestConsoleTargets(t *testing.T) {
	d := &recipients.Directory{Console: named("console")}
	if got, want := targets(d.For(customerNotice(steps.Customer{ID: "c1"}))), []string{"console:id:c1@console"}; !reflect.DeepEqual(got, want) {
		t.Errorf("customer = %v, want %v", got, want)
	}
	if got, want := targets(d.For(teamNotice("billing"))), []string{"console:billing@console"}; !reflect.DeepEqual(got, want) {
		t.Errorf("team = %v, want %v", got, want)
	}
}

func TestTeamTargets(t *testing.T) {
	d := &recipients.Directory{
		Email: named("smtp"),
		Teams: teamsFile(t),
		TeamWebhooks: map[string]channel.Sender{
			recipients.TeamWebhookKey("billing", "billing-webhook"): named("billing-hook"),
			recipients.TeamWebhookKey("default", "catchall"):        named("default-hook"),
		},
	}
	// The two spellings of one address give one email.
	if got, want := targets(d.For(teamNotice("billing"))), []string{"webhook:billing-webhook@billing-hook", "email:billing@example.com@smtp"}; !reflect.DeepEqual(got, want) {
		t.Errorf("billing = %v, want %v", got, want)
	}
	if got, want := targets(d.For(teamNotice("logistics"))), []string{"webhook:catchall@default-hook"}; !reflect.DeepEqual(got, want) {
		t.Errorf("logistics = %v, want %v", got, want)
	}
}
