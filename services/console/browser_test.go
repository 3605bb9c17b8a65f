package console_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/feedloop/feedloop/pkg/testkit"
)

// One headless Chromium per test binary, started on first use.
var (
	browserOnce   sync.Once
	browserCtx    context.Context
	browserCancel = func() {}
	browserErr    error
)

func TestMain(m *testing.M) {
	code := m.Run()
	browserCancel()
	os.Exit(code)
}

// chromium returns a context of a fresh tab in the shared browser, or skips
// the test when Chromium is not installed (failing it in CI).
func chromium(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not on PATH; CI needs it for the browser tests (.ci/run installs Debian's chromium)")
		}
		t.Skip("chromium is not on PATH: browser tests skipped (install Debian's chromium to run them)")
	}
	browserOnce.Do(func() {
		opts := []chromedp.ExecAllocatorOption{
			chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
			chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true), chromedp.UserDataDir(filepath.Join(os.TempDir(), fmt.Sprintf("console-chromium-%d", os.Getpid()))),
			chromedp.WindowSize(1280, 900),
		}
		alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancelCtx := chromedp.NewContext(alloc)
		browserErr = chromedp.Do(ctx) // starts the browser
		browserCtx = ctx
		browserCancel = func() {
			cancelCtx()
			cancelAlloc()
			_ = os.RemoveAll(filepath.Join(os.TempDir(), fmt.Sprintf("console-chromium-%d", os.Getpid())))
		}
	})
	if browserErr != nil {
		t.Fatalf("start chromium: %v", browserErr)
	}
	// A new browser context per test: its own cookies, like another person.
	tab, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	tab, cancelT := context.WithTimeout(tab, 45*time.Second)
	t.Cleanup(cancelT)
	return tab
}

func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// text is the visible text of the first element matching the CSS selector.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return v
}

func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv("CONSOLE_SCREENSHOTS") != "1" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join("..", "..", "docs", "console-"+name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserJourney works an item to resolution in a real browser: live
// arrival, acknowledge, preview and plan with a date, resolve; markup stays
// inert; a form without its CSRF token is refused; another team neither
// sees the item nor opens it.
func TestBrowserJourney(t *testing.T) {
	tab := chromium(t)
	e := start(t)
	var dialogs []string
	var dmu sync.Mutex
	if err := chromedp.Listen(tab, func(ev any) {
		if d, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			dmu.Lock()
			dialogs = append(dialogs, d.Message)
			dmu.Unlock()
			go func() { _, _ = chromedp.Call(tab, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{}) }()
		}
	}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	e.submit(fb{subject: "Invoice sent to the wrong address", text: "My invoice for March went to my old office.", topic: "billing", email: "lin@example.com", name: "Lin Chen", occurred: now.Add(-3 * time.Hour)})
	e.submit(fb{subject: "Card declined twice", text: "The card was declined but I was charged.", topic: "billing", email: "sam@example.com", name: "Sam Okafor", occurred: now.Add(-5 * time.Hour)})

	run(t, tab, "dev sign-in as billing",
		chromedp.Navigate(e.console.DevSignInURL("billing")),
		chromedp.WaitVisible(css(`table#inbox`)),
		chromedp.WaitVisible(css(`body[data-live="on"]`)))
	if c, shown := text(t, tab, `#count`), text(t, tab, `#shown`); c != "2 items" || shown != "Showing 1–2 of 2" {
		t.Errorf("before the live item: count %q, pager %q; want 2 items, Showing 1–2 of 2", c, shown)
	}

	id := e.submit(fb{subject: "Charged twice for May", text: "I was charged twice for May, 24.00 each time.", topic: "billing", email: "ada@example.com", locale: "de"})
	row := fmt.Sprintf(`tr[data-id=%q]`, id)
	run(t, tab, "the new item arrives without a reload", chromedp.WaitVisible(css(row)))
	rowText, live := text(t, tab, row+` a.subject`), text(t, tab, `#live`)
	if rowText != "Charged twice for May" || live != "New item: Charged twice for May." {
		t.Errorf("row subject %q, live region %q: want the subject and its announcement", rowText, live)
	}
	// The counts follow the inserted row, as a reload would show them.
	if c, shown := text(t, tab, `#count`), text(t, tab, `#shown`); c != "3 items" || shown != "Showing 1–3 of 3" {
		t.Errorf("after the live item: count %q, pager %q; want 3 items, Showing 1–3 of 3", c, shown)
	}
	screenshot(t, tab, "inbox")

	run(t, tab, "open the item", chromedp.Click(css(row+` a.subject`)), chromedp.WaitVisible(css(`#feedback-text`)))
	run(t, tab, "acknowledge", chromedp.Click(css(`#form-acknowledge button`)), chromedp.WaitVisible(css(`#form-plan`)))
	// The customer reads German: the page says so where the clerk writes.
	if lang := text(t, tab, `#plan-lang`); lang != "This email goes out in German: write your message in German." {
		t.Errorf("plan form's language hint %q", lang)
	}
	due := now.UTC().AddDate(0, 0, 14).Format("2006-01-02")
	run(t, tab, "preview the plan",
		chromedp.SetValue(css(`#plan-due`), due),
		chromedp.SendKeys(css(`#plan-message`), "Wir erstatten die zweite Abbuchung noch diese Woche."),
		chromedp.Click(css(`#form-plan button[formaction]`)),
		chromedp.WaitVisible(css(`#preview .pv-subject`)))
	subject := text(t, tab, `#preview .pv-subject`)
	if !strings.HasPrefix(subject, "Wir haben einen Plan") {
		t.Errorf("preview subject %q, want the German plan message", subject)
	}
	screenshot(t, tab, "item")
	run(t, tab, "plan", chromedp.Click(css(`#form-plan button.primary`)), chromedp.WaitVisible(`//p[@class="notice" and starts-with(., "Planned.")]`))
	notice := text(t, tab, `p.notice`)
	if !strings.HasPrefix(notice, "Planned.") {
		t.Fatalf("after plan: %q", notice)
	}
	run(t, tab, "resolve",
		chromedp.SendKeys(css(`#resolve-message`), "Wir haben Ihnen 24,00 auf Ihre Karte zurückerstattet."),
		chromedp.Click(css(`#form-resolve button.primary`)),
		// The new page's notice, not the old one's.
		chromedp.WaitVisible(`//p[@class="notice" and starts-with(., "Resolved.")]`))
	notice = text(t, tab, `p.notice`)
	if !strings.HasPrefix(notice, "Resolved.") {
		t.Fatalf("after resolve: %q", notice)
	}
	// The timeline holds what the customer read: the plan email opens there
	// once the notifier has sent it.
	planMail := `//details[@class="sent"]/summary[starts-with(., "What the customer read: “Wir haben einen Plan")]`
	testkit.Eventually(t, "the plan email in the item's timeline", func() bool {
		run(t, tab, "reload the item", chromedp.Navigate(e.url+"/items/"+id), chromedp.WaitVisible(css(`#feedback-text`)))
		n, err := chromedp.Run(tab, chromedp.Evaluate[int](fmt.Sprintf(`document.evaluate(%q, document, null, XPathResult.NUMBER_TYPE, null).numberValue`, "count("+planMail+")")))
		return err == nil && n == 1
	})
	run(t, tab, "open the plan email", chromedp.Click(planMail), chromedp.WaitVisible(planMail+`/following-sibling::pre`))
	if body, err := chromedp.Run(tab, chromedp.Text(planMail+`/following-sibling::pre`)); err != nil || !strings.Contains(body, "Wir erstatten die zweite Abbuchung noch diese Woche.") || !strings.Contains(body, "STATUS-TOKEN") {
		t.Errorf("the plan email in the timeline (%v):\n%s", err, body)
	}

	// A form posted without its CSRF token (as another site's script would
	// build it) is refused.
	if _, err := chromedp.Run(tab, chromedp.Evaluate[any](fmt.Sprintf(`(() => { const f = document.createElement("form"); f.method = "post"; f.action = "/items/%s/comment";
			const i = document.createElement("input"); i.name = "internal_note"; i.value = "forged"; f.appendChild(i); document.body.appendChild(f); f.submit(); })()`, id))); err != nil {
		t.Fatalf("post without CSRF token: %v", err)
	}
	run(t, tab, "the forged post is refused", chromedp.WaitVisible(`//h1[text()="Form refused"]`))

	run(t, tab, "KPIs", chromedp.Navigate(e.url+"/kpis"), chromedp.WaitVisible(css(`#kpi-cards`)))
	screenshot(t, tab, "kpis")

	// Markup in a customer's words stays text: in the live row, its
	// announcement and the item page (and no dialog opens, checked last).
	// After the screenshots, which show what a team sees on a normal day.
	run(t, tab, "back to the inbox", chromedp.Navigate(e.url+"/"), chromedp.WaitVisible(css(`body[data-live="on"]`)))
	evil := `<img src=x onerror=alert(1)><script>alert(2)</script>`
	evilID := e.submit(fb{subject: "Charged again " + evil, text: "Charged again in June. " + evil, topic: "billing", email: "ada@example.com"})
	evilRow := fmt.Sprintf(`tr[data-id=%q]`, evilID)
	run(t, tab, "the item with markup arrives", chromedp.WaitVisible(css(evilRow)))
	rowText, live = text(t, tab, evilRow+` a.subject`), text(t, tab, `#live`)
	if !strings.Contains(rowText, "<script>alert(2)</script>") || !strings.Contains(live, "<img src=x onerror=alert(1)>") {
		t.Errorf("row subject %q, live region %q: want the markup as text", rowText, live)
	}
	run(t, tab, "open the item with markup", chromedp.Click(css(evilRow+` a.subject`)), chromedp.WaitVisible(css(`#feedback-text`)))
	if fbText := text(t, tab, `#feedback-text`); !strings.Contains(fbText, "<img src=x onerror=alert(1)>") {
		t.Errorf("feedback text %q: want the markup shown as text", fbText)
	}

	// Another team: not listed, URL refused.
	run(t, tab, "as logistics",
		chromedp.Navigate(e.console.DevSignInURL("logistics")),
		chromedp.WaitVisible(css(`main h1`)),
		chromedp.Navigate(e.url+"/?state=all"),
		chromedp.WaitVisible(css(`main h1`)))
	body, err := chromedp.Run(tab, chromedp.OuterHTML(css(`main`)))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(body, id) {
		t.Error("logistics' inbox lists billing's item")
	}
	run(t, tab, "billing's item as logistics",
		chromedp.Navigate(e.url+"/items/"+id),
		chromedp.WaitVisible(`//h1[text()="Item not available"]`))

	dmu.Lock()
	defer dmu.Unlock()
	if len(dialogs) > 0 {
		t.Errorf("script from feedback text ran: dialogs %q", dialogs)
	}
}
