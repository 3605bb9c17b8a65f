package stack_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/feedloop/feedloop/cmd/feedloop/internal/devmail"
	"github.com/feedloop/feedloop/cmd/feedloop/internal/stack"
	"github.com/feedloop/feedloop/pkg/bus"
	"github.com/feedloop/feedloop/pkg/testkit"
)

// The loop a newcomer closes in the browser after `make run`, in one
// headless Chromium against the dev stack: billing signs in with its dev
// link; an item submitted through intake's HTTP API appears in the open
// inbox without a reload; billing acknowledges, plans with a date and
// resolves it on the item page; the dev mailbox shows the customer's
// messages, and the resolved one's status link opens the status page with
// the promised date and the resolution. Signed in as logistics, which the
// item was not routed to, it is neither listed nor shown.
func TestConsoleInTheBrowser(t *testing.T) {
	ctx := browser(t)
	cfg := stack.DevConfig(examplesDir, t.TempDir())
	cfg.Notifier.ConsoleOutput = io.Discard
	cfg.Log = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	if _, err := stack.PrepareDev(&cfg, exampleTeams(t)); err != nil {
		t.Fatal(err)
	}
	s, err := stack.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, s.Run)
	console := s.Console.URL()

	// Billing signs in with one click and keeps the inbox open.
	if code := navigate(t, ctx, s.Console.DevSignInURL("billing")); code != http.StatusOK {
		t.Fatalf("billing's sign-in link: HTTP %d", code)
	}
	if h := text(t, ctx, "h1"); !strings.Contains(h, "Inbox") || !strings.Contains(h, "billing") {
		t.Fatalf("billing's sign-in link led to %q", h)
	}
	// The page's event stream is open: what is routed from now on is pushed.
	do(t, ctx, "the inbox's live stream", chromedp.WaitReady(chromedp.CSS(`body[data-live="on"]`)))

	const (
		subject = "Charged twice"
		email   = "ada@example.com"
		plan    = "We are refunding the second charge to your card."
		fixed   = "The refund is on its way; the double charge came from a retry bug we fixed."
	)
	fid := submitHTTP(t, s, fmt.Sprintf(`{"source":"helpdesk","externalId":"browser-1","channel":"CHANNEL_EMAIL","subject":%q,
		"customer":{"name":"Ada","email":%q,"locale":"en","consent":{"contact":true,"survey":true}},
		"text":"I was charged twice for my order this month and the invoice shows both payments."}`, subject, email))
	row := fmt.Sprintf(`#inbox tr[data-id=%q]`, fid)
	do(t, ctx, "the item appears in the open inbox", chromedp.WaitVisible(chromedp.CSS(row)))
	// The inbox was empty: its count follows the pushed row, singular.
	if c := text(t, ctx, "#count"); c != "1 item" {
		t.Errorf("count after the live row: %q, want %q", c, "1 item")
	}
	screenshot(t, ctx, "dev-inbox-live.png")

	// Work it on the item page.
	due := time.Now().UTC().AddDate(0, 0, 10)
	follow(t, ctx, "open the item", chromedp.CSS(row+" a.subject"))
	follow(t, ctx, "acknowledge", `#form-acknowledge button[type=submit]`)
	if n := text(t, ctx, "p.notice"); !strings.HasPrefix(n, "Acknowledged.") {
		t.Fatalf("after acknowledging: %q", n)
	}
	do(t, ctx, "fill the plan",
		chromedp.SetValue(chromedp.CSS("#plan-due"), due.Format(time.DateOnly)),
		chromedp.SendKeys(chromedp.CSS("#plan-message"), plan))
	follow(t, ctx, "plan", `#form-plan button.primary`)
	if n := text(t, ctx, "p.notice"); !strings.HasPrefix(n, "Planned.") {
		t.Fatalf("after planning: %q", n)
	}
	do(t, ctx, "fill the resolution", chromedp.SendKeys(chromedp.CSS("#resolve-message"), fixed))
	follow(t, ctx, "resolve", `#form-resolve button.primary`)
	if n := text(t, ctx, "p.notice"); !strings.HasPrefix(n, "Resolved.") {
		t.Fatalf("after resolving: %q", n)
	}

	// The customer's three messages reach the mailbox (delivery is
	// asynchronous: wait for it), and its page lists them.
	steps := []string{"We got your feedback: " + subject, "We have a plan: " + subject, "Resolved: " + subject}
	var resolved devmail.Message
	testkit.Eventually(t, "the customer's messages in the dev mailbox", func() bool {
		got := 0
		for _, m := range s.Mailbox.Messages() {
			if slices.Contains(m.To, email) && slices.Contains(steps, m.Subject) {
				got++
				if m.Subject == steps[2] {
					resolved = m
				}
			}
		}
		return got == len(steps)
	})
	if code := navigate(t, ctx, console+"/dev/mailbox"); code != http.StatusOK {
		t.Fatalf("mailbox: HTTP %d", code)
	}
	listed := text(t, ctx, "table.mails")
	for _, subj := range steps {
		if !strings.Contains(listed, subj) {
			t.Errorf("the mailbox page lacks %q:\n%s", subj, listed)
		}
	}
	screenshot(t, ctx, "console-mailbox.png")

	// The resolved message, as the customer reads it, links to the status
	// page: the promised date and the resolution are there.
	follow(t, ctx, "open the resolved message", chromedp.CSS(fmt.Sprintf(`table.mails a[href="/dev/mailbox/%s"]`, resolved.ID)))
	link := get(t, ctx, "the status link", chromedp.AttributeValue(chromedp.CSS(`pre.mailtext a[href*="/status/"]`), "href"))
	if !link.Exists || !strings.HasPrefix(link.Value, s.StatusURL+"/") {
		t.Fatalf("the resolved message has no status link under %s: %+v", s.StatusURL, link)
	}
	screenshot(t, ctx, "dev-mail.png")
	if code := navigate(t, ctx, link.Value); code != http.StatusOK {
		t.Fatalf("status page: HTTP %d", code)
	}
	page := text(t, ctx, "body")
	for _, want := range []string{"planned for " + due.Format("2 January 2006"), plan, fixed} {
		if !strings.Contains(page, want) {
			t.Errorf("the status page lacks %q:\n%s", want, page)
		}
	}
	screenshot(t, ctx, "dev-status.png")

	// Logistics never had the item: the router published no routed event
	// for it there (it publishes every team's from one decision, before
	// billing could see it), its inbox does not list it and its page is
	// refused.
	for _, m := range testkit.Messages(t, s.Bus, bus.StreamFeedback, "feedback.routed.logistics") {
		if strings.Contains(string(m.Data), fid) {
			t.Fatal("the billing item was routed to logistics too: pick another team for this check")
		}
	}
	if code := navigate(t, ctx, s.Console.DevSignInURL("logistics")); code != http.StatusOK {
		t.Fatalf("logistics' sign-in link: HTTP %d", code)
	}
	if h := text(t, ctx, "h1"); !strings.Contains(h, "logistics") {
		t.Fatalf("logistics' sign-in link led to %q", h)
	}
	rows := get(t, ctx, "count logistics' rows for the item",
		chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll('tr[data-id=%q]').length`, fid)))
	if inbox := text(t, ctx, "main"); rows != 0 || strings.Contains(inbox, subject) {
		t.Errorf("logistics' inbox lists the billing item:\n%s", inbox)
	}
	if code := navigate(t, ctx, console+"/items/"+fid); code < 400 {
		t.Errorf("logistics opened the billing item: HTTP %d\n%.1000s", code, text(t, ctx, "body"))
	}
}

// browser starts headless Chromium for the test: one browser, a fresh
// profile, closed (and waited for) before the profile is removed.
// Without chromium the test skips, except in CI (CI=true), where that is
// a broken machine: .ci/run installs it.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not on PATH: the console's browser test needs Debian's chromium package (.ci/run installs it)")
		}
		t.Skip("chromium is not on PATH: install Debian's chromium package (apt-get install chromium) to run the console's browser test")
	}
	profile := t.TempDir()
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancel := chromedp.NewContext(alloc)
	// Registered after TempDir, so it runs first: the browser is gone
	// before its profile directory is removed.
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// do runs steps in the browser, bounded, failing the test with what and
// the page it was on.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	get(t, ctx, what, chromedp.Steps(steps...))
}

// get runs a in the browser, bounded, and returns its value.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	actx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(actx, a)
	if err != nil {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		loc, _ := chromedp.Run(rctx, chromedp.Location())
		body, _ := chromedp.Run(rctx, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("%s: %v\nat %s:\n%.2000s", what, err, loc, body)
	}
	return v
}

// navigate opens url and returns the HTTP status of the page.
func navigate(t *testing.T, ctx context.Context, url string) int {
	t.Helper()
	return int(get(t, ctx, "open "+url, chromedp.NavigateResponse(url)).Status)
}

// follow clicks sel (a link or a submit button), waits for the page it
// leads to and returns its HTTP status.
func follow(t *testing.T, ctx context.Context, what string, sel chromedp.CSS) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	res, err := chromedp.RunResponse(ctx, chromedp.Click(sel))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return int(res.Status)
}

// text is the rendered text of the first element matching sel.
func text(t *testing.T, ctx context.Context, sel chromedp.CSS) string {
	t.Helper()
	return get(t, ctx, "read "+string(sel), chromedp.Text(sel))
}

// screenshot saves the page to docs/name with CONSOLE_SCREENSHOTS=1.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv("CONSOLE_SCREENSHOTS") != "1" {
		return
	}
	png := get(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100)) // 100: PNG
	if err := os.WriteFile(filepath.Join("..", "..", "..", "..", "docs", name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// submitHTTP posts protojson feedback to intake's HTTP API, as a company
// system does, and returns the feedback id.
func submitHTTP(t *testing.T, s *stack.Stack, body string) string {
	t.Helper()
	res, err := http.Post("http://"+s.Intake.HTTPAddr()+"/v1/feedback", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		FeedbackID string `json:"feedbackId"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusAccepted || out.FeedbackID == "" {
		t.Fatalf("submit: HTTP %d, %v, %+v", res.StatusCode, err, out)
	}
	return out.FeedbackID
}
