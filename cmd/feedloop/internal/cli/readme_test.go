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

// The README's first-ten-minutes commands run as written against a
// feedloop dev: the servers come from the environment (free ports here, the
// defaults on a newcomer's machine), and ID stands for the item's id prefix.
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

	var id string
	for _, block := range blocks {
		for _, line := range block {
			args := shellWords(line)
			if len(args) == 0 || args[0] != "feedloop" {
				t.Fatalf("README line %q: not a feedloop command", line)
			}
			if id == "" && len(args) > 1 && args[1] == "inbox" {
				id = theOneItem(t, "--as", "billing")[:8]
			}
			for i, a := range args {
				if a == "ID" {
					args[i] = id
				}
			}
			code, stdout, stderr := run(t, args[1:]...)
			if code != 0 {
				t.Fatalf("README: %s\nexit %d\n%s%s", line, code, stdout, stderr)
			}
			if strings.Contains(line, "--query") && id != "" && !strings.Contains(stdout, id) {
				t.Fatalf("README: %s\nlists no item %s:\n%s", line, id, stdout)
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

// readmeBlocks returns the command lines of each ```sh block that follows
// a readme-test marker, comments dropped.
func readmeBlocks(readme string) [][]string {
	var blocks [][]string
	for _, part := range strings.Split(readme, readmeMarker)[1:] {
		_, body, ok := strings.Cut(part, "```sh\n")
		if !ok {
			continue
		}
		body, _, _ = strings.Cut(body, "```")
		var lines []string
		for _, l := range strings.Split(body, "\n") {
			if l = strings.TrimSpace(stripComment(l)); l != "" {
				lines = append(lines, l)
			}
		}
		blocks = append(blocks, lines)
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
