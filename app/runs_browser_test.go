package app

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/agents/stripe"
	"github.com/hossagent/hossagent/db"
)

// Browser tests of issue 13's defects 6, 7 and 9: the cycle log's page
// (filters, pages, folded stacks), Stripe failures shown where the
// operator looks, and tables that page in place and hold their page while
// rows arrive.

// countLiveMessages makes every page the tab opens count the live
// messages it applied (data-live-messages on <html>), so that a test can
// wait for a stream's first render before it clicks: a click whose target
// the live render replaces mid-request would be lost.
func (b *browser) countLiveMessages(t *testing.T) {
	t.Helper()
	const js = `document.addEventListener("htmx:sse:after:message", () => {
		const d = document.documentElement.dataset; d.liveMessages = String((+d.liveMessages || 0) + 1); });`
	if _, err := chromedp.Call(b.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: js}); err != nil {
		t.Fatal(err)
	}
}

// liveMessages is how many live messages the page applied.
func (b *browser) liveMessages(t *testing.T) int {
	t.Helper()
	return evalJS[int](t, b, `+document.documentElement.dataset.liveMessages || 0`)
}

// waitLiveAfter waits until the page applied more than n live messages.
func (b *browser) waitLiveAfter(t *testing.T, n int) {
	t.Helper()
	b.waitJS(t, fmt.Sprintf("live message %d", n+1), fmt.Sprintf(`(+document.documentElement.dataset.liveMessages || 0) > %d`, n))
}

// TestBrowserRunsPageFiltersPagesAndStacks: /admin/runs filters by agent
// and outcome and pages without reloading (the URL follows), and a panic's
// stack is folded until clicked. On main there is no such page (404) and
// the control room's cycle log has no filter, pager or <details>.
func TestBrowserRunsPageFiltersPagesAndStacks(t *testing.T) {
	b := newBrowser(t)
	f, _ := liveFixture(t, nil)
	start := testNow.Add(-time.Hour)
	addTestRuns(t, f, 60, agents.Billing, db.RunOK, "links=0", start)
	addTestRuns(t, f, 2, agents.Ops, db.RunPanicked, "panic: boom\ngoroutine 7 [running]:\nmain.crash()\n\t/src/crash.go:12", start.Add(2*time.Minute))
	u := f.createUser(t, "ops@hossagent.test", db.RoleAdmin)
	b.countLiveMessages(t)
	b.signIn(t, f.srv.URL, u.Email)
	b.do(t, chromedp.Navigate(f.srv.URL+"/admin/runs"), chromedp.WaitVisible(chromedp.CSS("#runs-log")))
	b.waitText(t, "#runs-log .pager", "Page 1 of 2")
	b.waitLiveAfter(t, 0) // the stream's first render is in
	b.markPage(t)

	// Next page, in place; the page's stream follows it.
	live := b.liveMessages(t)
	b.click(t, `#runs-log .pager a[rel="next"]`)
	b.waitText(t, "#runs-log .pager", "Page 2 of 2")
	b.waitLiveAfter(t, live)
	b.assertNotReloaded(t)
	if loc := evalJS[string](t, b, `location.search`); !strings.Contains(loc, "c=2-o") {
		t.Errorf("after paging the URL is %q, want the page's cursor", loc)
	}
	if n := evalJS[int](t, b, `document.querySelectorAll("#runs-log tbody tr").length`); n != 12 {
		t.Errorf("page 2 has %d rows, want 12", n)
	}

	// Filter by agent and outcome, in place.
	evalJS[bool](t, b, `(() => { document.querySelector("#runs-agent").value = "ops"; document.querySelector("#runs-outcome").value = "panicked"; return true })()`)
	live = b.liveMessages(t)
	b.click(t, `#runs-filter button[type="submit"]`)
	b.waitText(t, "#runs-log h2", "of ops · panicked")
	b.waitLiveAfter(t, live)
	b.assertNotReloaded(t)
	if n := evalJS[int](t, b, `document.querySelectorAll("#runs-log tbody tr").length`); n != 2 {
		t.Errorf("ops panics: %d rows, want 2", n)
	}
	if loc := evalJS[string](t, b, `location.search`); !strings.Contains(loc, "agent=ops") || !strings.Contains(loc, "outcome=panicked") {
		t.Errorf("after filtering the URL is %q", loc)
	}

	// The stack is folded under the panic's first line, and opens on click.
	const stack = `document.querySelector("#runs-log details.run-stack")`
	if open := evalJS[bool](t, b, stack+`.open`); open {
		t.Errorf("the stack starts open")
	}
	if shown := evalJS[bool](t, b, stack+`.querySelector("pre").checkVisibility()`); shown {
		t.Errorf("the folded stack is visible")
	}
	if got := evalJS[string](t, b, stack+`.querySelector("summary").innerText`); got != "panic: boom" {
		t.Errorf("summary = %q", got)
	}
	b.click(t, "#runs-log details.run-stack summary")
	b.waitJS(t, "the stack opening", stack+`.open && `+stack+`.querySelector("pre").checkVisibility()`)
	if got := evalJS[string](t, b, stack+`.querySelector("pre").innerText`); !strings.Contains(got, "goroutine 7 [running]") {
		t.Errorf("stack = %q", got)
	}
}

// liveFixtureWithPayments is liveFixture with billing's payment links
// made by payments (also the admin's link actions).
func liveFixtureWithPayments(t *testing.T, env map[string]string, payments agents.PaymentLinks) (*fixture, *agents.Engine) {
	t.Helper()
	bus := agents.NewBus()
	var engine *agents.Engine
	f := newFixture(t, env, func(d *Deps) {
		cycleEnv := agents.Env{Now: d.Now, Events: bus}
		standIn := agents.CycleFunc(func(context.Context) (agents.Counts, error) { return agents.Counts{"checked": 1}, nil })
		engine = agents.NewEngine(agents.EngineConfig{Store: d.Store, Events: bus, Logger: d.Logger, Now: d.Now,
			Cycles: map[string]agents.Cycle{
				agents.LeadSource: standIn, agents.BizDev: standIn, agents.Onboarding: standIn, agents.Ops: standIn,
				agents.Billing:     agents.NewBillingCycle(d.Store, cycleEnv, payments, agents.BillingOptions{Currency: "usd"}),
				agents.Collections: standIn, agents.Replies: standIn,
			}})
		d.Agents, d.Live, d.Events, d.Links = engine, NewHub(bus), bus, payments
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = engine.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; bus.Close() })
	return f, engine
}

// TestBrowserStripeFailureShown: with Stripe unreachable (the real
// adapter, pointed at a closed port), the Billing run is failed in the
// cycle log with the reason, the Stripe panel shows the invoices without a
// link and the latest error, "Create missing payment links" answers with
// each invoice's error (not "the server log"), and the invoice's page
// shows its own. On main the run is OK and none of these exist.
func TestBrowserStripeFailureShown(t *testing.T) {
	b := newBrowser(t)
	payments := stripe.New(stripe.Options{APIKey: "sk_test_unreachable_0123", APIBase: "http://127.0.0.1:1"})
	f, engine := liveFixtureWithPayments(t, map[string]string{"ENABLE_STRIPE": "true", "STRIPE_API_KEY": "sk_test_unreachable_0123"}, payments)
	f.seed(t)
	f.addDoneTask(t, 20000)
	u := f.createUser(t, "ops@hossagent.test", db.RoleAdmin)
	b.countLiveMessages(t)
	b.signIn(t, f.srv.URL, u.Email)
	b.waitLiveAfter(t, 0)
	b.markPage(t)

	res, _ := engine.Ask(context.Background(), agents.Billing, db.TriggerManual, 30*time.Second)
	if res.Outcome != db.RunFailed {
		t.Errorf("billing with Stripe unreachable: outcome %q, want failed", res.Outcome)
	}
	b.waitText(t, "#admin-runs", "payment links failed")
	b.waitText(t, "#stripe-link-error", "connection")
	if got := b.text(t, "#admin-runs tbody tr"); !strings.Contains(got, "failed") {
		t.Errorf("latest run = %q, want failed", got)
	}
	if got := b.text(t, "#stripe-missing-links"); got == "0" || got == "" {
		t.Errorf("missing links = %q", got)
	}
	if got := b.text(t, "#stripe-link-error"); strings.Contains(got, "sk_test") {
		t.Errorf("the panel shows the key: %q", got)
	}

	b.click(t, "#regenerate-links")
	b.waitText(t, "#regenerate-links-result", "failed")
	got := b.text(t, "#regenerate-links-result")
	if strings.Contains(got, "server log") || !strings.Contains(got, "connection") || !strings.Contains(got, "127.0.0.1:1") {
		t.Errorf("bulk answer = %q, want each invoice's error", got)
	}
	if n := evalJS[int](t, b, `document.querySelectorAll("#regenerate-links-result .link-failures li").length`); n < 1 {
		t.Errorf("the answer lists %d invoices", n)
	}
	b.assertNotReloaded(t)

	href := evalJS[string](t, b, `document.querySelector("#stripe-link-error a").getAttribute("href")`)
	b.do(t, chromedp.Navigate(f.srv.URL+href), chromedp.WaitVisible(chromedp.CSS("#record-fields")))
	if got := b.text(t, "#invoice-link-error"); !strings.Contains(got, "connection") || !strings.Contains(got, "failures in a row") {
		t.Errorf("invoice page link error = %q", got)
	}
}

// TestBrowserTablesPageInPlace: the control room's Next swaps the leads
// table alone (no reload, the scroll position kept, the URL pushed), and
// page 2 keeps its rows when new leads arrive and the live stream renders
// again: the stream follows the page's cursor. On main Next is a full
// reload.
func TestBrowserTablesPageInPlace(t *testing.T) {
	b := newBrowser(t)
	f, engine := liveFixture(t, nil)
	ctx := context.Background()
	addLeads := func(from, n int) {
		for i := from; i < from+n; i++ {
			if _, err := f.store.AddLead(ctx, db.NewLead{Name: "Contact", Email: fmt.Sprintf("c%d@lead%d.example", i, i),
				Company: fmt.Sprintf("Lead Co %03d", i), Source: "synthetic", Niche: "agency", DomainKey: fmt.Sprintf("lead%d.example", i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	addLeads(0, 40)
	u := f.createUser(t, "ops@hossagent.test", db.RoleAdmin)
	b.countLiveMessages(t)
	b.signIn(t, f.srv.URL, u.Email)
	b.waitText(t, "#admin-leads .pager", "Page 1 of 2")
	b.waitLiveAfter(t, 0)
	b.do(t, chromedp.EmulateViewport(1400, 900))
	evalJS[bool](t, b, `(() => { document.querySelector("#admin-leads .pager").scrollIntoView({block: "center"}); return true })()`)
	before := evalJS[float64](t, b, `window.scrollY`)
	if before < 500 {
		t.Fatalf("the leads pager is at scrollY %v: the page is too short to tell", before)
	}
	b.markPage(t)

	live := b.liveMessages(t)
	b.click(t, `#admin-leads .pager a[rel="next"]`)
	b.waitText(t, "#admin-leads .pager", "Page 2 of 2")
	b.waitLiveAfter(t, live) // the new stream, on page 2, rendered
	b.assertNotReloaded(t)
	// The operator stays where the table is (a shorter page 2 may pull the
	// end of the document up, never back to the top).
	const pagerInView = `(() => { const r = document.querySelector("#admin-leads .pager").getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight })()`
	if after := evalJS[float64](t, b, `window.scrollY`); after < before/2 || !evalJS[bool](t, b, pagerInView) {
		t.Errorf("paging scrolled from %v to %v, pager in view: %v", before, after, evalJS[bool](t, b, pagerInView))
	}
	if loc := evalJS[string](t, b, `location.search`); !strings.Contains(loc, "lp=2-o") {
		t.Errorf("URL after paging = %q", loc)
	}
	const ids = `Array.from(document.querySelectorAll("#admin-leads tbody tr td:first-child")).map(td => td.innerText).join(",")`
	page2 := evalJS[string](t, b, ids)
	if page2 == "" {
		t.Fatal("page 2 is empty")
	}

	// New leads arrive and the live stream renders (a run ends: the cycle
	// log shows it); page 2 shows the same rows.
	addLeads(100, 30)
	if _, err := engine.Ask(ctx, agents.Ops, db.TriggerManual, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	b.waitJS(t, "the live render of the run", `document.querySelectorAll("#admin-runs tbody tr:not(.empty)").length > 0`)
	if got := evalJS[string](t, b, ids); got != page2 {
		t.Errorf("page 2 moved after new leads: %s, was %s", got, page2)
	}
	b.waitText(t, "#admin-leads .pager", "Page 2 of 3")
	if got := evalJS[string](t, b, ids); got != page2 {
		t.Errorf("page 2 moved after new leads: %s, was %s", got, page2)
	}
	b.assertNotReloaded(t)
}
