package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/feedloop/feedloop/cmd/feedloop/internal/stack"
	"github.com/feedloop/feedloop/pkg/testkit"
)

// readmeMarker precedes the README blocks this test runs as they are written.
const readmeMarker = "<!-- readme-test"

// The README's marked blocks run as written against a feedloop dev, in the
// README's order, from the repository's root: the servers are the ones
// this dev listens on (free ports here, the defaults the README names on a
// newcomer's machine), and ID stands for the first item's id prefix. A
// block marked "items=N" works on N items of its own, routed to billing
// before it runs: ID, ID2 … IDN. `export K=…` gives K what a reader would
// put there (billing's token). `inbox watch` runs until it has printed an
// item routed after it started, then is interrupted as with Ctrl-C. The comment
// lines under a command are its output as README shows it (… for what
// varies): each piece must be in what the command printed.
func TestReadmeCommandsRunAsWritten(t *testing.T) {
	readme, err := os.ReadFile("../../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeBlocks(string(readme))
	if len(blocks) == 0 {
		t.Fatal("README has no block marked " + readmeMarker)
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	out := startDev(t, data)
	testkit.Eventually(t, "the banner", func() bool { return strings.Contains(out.String(), "export FEEDLOOP_SERVER=") })
	banner := out.String()
	t.Setenv(envServer, regexp.MustCompile(`(?m)^  export FEEDLOOP_SERVER=(\S+)$`).FindStringSubmatch(banner)[1])
	t.Setenv(envIntakeServer, regexp.MustCompile(`(?m)^  intake gRPC   (\S+)$`).FindStringSubmatch(banner)[1])
	t.Setenv(envDevData, data)
	t.Setenv(envToken, "")
	// What a command writes (./nats-creds) lands in a directory of the
	// test's, as in a reader's working copy.
	t.Chdir(t.TempDir())

	// README names the default addresses; this dev listens elsewhere.
	addrs := map[string]string{}
	for _, a := range []string{"127.0.0.1:7001", "localhost:7001"} {
		addrs[a] = os.Getenv(envIntakeServer)
	}
	for _, a := range []string{"127.0.0.1:7003", "localhost:7003"} {
		addrs[a] = os.Getenv(envServer)
	}
	httpAddr := regexp.MustCompile(`(?m)^  intake HTTP   http://(\S+)/v1/feedback$`).FindStringSubmatch(banner)[1]
	for _, a := range []string{"127.0.0.1:7002", "localhost:7002"} {
		addrs[a] = httpAddr
	}
	tokens, err := stack.ReadDevTokens(filepath.Join(data, stack.DevTokensFile))
	if err != nil {
		t.Fatal(err)
	}
	placeholders := map[string]string{envToken: tokens["billing"]}

	var id string
	ids := map[string]string{}
	for bi, block := range blocks {
		clear(ids)
		for i := range block.items {
			name := "ID"
			if i > 0 {
				name = fmt.Sprintf("ID%d", i+1)
			}
			ids[name] = readmeItem(t, fmt.Sprintf("readme-block-%d-%d", bi, i))[:8]
		}
		for _, cmd := range block.commands {
			if rest, ok := strings.CutPrefix(cmd.line, "export "); ok {
				for _, kv := range shellWords(rest) {
					k, v, _ := strings.Cut(kv, "=")
					switch {
					case v == "…" && placeholders[k] != "":
						v = placeholders[k]
					case v == "…":
						t.Fatalf("README: %s\nthe test has nothing to put in %s", cmd.line, k)
					case addrs[v] != "":
						v = addrs[v]
					}
					t.Setenv(k, v)
				}
				continue
			}
			args := shellWords(cmd.line)
			if len(args) > 0 && args[0] == "curl" {
				code, stdout := curl(t, args, addrs)
				if code >= 500 {
					t.Fatalf("README: %s\nHTTP %d\n%s", cmd.line, code, stdout)
				}
				checkOutput(t, cmd, stdout)
				continue
			}
			if len(args) == 0 || args[0] != "feedloop" {
				t.Fatalf("README line %q: not a feedloop or curl command", cmd.line)
			}
			if id == "" && len(args) > 1 && args[1] == "inbox" {
				id = theOneItem(t, "--as", "billing")[:8]
			}
			for i, a := range args {
				switch {
				case ids[a] != "":
					args[i] = ids[a]
				case a == "ID":
					args[i] = id
				case addrs[a] != "":
					args[i] = addrs[a]
				case strings.HasPrefix(a, "deploy/"):
					args[i] = filepath.Join(root, a)
				}
			}
			var code int
			var stdout, stderr string
			if len(args) > 2 && args[1] == "inbox" && args[2] == "watch" {
				code, stdout, stderr = runWatch(t, fmt.Sprintf("readme-block-%d-watched", bi), args[1:]...)
			} else {
				code, stdout, stderr = run(t, args[1:]...)
			}
			if code != 0 {
				t.Fatalf("README: %s\nexit %d\n%s%s", cmd.line, code, stdout, stderr)
			}
			if want := cmp.Or(ids["ID"], id); strings.Contains(cmd.line, "--query") && want != "" && !strings.Contains(stdout, want) {
				t.Fatalf("README: %s\nlists no item %s:\n%s", cmd.line, want, stdout)
			}
			checkOutput(t, cmd, stdout)
		}
	}
	code, stdout, _ := run(t, "inbox", "show", id, "--as", "billing")
	for _, want := range []string{"billing: planned → resolved", "Refund ticket FIN-42", "Refunded; sorry for the trouble."} {
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("after the README's commands, show lacks %q:\n%s", want, stdout)
		}
	}
}

// checkOutput fails unless every piece of the output README shows under
// cmd (split at …) is in what it printed, blanks aside (protojson varies
// its spacing on purpose).
func checkOutput(t *testing.T, cmd readmeCommand, stdout string) {
	t.Helper()
	squash := strings.NewReplacer(" ", "", "\t", "", "\n", "")
	for _, want := range cmd.output {
		for _, piece := range strings.Split(want, "…") {
			if piece = strings.TrimSpace(piece); piece != "" && !strings.Contains(squash.Replace(stdout), squash.Replace(piece)) {
				t.Fatalf("README: %s\nshows %q as its output; it printed:\n%s", cmd.line, piece, stdout)
			}
		}
	}
}

// curl does what README's curl lines ask (-X, -H, -d and the URL; -sS
// prints the body alone), against the dev's addresses.
func curl(t *testing.T, args []string, addrs map[string]string) (int, string) {
	t.Helper()
	method, url, body := http.MethodGet, "", ""
	header := http.Header{}
	for i := 1; i < len(args); i++ {
		switch a := args[i]; a {
		case "-sS", "-s", "-S":
		case "-X", "-H", "-d":
			if i+1 == len(args) {
				t.Fatalf("README curl: %s without a value", a)
			}
			i++
			switch a {
			case "-X":
				method = args[i]
			case "-H":
				k, v, _ := strings.Cut(args[i], ":")
				header.Add(k, strings.TrimSpace(v))
			case "-d":
				body = args[i]
				if method == http.MethodGet {
					method = http.MethodPost
				}
			}
		default:
			if strings.HasPrefix(a, "-") || url != "" {
				t.Fatalf("README curl: %q is not a curl option this test knows", a)
			}
			url = a
		}
	}
	for from, to := range addrs {
		url = strings.Replace(url, "//"+from+"/", "//"+to+"/", 1)
	}
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("README curl %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// repoRoot is the repository's root from this package's directory.
const repoRoot = "../../../../"

// readmeCommand is one command line of a README block and the output
// README shows under it (its comment lines, without "# ").
type readmeCommand struct {
	line   string
	output []string
}

// readmeBlock is a marked block: its commands, and how many items of its
// own it works on (the marker's items=N).
type readmeBlock struct {
	commands []readmeCommand
	items    int
}

// readmeBlocks returns the commands of each ```sh block that follows a
// readme-test marker, trailing comments dropped.
func readmeBlocks(readme string) []readmeBlock {
	var blocks []readmeBlock
	for _, part := range strings.Split(readme, readmeMarker)[1:] {
		marker, _, _ := strings.Cut(part, "-->")
		var items int
		if m := regexp.MustCompile(`\bitems=(\d+)`).FindStringSubmatch(marker); m != nil {
			items, _ = strconv.Atoi(m[1])
		}
		_, body, ok := strings.Cut(part, "```sh\n")
		if !ok {
			continue
		}
		body, _, _ = strings.Cut(body, "```")
		var cmds []readmeCommand
		for _, l := range joinLines(strings.Split(body, "\n")) {
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
		blocks = append(blocks, readmeBlock{commands: cmds, items: items})
	}
	return blocks
}

// readmeItem submits a billing complaint that says "charged twice" and
// returns its id once billing can see it.
func readmeItem(t *testing.T, externalID string) string {
	t.Helper()
	id := submitBilling(t, externalID)
	testkit.Eventually(t, externalID+" routed to billing", func() bool {
		code, _, _ := run(t, "inbox", "show", id, "--as", "billing")
		return code == 0
	})
	return id
}

// submitBilling submits a billing complaint and returns its id.
func submitBilling(t *testing.T, externalID string) string {
	t.Helper()
	code, stdout, stderr := run(t, "submit", "--source", "helpdesk", "--external-id", externalID,
		"--email", "ada@example.com", "--consent", "--text", "I was charged twice for order "+externalID, "--json")
	var res struct {
		FeedbackID string `json:"feedbackId"`
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &res) != nil || res.FeedbackID == "" {
		t.Fatalf("submit %s: exit %d\n%s%s", externalID, code, stdout, stderr)
	}
	return res.FeedbackID
}

// runWatch runs inbox watch as a reader would: it starts, an item is
// routed to the team (externalID), watch prints it, Ctrl-C.
func runWatch(t *testing.T, externalID string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb testkit.SyncBuffer
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan int, 1)
	go func() { done <- Main(ctx, args, &out, &errb) }()
	testkit.Eventually(t, "watch started", func() bool { return strings.Contains(errb.String(), "Ctrl-C to stop") })
	id := submitBilling(t, externalID)
	testkit.Eventually(t, "watch prints "+id, func() bool { return strings.Contains(out.String(), id) })
	stop()
	return <-done, out.String(), errb.String()
}

// joinLines joins a command continued over lines as a shell reads it: after
// a trailing backslash, or inside a quote left open.
func joinLines(lines []string) []string {
	var out []string
	var cur strings.Builder
	for _, l := range lines {
		cur.WriteString(l)
		switch {
		case strings.HasSuffix(l, "\\"):
			s := strings.TrimSuffix(cur.String(), "\\")
			cur.Reset()
			cur.WriteString(s + " ")
		case openQuote(cur.String()):
			cur.WriteString("\n")
		default:
			out = append(out, cur.String())
			cur.Reset()
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// openQuote says whether l leaves a quote open (a comment's quotes aside).
func openQuote(l string) bool {
	_, open := scanShell(l)
	return open
}

// stripComment drops a trailing shell comment outside quotes.
func stripComment(l string) string {
	if at, _ := scanShell(l); at >= 0 {
		return l[:at]
	}
	return l
}

// scanShell reads l as a shell does for quotes and comments: where a
// comment outside quotes starts (-1: none), and whether a quote is left
// open at the end.
func scanShell(l string) (comment int, open bool) {
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
			return i, false
		}
	}
	return -1, quote != 0
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
