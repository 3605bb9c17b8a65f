package cli

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/feedloop/feedloop/pkg/testkit"
)

// readmeMarker precedes the README blocks this test runs as they are written.
const readmeMarker = "<!-- readme-test"

// The README's marked blocks run as written against a feedloop dev, in the
// README's order, from the repository's root: the servers are the ones
// this dev listens on (free ports here, the defaults the README names on a
// newcomer's machine), and ID stands for the first item's id prefix. The
// comment lines under a command are its output as README shows it (… for
// what varies): each piece must be in what the command printed.
func TestReadmeCommandsRunAsWritten(t *testing.T) {
	readme, err := os.ReadFile("../../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeBlocks(string(readme))
	if len(blocks) == 0 {
		t.Fatal("README has no block marked " + readmeMarker)
	}
	data := t.TempDir()
	out := startDev(t, data)
	testkit.Eventually(t, "the banner", func() bool { return strings.Contains(out.String(), "export FEEDLOOP_SERVER=") })
	banner := out.String()
	t.Setenv(envServer, regexp.MustCompile(`(?m)^  export FEEDLOOP_SERVER=(\S+)$`).FindStringSubmatch(banner)[1])
	t.Setenv(envIntakeServer, regexp.MustCompile(`(?m)^  intake gRPC   (\S+)$`).FindStringSubmatch(banner)[1])
	t.Setenv(envDevData, data)
	t.Setenv(envToken, "")

	// README names the default addresses; this dev listens elsewhere.
	addrs := map[string]string{}
	for _, a := range []string{"127.0.0.1:7001", "localhost:7001"} {
		addrs[a] = os.Getenv(envIntakeServer)
	}
	for _, a := range []string{"127.0.0.1:7003", "localhost:7003"} {
		addrs[a] = os.Getenv(envServer)
	}
	var id string
	for _, block := range blocks {
		for _, cmd := range block {
			args := shellWords(cmd.line)
			if len(args) == 0 || args[0] != "feedloop" {
				t.Fatalf("README line %q: not a feedloop command", cmd.line)
			}
			if id == "" && len(args) > 1 && args[1] == "inbox" {
				id = theOneItem(t, "--as", "billing")[:8]
			}
			for i, a := range args {
				switch {
				case a == "ID":
					args[i] = id
				case addrs[a] != "":
					args[i] = addrs[a]
				case strings.HasPrefix(a, "deploy/"):
					args[i] = repoRoot + a
				}
			}
			code, stdout, stderr := run(t, args[1:]...)
			if code != 0 {
				t.Fatalf("README: %s\nexit %d\n%s%s", cmd.line, code, stdout, stderr)
			}
			if strings.Contains(cmd.line, "--query") && id != "" && !strings.Contains(stdout, id) {
				t.Fatalf("README: %s\nlists no item %s:\n%s", cmd.line, id, stdout)
			}
			for _, want := range cmd.output {
				for _, piece := range strings.Split(want, "…") {
					if piece = strings.TrimSpace(piece); piece != "" && !strings.Contains(stdout, piece) {
						t.Fatalf("README: %s\nshows %q as its output; it printed:\n%s", cmd.line, piece, stdout)
					}
				}
			}
		}
	}
	code, stdout, _ := run(t, "inbox", "show", id, "--as", "billing")
	for _, want := range []string{"billing: planned → resolved", "Refund ticket FIN-42", "Refunded; sorry for the trouble."} {
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("after the README's commands, show lacks %q:\n%s", want, stdout)
		}
	}
}

// repoRoot is the repository's root from this package's directory.
const repoRoot = "../../../../"

// readmeCommand is one command line of a README block and the output
// README shows under it (its comment lines, without "# ").
type readmeCommand struct {
	line   string
	output []string
}

// readmeBlocks returns the commands of each ```sh block that follows a
// readme-test marker, trailing comments dropped.
func readmeBlocks(readme string) [][]readmeCommand {
	var blocks [][]readmeCommand
	for _, part := range strings.Split(readme, readmeMarker)[1:] {
		_, body, ok := strings.Cut(part, "```sh\n")
		if !ok {
			continue
		}
		body, _, _ = strings.Cut(body, "```")
		var cmds []readmeCommand
		for _, l := range strings.Split(body, "\n") {
			l = strings.TrimSpace(l)
			if out, ok := strings.CutPrefix(l, "#"); ok {
				if len(cmds) > 0 {
					cmds[len(cmds)-1].output = append(cmds[len(cmds)-1].output, out)
				}
				continue
			}
			if l = strings.TrimSpace(stripComment(l)); l != "" {
				cmds = append(cmds, readmeCommand{line: l})
			}
		}
		blocks = append(blocks, cmds)
	}
	return blocks
}

// stripComment drops a trailing shell comment outside quotes.
func stripComment(l string) string {
	var quote rune
	for i, r := range l {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'':
			quote = r
		case r == '#' && (i == 0 || unicode.IsSpace(rune(l[i-1]))):
			return l[:i]
		}
	}
	return l
}

// shellWords splits a command line as a POSIX shell would for the README's
// plain commands: spaces separate, single or double quotes group.
func shellWords(l string) []string {
	var words []string
	var w strings.Builder
	var quote rune
	in := false
	for _, r := range l {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '"' || r == '\'':
			quote, in = r, true
		case unicode.IsSpace(r):
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
		default:
			w.WriteRune(r)
			in = true
		}
	}
	if in {
		words = append(words, w.String())
	}
	return words
}
