package stack

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/feedloop/feedloop/cmd/feedloop/internal/teamtoken"
	"github.com/feedloop/feedloop/pkg/atomicfile"
)

// Files a development stack keeps under its data directory.
const (
	// DevTokensFile holds the development team tokens in clear (0600), so
	// they stay the same across restarts of the same data directory.
	DevTokensFile = "dev-team-tokens.yaml"
	// TeamTokensFile holds their hashes, the router's tokens file.
	TeamTokensFile = "team-tokens.yaml"
	// DevTeamsFile gives every team an email channel into the dev mailbox.
	DevTeamsFile = "dev-teams.yaml"
)

// DevMailFrom is the sender of the notifier's emails in development.
const DevMailFrom = "feedloop dev <support@feedloop.test>"

// DevTeamAddress is where a team's alerts go in development: a name of the
// reserved .test domain, delivered only to the dev mailbox.
func DevTeamAddress(team string) string { return team + "@teams.feedloop.test" }

// Dev is what PrepareDev made for people to play the teams.
type Dev struct {
	// Teams are the teams given, sorted.
	Teams []string
	// Tokens maps each team to its development token.
	Tokens map[string]string
	// TokensFile is the file of the tokens in clear (DevTokensFile).
	TokensFile string
}

// PrepareDev makes cfg.DataDir ready for people to work as teams and wires
// cfg to it:
//   - a development token per team, kept in clear in DevTokensFile (0600)
//     and made only for teams that have none yet, so a restart on the same
//     data directory keeps every token people have pasted; the router
//     admits their hashes (TeamTokensFile);
//   - the dev mailbox (cfg.MailboxAddr, a free loopback port when empty):
//     the notifier sends every customer email there, and every team's
//     alerts too, through a teams file giving each team an email channel
//     (DevTeamAddress), so the mailbox holds every message sent;
//   - the console's one-click sign-in as each team (cfg.Console.Dev).
func PrepareDev(cfg *Config, teams []string) (*Dev, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("stack: data directory: %w", err)
	}
	d := &Dev{Teams: slices.Sorted(slices.Values(teams)), TokensFile: filepath.Join(cfg.DataDir, DevTokensFile)}
	var err error
	if d.Tokens, err = devTokens(d.TokensFile, d.Teams); err != nil {
		return nil, err
	}
	entries := make([]teamtoken.Entry, 0, len(d.Teams))
	for _, team := range d.Teams {
		entries = append(entries, teamtoken.Entry{Team: team, SHA256: teamtoken.Hash(d.Tokens[team])})
	}
	hashes := filepath.Join(cfg.DataDir, TeamTokensFile)
	if err := teamtoken.WriteFile(hashes, entries); err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	cfg.Router.TeamTokensFile = hashes

	teamsFile := filepath.Join(cfg.DataDir, DevTeamsFile)
	if err := writeFile(teamsFile, devTeams(d.Teams)); err != nil {
		return nil, err
	}
	cfg.Notifier.TeamsFile = teamsFile
	if cfg.MailboxAddr == "" {
		cfg.MailboxAddr = "127.0.0.1:0"
	}
	if cfg.Notifier.SMTPFrom == "" {
		cfg.Notifier.SMTPFrom = DevMailFrom
	}
	if cfg.Console != nil && cfg.Console.Dev != nil {
		c, dev := *cfg.Console, *cfg.Console.Dev
		dev.Tokens = d.Tokens
		c.Dev = &dev
		cfg.Console = &c
	}
	return d, nil
}

// devTokensDoc is DevTokensFile.
type devTokensDoc struct {
	Tokens map[string]string `yaml:"tokens"`
}

const devTokensHeader = `# The development team tokens of 'feedloop dev' for this data directory:
# kept so they stay the same across restarts. Delete this file to make new ones.
`

// DevEndpointsFile, under the data directory, tells tools where a running
// `feedloop dev` is: its NATS URL and the tools user's seed.
const DevEndpointsFile = "dev-endpoints.yaml"

// DevEndpoints is DevEndpointsFile.
type DevEndpoints struct {
	NATSURL   string `yaml:"nats_url"`
	ToolsSeed string `yaml:"tools_seed,omitempty"`
}

// WriteDevEndpoints writes the endpoints of a started dev stack under dir.
func WriteDevEndpoints(dir string, e DevEndpoints) error {
	b, err := yaml.Marshal(e)
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, DevEndpointsFile), append([]byte("# Where 'feedloop dev' on this data directory runs, for tools; rewritten at every start.\n"), b...))
}

// ReadDevEndpoints reads the DevEndpointsFile under dir.
func ReadDevEndpoints(dir string) (DevEndpoints, error) {
	var e DevEndpoints
	raw, err := os.ReadFile(filepath.Join(dir, DevEndpointsFile))
	if err != nil {
		return e, err
	}
	if err := yaml.Unmarshal(raw, &e); err != nil {
		return e, fmt.Errorf("%s: %w", filepath.Join(dir, DevEndpointsFile), err)
	}
	return e, nil
}

// ReadDevTokens reads a DevTokensFile: team → token. Tools use it to act
// as a team of a running `feedloop dev` without pasting a token.
func ReadDevTokens(path string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc devTokensDoc
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return doc.Tokens, nil
}

// devTokens reads the tokens of path and adds one for each team without,
// rewriting the file only when it added some.
func devTokens(path string, teams []string) (map[string]string, error) {
	doc := devTokensDoc{Tokens: map[string]string{}}
	raw, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("stack: dev tokens: %w", err)
	default:
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(&doc); err != nil {
			return nil, fmt.Errorf("stack: dev tokens: %s: %w (delete the file to make new tokens)", path, err)
		}
		if doc.Tokens == nil {
			doc.Tokens = map[string]string{}
		}
	}
	added := false
	for _, team := range teams {
		if doc.Tokens[team] == "" {
			doc.Tokens[team] = teamtoken.New()
			added = true
		}
	}
	if added {
		var b strings.Builder
		b.WriteString(devTokensHeader + "tokens:\n")
		for _, team := range slices.Sorted(maps.Keys(doc.Tokens)) {
			fmt.Fprintf(&b, "  %s: %q\n", team, doc.Tokens[team])
		}
		if err := writeFile(path, []byte(b.String())); err != nil {
			return nil, err
		}
	}
	out := make(map[string]string, len(teams))
	for _, team := range teams {
		out[team] = doc.Tokens[team]
	}
	return out, nil
}

// devTeams is the notifier's teams file: an email channel per team, and
// one for any team the routes reach otherwise (escalations).
func devTeams(teams []string) []byte {
	var b strings.Builder
	b.WriteString("# Written by 'feedloop dev' at every start: every team's alerts go to the dev mailbox.\nteams:\n")
	for _, team := range teams {
		fmt.Fprintf(&b, "  %s:\n    - {type: email, to: %s}\n", team, DevTeamAddress(team))
	}
	fmt.Fprintf(&b, "  default:\n    - {type: email, to: %s}\n", DevTeamAddress("other-teams"))
	return []byte(b.String())
}

// writeFile replaces path with data, readable by its owner only, in one
// rename so a process watching it never reads half a file.
func writeFile(path string, data []byte) error {
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return fmt.Errorf("stack: %w", err)
	}
	return nil
}
