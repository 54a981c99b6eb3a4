package app

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

// Browser tests for the defects of issue 13 this branch fixes (2, 3 and the
// small ones of 10) and for the accessibility items axe cannot see.

func (b *browser) eval(t *testing.T, js string) string {
	t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return v
}

func (b *browser) waitJS(t *testing.T, what, js string) {
	t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(15*time.Second), chromedp.WithPollingMutation())); err != nil {
		t.Fatalf("%s: never true (%s): %v", what, js, err)
	}
}

// nearAndVisible answers "" when the result in slot is on screen and within
// 160 px of the control, or else says where it is.
const nearAndVisible = `((control, slot) => {
	const c = document.querySelector(control).getBoundingClientRect();
	const r = document.querySelector(slot + " .result")?.getBoundingClientRect();
	if (!r) return "no result in " + slot;
	if (r.top < 0 || r.bottom > innerHeight || r.left < 0 || r.right > innerWidth) return "off screen: top " + r.top + ", viewport " + innerHeight;
	const gap = Math.max(r.top - c.bottom, c.top - r.bottom, 0);
	return gap > 160 ? "the result is " + gap + " px from its control" : "";
})(%q, %q)`

// Defect 2: each action's result shows beside the control that caused it,
// on screen, at desktop and phone widths; it stays through live updates,
// goes with its dismiss button (focus back on a control) and fades by
// itself, also with reduced motion.
func TestBrowserActionResultsBesideTheirControls(t *testing.T) {
	b := newBrowser(t)
	f, engine := liveFixture(t, nil)
	f.seed(t)
	u := f.createUser(t, "ops@hossagent.test", db.RoleAdmin)
	b.signIn(t, f.srv.URL, u.Email)
	for _, width := range []int64{1400, 390} {
		b.do(t, chromedp.EmulateViewport(width, 900), chromedp.Navigate(f.srv.URL+"/admin"), chromedp.WaitVisible(chromedp.CSS("#agent-billing")))
		for _, c := range []struct{ control, slot, want string }{
			{`#agent-billing button[data-action="run"]`, "#agent-billing-result", "billing ran"},
			{`#admin-email-health button[hx-post="/admin/outreach/caps"]`, "#caps-result", "cap"},
			{`#admin-testmail button`, "#test-mail-result", ""},
		} {
			b.click(t, c.control)
			b.waitJS(t, c.slot+" result", fmt.Sprintf(`!!document.querySelector(%q)`, c.slot+" .result"))
			if c.want != "" {
				b.waitText(t, c.slot, c.want)
			}
			if where := b.eval(t, fmt.Sprintf(nearAndVisible, c.control, c.slot)); where != "" {
				t.Errorf("at %d px, %s: %s", width, c.control, where)
			}
		}
	}
	// A live update re-renders the agent cards; the result stays.
	b.markPage(t)
	if _, err := engine.Ask(context.Background(), agents.Ops, db.TriggerManual, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	b.waitText(t, "#agent-ops", "checked=1")
	b.waitText(t, "#agent-billing-result", "billing ran")
	// Dismissed with its button, by keyboard: focus goes back to a control.
	b.do(t, chromedp.Focus(chromedp.CSS("#agent-billing-result .result-dismiss")), chromedp.KeyEvent("\r"))
	b.waitJS(t, "dismissed", `!document.querySelector("#agent-billing-result .result")`)
	if got := b.eval(t, `document.activeElement.tagName + " " + (document.activeElement.getAttribute("aria-label") || "")`); got != "BUTTON Run Billing" {
		t.Errorf("after dismiss, focus is on %q, want the Run Billing button", got)
	}
	// Fades by itself (shortened here); with reduced motion too.
	b.eval(t, `document.documentElement.dataset.resultFadeMs = "300", ""`)
	for _, motion := range []string{"no-preference", "reduce"} {
		if _, err := chromedp.Call(b.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-reduced-motion", Value: motion}}}); err != nil {
			t.Fatal(err)
		}
		b.do(t, chromedp.Focus(chromedp.CSS("#admin-q"))) // focus away: a focused result waits
		b.click(t, `#agent-ops button[data-action="run"]`)
		b.do(t, chromedp.Focus(chromedp.CSS("#admin-q")))
		b.waitText(t, "#agent-ops-result", "ops ran")
		b.waitJS(t, "faded ("+motion+")", `!document.querySelector("#agent-ops-result .result")`)
	}
	b.assertNotReloaded(t)
}

// bigFigures puts every money figure in the millions, in two currencies.
func bigFigures(t *testing.T, f *fixture) {
	t.Helper()
	for _, q := range []string{
		"UPDATE tasks SET reward_cents = reward_cents * 1000 + 99, profit_cents = reward_cents * 1000 + 99 - cost_cents",
		"UPDATE invoice_lines SET amount_cents = (SELECT reward_cents FROM tasks WHERE tasks.id = task_id)",
		"UPDATE invoices SET amount_cents = (SELECT SUM(amount_cents) FROM invoice_lines WHERE invoice_id = invoices.id)",
		`INSERT INTO tasks (customer_id, kind, status, currency, reward_cents, cost_cents, profit_cents, completed_at, created_at, updated_at)
			SELECT customer_id, kind, status, 'eur', reward_cents, cost_cents, profit_cents, completed_at, created_at, updated_at FROM tasks`,
		`INSERT INTO invoices (customer_id, number, currency, amount_cents, status, issued_at, due_at, paid_at, created_at, updated_at)
			SELECT customer_id, number || '-EUR', 'eur', amount_cents, status, issued_at, due_at, paid_at, created_at, updated_at FROM invoices`,
	} {
		if _, err := f.store.Bun().ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// Defect 3: with seven-figure amounts in two currencies, no money figure
// runs out of its card on the dashboard, the control room or the activity
// page at any width from 320 to 2560 px.
func TestBrowserMoneyFiguresFitEveryWidth(t *testing.T) {
	b := newBrowser(t)
	f := newFixture(t, nil)
	f.seed(t)
	f.seedWalkThrough(t)
	bigFigures(t, f)
	u := f.createUser(t, "ops@hossagent.test", db.RoleAdmin)
	b.signIn(t, f.srv.URL, u.Email)
	const overflowing = `[...document.querySelectorAll(".card")].flatMap(c => [c, ...c.querySelectorAll(".value, .value > span")])
		.filter(e => e.scrollWidth > e.clientWidth + 1 || e.getBoundingClientRect().right > e.closest(".card").getBoundingClientRect().right + 0.5)
		.map(e => e.closest(".card").innerText.replace(/\s+/g, " ").slice(0, 80))`
	for _, path := range []string{"/", "/admin", "/admin/activity?hours=168"} {
		b.do(t, chromedp.Navigate(f.srv.URL+path), chromedp.WaitVisible(chromedp.CSS(".card .value")))
		for _, width := range []int64{320, 390, 768, 1024, 1400, 1920, 2560} {
			b.do(t, chromedp.EmulateViewport(width, 900))
			bad, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](overflowing))
			if err != nil {
				t.Fatal(err)
			}
			if len(bad) > 0 {
				t.Errorf("%s at %d px: figures overflow their cards: %q", path, width, bad)
			}
		}
	}
}

// blockingFixture is liveFixture with an ops cycle that runs until release
// is closed.
func blockingFixture(t *testing.T) (*fixture, *agents.Engine, chan struct{}) {
	t.Helper()
	release := make(chan struct{})
	bus := agents.NewBus()
	var engine *agents.Engine
	f := newFixture(t, map[string]string{"RELEASE_MODE": "DEVELOPMENT"}, func(d *Deps) {
		standIn := agents.CycleFunc(func(context.Context) (agents.Counts, error) { return agents.Counts{"checked": 1}, nil })
		blocking := agents.CycleFunc(func(ctx context.Context) (agents.Counts, error) {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return agents.Counts{"checked": 1}, nil
		})
		engine = agents.NewEngine(agents.EngineConfig{Store: d.Store, Events: bus, Logger: d.Logger, Now: d.Now,
			Cycles: map[string]agents.Cycle{agents.Ops: blocking, agents.Billing: standIn}, Partial: true, AllowCrashInjection: true})
		d.Agents, d.Live, d.Events = engine, NewHub(bus), bus
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = engine.Serve(ctx); close(done) }()
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
		cancel()
		<-done
		bus.Close()
	})
	return f, engine, release
}

// Defect 10 on the agent cards: "Crash" says what it does (it panics at
// once); a recovered card shows its old error grey with its time; no empty
// band above a card's title; a running card shows how long it has run,
// server-rendered and updated by the live stream.
func TestBrowserAgentCardDetails(t *testing.T) {
	b := newBrowser(t)
	b.acceptDialogs(t)
	f, engine, release := blockingFixture(t)
	u := f.createUser(t, "ops@hossagent.test", db.RoleAdmin)
	b.signIn(t, f.srv.URL, u.Email)

	// No band above the title: the header starts at the card's padding.
	band := b.eval(t, `(() => { const c = document.querySelector("#agent-billing"), h = c.querySelector("h3");
		return String(Math.round(h.getBoundingClientRect().top - c.getBoundingClientRect().top - parseFloat(getComputedStyle(c).paddingTop) - c.clientTop)); })()`)
	if band != "0" && band != "1" && band != "2" {
		t.Errorf("%s px of empty band above the billing card's title", band)
	}

	b.markPage(t)
	b.click(t, `#agent-billing button[data-action="crash"]`)
	b.waitText(t, "#agent-billing-result", "panicked now")
	if got := b.eval(t, `document.querySelector("#agent-billing-result").innerText`); strings.Contains(got, "next message") {
		t.Errorf("crash result = %q: it panics at once", got)
	}
	b.waitText(t, "#agent-billing", "Restarts 1")
	b.waitJS(t, "recovered", `!!document.querySelector("#agent-billing .last-error.recovered time")`)
	errText := b.eval(t, `document.querySelector("#agent-billing .last-error").innerText`)
	if !strings.Contains(errText, "injected crash") || !strings.Contains(errText, "2026-") {
		t.Errorf("recovered card's error = %q, want the panic and its time", errText)
	}
	if c := b.eval(t, `getComputedStyle(document.querySelector("#agent-billing .last-error")).color`); c == "rgb(239, 68, 68)" {
		t.Errorf("a recovered card's old error is still red (%s)", c)
	}

	// Running for 12 s on the fixture's clock.
	go func() { _, _ = engine.Ask(context.Background(), agents.Ops, db.TriggerManual, time.Minute) }()
	b.waitText(t, "#agent-ops", "running 0 s")
	f.clock.Advance(12 * time.Second)
	f.server.refreshLive()
	b.waitText(t, "#agent-ops-running", "running 12 s")
	b.assertNotReloaded(t)
	b.do(t, chromedp.Navigate(f.srv.URL+"/admin"), chromedp.WaitVisible(chromedp.CSS("#agent-ops")))
	if got := b.eval(t, `document.querySelector("#agent-ops-running").innerText`); got != "running 12 s" {
		t.Errorf("server-rendered running card = %q", got)
	}
	close(release)
	b.waitJS(t, "ops done", `!document.querySelector("#agent-ops-running")`)
}

// Defect 10 on the record pages and every page: the invoice's payment URL
// is a link; a new portal link has a Copy button; every page names its
// favicon, which is served.
func TestBrowserRecordLinksCopyAndFavicon(t *testing.T) {
	b := newBrowser(t)
	b.acceptDialogs(t)
	f := newFixture(t, nil)
	f.seed(t)
	u := f.createUser(t, "ops@hossagent.test", db.RoleAdmin)
	b.signIn(t, f.srv.URL, u.Email)
	var invoiceID, customerID int64
	if err := f.store.Bun().NewRaw("SELECT id, customer_id FROM invoices WHERE payment_url != '' LIMIT 1").Scan(context.Background(), &invoiceID, &customerID); err != nil {
		t.Fatal(err)
	}
	b.do(t, chromedp.Navigate(fmt.Sprintf("%s/admin/invoices/%d", f.srv.URL, invoiceID)), chromedp.WaitVisible(chromedp.CSS("main")))
	link := b.eval(t, `(() => { const a = document.querySelector("#record-fields a[href^='https://buy.stripe.com'], main dd a[href^='https://buy.stripe.com']");
		return a ? a.href + " " + a.rel : ""; })()`)
	if link != "https://buy.stripe.com/test_abc noopener" {
		t.Errorf("payment URL link = %q", link)
	}
	icon, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`fetch(document.querySelector("link[rel=icon]")?.href || "/favicon.ico").then(r => r.status + " " + r.headers.get("content-type"))`, chromedp.EvalAwaitPromise))
	if err != nil || icon != "200 image/svg+xml" {
		t.Errorf("favicon = %q %v", icon, err)
	}

	b.do(t, chromedp.Navigate(fmt.Sprintf("%s/admin/customers/%d", f.srv.URL, customerID)), chromedp.WaitVisible(chromedp.CSS("#portal-link")))
	b.click(t, `#portal-link button[hx-post$="/portal/rotate"]`)
	b.waitJS(t, "new link", `!!document.querySelector("#portal-new-link")`)
	// The page's clipboard, stubbed: headless chromium has no clipboard.
	b.eval(t, `navigator.clipboard.writeText = t => { window.copied = t; return Promise.resolve(); }, ""`)
	b.click(t, "#portal-new-link-copy")
	b.waitText(t, "#portal-new-link-copied", "Copied")
	if got, want := b.eval(t, `window.copied || ""`), b.eval(t, `document.querySelector("#portal-new-link").value`); got != want || !strings.Contains(got, "/portal/") {
		t.Errorf("copied %q, want the new link %q", got, want)
	}
}

// Accessibility items: a skip link first in the tab order that moves focus
// to the main content; a visible focus ring; buttons named for their agent;
// tap targets of at least 24x24 px at desktop and phone widths; phone tables
// that need no sideways scrolling; empty states that say what to do.
func TestBrowserKeyboardAndTargets(t *testing.T) {
	b := newBrowser(t)
	f, _ := liveFixture(t, nil)
	u := f.createUser(t, "ops@hossagent.test", db.RoleAdmin)
	b.signIn(t, f.srv.URL, u.Email)
	b.do(t, chromedp.Navigate(f.srv.URL+"/admin"), chromedp.WaitVisible(chromedp.CSS("#agent-billing")))
	b.do(t, chromedp.KeyEvent("\t"))
	if got := b.eval(t, `document.activeElement.className + " " + document.activeElement.getAttribute("href")`); got != "skip-link #main" {
		t.Fatalf("first Tab focuses %q, want the skip link", got)
	}
	if got := b.eval(t, `(() => { const r = document.activeElement.getBoundingClientRect(); return r.top >= 0 && r.height >= 24 ? "shown" : "hidden " + r.top; })()`); got != "shown" {
		t.Errorf("the focused skip link is %s", got)
	}
	b.do(t, chromedp.KeyEvent("\r"))
	b.waitJS(t, "focus on main", `document.activeElement && document.activeElement.id === "main"`)
	// Tab on from main reaches a button; its focus ring shows.
	for range 40 {
		b.do(t, chromedp.KeyEvent("\t"))
		if b.eval(t, `document.activeElement.tagName`) == "BUTTON" {
			break
		}
	}
	if ring := b.eval(t, `(() => { const s = getComputedStyle(document.activeElement); return s.outlineStyle + " " + s.outlineWidth; })()`); ring != "solid 2px" {
		t.Errorf("focus ring on %s = %q", b.eval(t, `document.activeElement.outerHTML.slice(0, 80)`), ring)
	}
	for _, action := range []string{"run", "restart", "stop"} {
		sel := `#agent-billing button[data-action="` + action + `"]`
		if got := b.eval(t, fmt.Sprintf(`document.querySelector(%q).getAttribute("aria-label")`, sel)); !strings.EqualFold(got, action+" billing") {
			t.Errorf("%s button's name = %q", action, got)
		}
	}
	if got := b.eval(t, `document.querySelector("#admin-runs .empty")?.innerText || ""`); !strings.Contains(got, "Press Run") {
		t.Errorf("empty cycle log = %q, want what to do next", got)
	}
	const small = `[...document.querySelectorAll("button, input:not([type=hidden]), select, summary, .btn, nav a, .pager a")]
		.filter(e => e.offsetParent !== null && !e.closest(".skip-link"))
		.map(e => [e, e.getBoundingClientRect()]).filter(([e, r]) => r.width < 24 || r.height < 24)
		.map(([e, r]) => e.outerHTML.slice(0, 70) + " " + Math.round(r.width) + "x" + Math.round(r.height))`
	for _, path := range []string{"/admin", "/", "/admin/users"} {
		b.do(t, chromedp.Navigate(f.srv.URL+path), chromedp.WaitVisible(chromedp.CSS("main")))
		for _, width := range []int64{1400, 390} {
			b.do(t, chromedp.EmulateViewport(width, 900))
			bad, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](small))
			if err != nil {
				t.Fatal(err)
			}
			if len(bad) > 0 {
				t.Errorf("%s at %d px: %d targets under 24x24: %q", path, width, len(bad), bad)
			}
			if width == 390 {
				wide := b.eval(t, `[...document.querySelectorAll(".table-scroll, table.data")].filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.closest("section")?.id).join(" ")`)
				if wide != "" {
					t.Errorf("%s at 390 px: tables scroll sideways in %s", path, wide)
				}
			}
		}
	}
}
