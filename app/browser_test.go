package app

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

// Browser tests drive Debian's chromium through chromedp against the real
// router, a real SQLite file and, where they watch live updates, a real
// agent engine. Without chromium they skip, except under CI=true, where a
// missing browser fails the run: `make test` installs it.

// browser is one headless chromium with a tab, and the JavaScript dialogs
// it saw (a dialog means injected script ran).
type browser struct {
	ctx     context.Context
	dialogs *atomic.Int64
}

func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed; `make test` installs Debian's chromium when run as root")
	}
	t.Skip("chromium is not installed (make test installs it)")
	return ""
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // tests run as root in CI
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		// The machine has no network beyond loopback: stop chromium's own
		// background traffic.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	dialogs := &atomic.Int64{}
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithListener(func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			dialogs.Add(1)
		}
	}))
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return &browser{ctx: ctx, dialogs: dialogs}
}

func (b *browser) do(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// click clicks sel. A live update may swap the element out between the
// moment chromedp finds it and the click; the click then goes to the
// element that replaced it, as a person's second try would.
func (b *browser) click(t *testing.T, sel string) {
	t.Helper()
	var err error
	for range 10 {
		if err = chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS(sel))); err == nil || !strings.Contains(err.Error(), "Could not find node") {
			break
		}
	}
	if err != nil {
		t.Fatalf("click %s: %v", sel, err)
	}
}

func (b *browser) text(t *testing.T, sel string) string {
	t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.Join(strings.Fields(s), " ")
}

// waitText waits, on the page's own events (DOM mutations), until sel's
// rendered text contains want, ignoring case and runs of white space.
func (b *browser) waitText(t *testing.T, sel, want string) {
	t.Helper()
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%q);
		return !!e && e.innerText.replace(/\s+/g, " ").toLowerCase().includes(%q); })()`, sel, strings.ToLower(want))
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(15*time.Second), chromedp.WithPollingMutation())); err != nil {
		t.Fatalf("%s never showed %q (now %q): %v", sel, want, b.text(t, sel), err)
	}
}

// markPage tags the document; if the tag survives, the page was not reloaded.
func (b *browser) markPage(t *testing.T) {
	t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.documentElement.dataset.marker = "no-reload"`)); err != nil {
		t.Fatal(err)
	}
}

func (b *browser) assertNotReloaded(t *testing.T) {
	t.Helper()
	got, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.documentElement.dataset.marker || ""`))
	if err != nil || got != "no-reload" {
		t.Errorf("the page was reloaded (marker %q, %v)", got, err)
	}
}

// signIn signs in through the login form like an operator would.
func (b *browser) signIn(t *testing.T, base, email string) {
	t.Helper()
	b.do(t,
		chromedp.Navigate(base+"/admin"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="email"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="email"]`), email),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), testPassword),
		chromedp.Submit(chromedp.CSS(`input[name="password"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#admin-agents`)),
	)
	loc, _ := chromedp.Run(b.ctx, chromedp.Location())
	if !strings.HasSuffix(loc, "/admin") {
		t.Errorf("after sign-in the browser is at %s, want /admin", loc)
	}
}

// screenshot saves the current page at a width into the run's screenshot
// folder (SCREENSHOT_DIR, or a temporary folder printed once).
func (b *browser) screenshot(t *testing.T, name string, width int64) {
	t.Helper()
	dir := screenshotDir(t)
	var opts []chromedp.EmulateViewportOption
	if width < 600 {
		opts = append(opts, chromedp.EmulateMobile) // overlay scroll bars, as on a phone
	}
	b.do(t, chromedp.EmulateViewport(width, 900, opts...), chromedp.WaitVisible(chromedp.CSS("body")))
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(png), "\x89PNG") || len(png) < 10000 {
		t.Fatalf("screenshot of %s at %d px is not a real PNG (%d bytes)", name, width, len(png))
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%dpx.png", name, width))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
}

var screenshotFolder atomic.Value

func screenshotDir(t *testing.T) string {
	if d, ok := screenshotFolder.Load().(string); ok {
		return d
	}
	dir := os.Getenv("SCREENSHOT_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "hossagent-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	screenshotFolder.Store(dir)
	fmt.Printf("browser tests: screenshots in %s\n", dir)
	return dir
}

// liveFixture is a fixture with a running engine (real billing, stand-in
// other agents that report one unit of work), its coordinator, and the live
// hub and the Stripe webhook on its bus.
func liveFixture(t *testing.T, env map[string]string) (*fixture, *agents.Engine) {
	t.Helper()
	bus := agents.NewBus()
	var engine *agents.Engine
	f := newFixture(t, env, func(d *Deps) {
		cycleEnv := agents.Env{Now: d.Now, Events: bus}
		standIn := agents.CycleFunc(func(context.Context) (agents.Counts, error) { return agents.Counts{"checked": 1}, nil })
		engine = agents.NewEngine(agents.EngineConfig{Store: d.Store, Events: bus, Logger: d.Logger, Now: d.Now,
			Cycles: map[string]agents.Cycle{
				agents.LeadSource: standIn, agents.BizDev: standIn, agents.Onboarding: standIn, agents.Ops: standIn,
				agents.Billing:     agents.NewBillingCycle(d.Store, cycleEnv, agents.DisabledPayments{}, agents.BillingOptions{Currency: "usd"}),
				agents.Collections: standIn, agents.Replies: standIn,
			}, AllowCrashInjection: true})
		coordinator := agents.NewCoordinator(agents.CoordinatorConfig{Engine: engine, Store: d.Store, Events: bus, Logger: d.Logger,
			Now: d.Now, Ticker: neverTicks, Interval: 5 * time.Minute})
		engine.Add(coordinator)
		d.Agents, d.Autopilot, d.Live, d.Events = engine, coordinator, NewHub(bus), bus
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = engine.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; bus.Close() })
	return f, engine
}

// acceptDialogs answers every confirm() with OK (hx-confirm on the
// dangerous buttons).
func (b *browser) acceptDialogs(t *testing.T) {
	t.Helper()
	err := chromedp.Listen(b.ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			// Not from inside the listener: a command there would deadlock.
			go func() {
				_, _ = chromedp.Call(b.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
			}()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestBrowserSignIn(t *testing.T) {
	b := newBrowser(t)
	f := newFixture(t, nil)
	f.seed(t)
	u := f.createUser(t, "ops@hossagent.test", db.RoleAdmin)
	b.signIn(t, f.srv.URL, u.Email)
	if got := b.text(t, "#admin-agents"); !strings.Contains(strings.ToLower(got), "billing") {
		t.Errorf("control room agents panel = %q", got)
	}
}

// The dashboard's money card changes after a billing cycle, with no reload.
func TestBrowserDashboardMoneyIsLive(t *testing.T) {
	b := newBrowser(t)
	f, engine := liveFixture(t, nil)
	f.seed(t)
	f.addDoneTask(t, 20000)
	u := f.createUser(t, "owner@hossagent.test", db.RoleAdmin)
	b.signIn(t, f.srv.URL, u.Email)
	b.do(t, chromedp.Navigate(f.srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#dash-cards")))
	b.waitText(t, "#dash-cards", "$150.00") // outstanding before billing
	b.markPage(t)

	if _, err := engine.Ask(context.Background(), agents.Billing, db.TriggerManual, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	b.waitText(t, "#dash-cards", "$350.00") // the new invoice is outstanding
	b.assertNotReloaded(t)
}

// A company called <script>alert(1)</script> is plain text on every page.
func TestBrowserHostileNamesStayText(t *testing.T) {
	b := newBrowser(t)
	f := newFixture(t, nil)
	f.seed(t)
	u := f.createUser(t, "ops@hossagent.test", db.RoleAdmin)
	b.signIn(t, f.srv.URL, u.Email)
	pages := map[string]string{"/": "#dash-leads", "/admin": "#admin-leads", "/portal/" + f.token: "h1"}
	for path, sel := range pages {
		b.do(t, chromedp.Navigate(f.srv.URL+path), chromedp.WaitVisible(chromedp.CSS(sel)))
		if got := b.text(t, sel); !strings.Contains(got, evil) {
			t.Errorf("%s %s = %q, want the name as text", path, sel, got)
		}
	}
	if n := b.dialogs.Load(); n != 0 {
		t.Errorf("%d script dialogs opened: injected script ran", n)
	}
}

// A POST from another origin and a POST without a session are refused.
func TestBrowserCrossOriginAndAnonymousPostsRefused(t *testing.T) {
	b := newBrowser(t)
	f := newFixture(t, nil)
	u := f.createUser(t, "ops@hossagent.test", db.RoleAdmin)
	b.signIn(t, f.srv.URL, u.Email)

	// Another site's page posts a form at the app (the session cookie is
	// SameSite=Lax, and the origin check refuses it anyway).
	evilSite := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<form method="post" action="%s/logout"><button id="go">go</button></form>`, f.srv.URL)
	}))
	defer evilSite.Close()
	b.do(t, chromedp.Navigate(strings.Replace(evilSite.URL, "127.0.0.1", "localhost", 1)),
		chromedp.WaitVisible(chromedp.CSS("#go")), chromedp.Click(chromedp.CSS("#go")),
		chromedp.WaitVisible(chromedp.CSS(".error-page")))
	if got := b.text(t, ".error-page"); !strings.Contains(got, "403") {
		t.Errorf("cross-origin POST answered %q, want 403", got)
	}
	// Still signed in: the refused POST changed nothing.
	b.do(t, chromedp.Navigate(f.srv.URL+"/admin"), chromedp.WaitVisible(chromedp.CSS("#admin-agents")))

	// Same origin, but no session: a fresh browser posts to an admin route.
	anon := newBrowser(t)
	anon.do(t, chromedp.Navigate(f.srv.URL+"/login"), chromedp.WaitVisible(chromedp.CSS("form")))
	status, err := chromedp.Run(anon.ctx, chromedp.Evaluate[int](`fetch("/admin/cycle", {method: "POST"}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusUnauthorized {
		t.Errorf("POST without a session = %d, want 401", status)
	}
}

// Screenshots of the three surfaces at desktop and phone widths.
func TestBrowserScreenshots(t *testing.T) {
	b := newBrowser(t)
	f, engine := liveFixture(t, nil)
	f.seed(t)
	f.addDoneTask(t, 20000)
	if _, err := engine.Ask(context.Background(), agents.Billing, db.TriggerManual, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	u := f.createUser(t, "ops@hossagent.test", db.RoleAdmin)
	b.signIn(t, f.srv.URL, u.Email)
	for name, path := range map[string]string{"dashboard": "/", "admin": "/admin", "portal": "/portal/" + f.token} {
		b.do(t, chromedp.Navigate(f.srv.URL+path), chromedp.WaitVisible(chromedp.CSS("main, .wrap")))
		for _, width := range []int64{1400, 390} {
			b.screenshot(t, name, width)
		}
	}
}

// Watching the control room while clicking RUN FULL CYCLE NOW: the agent
// cards and the cycle log change, with no reload.
func TestBrowserAdminFullCycleIsLive(t *testing.T) {
	b := newBrowser(t)
	f, _ := liveFixture(t, nil)
	f.seed(t)
	f.addDoneTask(t, 20000)
	u := f.createUser(t, "ops@hossagent.test", db.RoleAdmin)
	b.signIn(t, f.srv.URL, u.Email)
	b.waitText(t, "#admin-runs", "Awaiting agent execution")
	b.markPage(t)
	b.click(t, "#run-full-cycle")
	b.waitText(t, "#admin-control-result", "started")
	for _, agent := range agents.Pipeline {
		b.waitText(t, "#admin-runs", agent)
	}
	b.waitText(t, "#agent-billing", "invoiced=1")
	b.waitText(t, "#agent-lead_source", "checked=1")
	b.waitText(t, "#admin-cards", "$350.00")
	b.assertNotReloaded(t)
}

// Crashing an agent from the control room: its card shows the crash and the
// restart, and the agent answers again.
func TestBrowserCrashedAgentRestartsAndAnswers(t *testing.T) {
	b := newBrowser(t)
	b.acceptDialogs(t)
	f, engine := liveFixture(t, nil)
	u := f.createUser(t, "ops@hossagent.test", db.RoleAdmin)
	b.signIn(t, f.srv.URL, u.Email)
	b.markPage(t)
	b.click(t, `#agent-ops button[data-action="crash"]`)
	b.waitText(t, "#agent-ops", "injected crash")
	b.waitText(t, "#agent-ops", "Restarts 1")
	st, err := engine.State(agents.Ops)
	if err != nil || st.State != agents.StateIdle || st.Restarts != 1 {
		t.Errorf("ops after the crash: %+v %v", st, err)
	}
	b.click(t, `#agent-ops button[data-action="run"]`)
	b.waitText(t, "#agent-ops-result", "ops ran")
	b.assertNotReloaded(t)
}

// The portal shows PAY NOW for an open invoice with a link, and shows it
// paid, live, once a signed Stripe webhook for it arrives.
func TestBrowserPortalShowsPaymentLive(t *testing.T) {
	b := newBrowser(t)
	f, _ := liveFixture(t, map[string]string{"STRIPE_WEBHOOK_SECRET": stripeTestSecret})
	f.seed(t)
	b.do(t, chromedp.Navigate(f.srv.URL+"/portal/"+f.token), chromedp.WaitVisible(chromedp.CSS("#portal-outstanding a.pay-now")))
	href, err := chromedp.Run(b.ctx, chromedp.AttributeValue(chromedp.CSS("#portal-outstanding a.pay-now"), "href"))
	if err != nil || href.Value != "https://buy.stripe.com/test_abc" {
		t.Fatalf("PAY NOW href = %+v %v", href, err)
	}
	b.markPage(t)

	var inv db.Invoice
	if err := f.store.Bun().NewSelect().Model(&inv).Where("status = 'open'").Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Paid through the invoice's own link: what ties a session to it.
	if _, err := f.store.Bun().NewUpdate().Model(&inv).Set("stripe_payment_link_id = 'plink_browser'").WherePK().Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	session := map[string]any{
		"id": "cs_browser", "object": "checkout.session", "mode": "payment", "status": "complete", "payment_status": "paid",
		"amount_total": inv.AmountCents, "currency": inv.Currency, "payment_intent": "pi_browser", "payment_link": "plink_browser",
		"metadata":         map[string]string{"invoice_id": fmt.Sprint(inv.ID)},
		"customer_details": map[string]any{"email": "payer@acme.example", "name": "Pat Payer"},
	}
	payload := stripeEventPayload(t, "evt_browser_paid", "checkout.session.completed", "2023-10-16", session)
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/stripe/webhook", strings.NewReader(string(payload)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", stripeSignature(payload, stripeTestSecret, f.clock.Now()))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook answered %d", resp.StatusCode)
	}
	b.waitText(t, "#portal-history", inv.NumberOrDraft())
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](`!document.querySelector("#portal-outstanding a.pay-now")`,
		chromedp.WithPollingTimeout(15*time.Second), chromedp.WithPollingMutation())); err != nil {
		t.Errorf("PAY NOW still shown after the payment: %v", err)
	}
	b.assertNotReloaded(t)
}
