package app

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

// Browser tests of issue 13's live-update defects 1, 4, 5 and 8: a live
// update keeps the reader's place, an ended session says so, the stream's
// state is shown and can be paused, and record pages are live.

// eval runs js in the browser and returns its value.
func evalJS[T any](t *testing.T, b *browser, js string) T {
	t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluating %s: %v", js, err)
	}
	return v
}

// waitJS waits, on DOM mutations, until js is true.
func (b *browser) waitJSWithin(t *testing.T, js string, within time.Duration) {
	t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(within), chromedp.WithPollingMutation())); err != nil {
		t.Fatalf("never true within %s: %s: %v", within, js, err)
	}
}

// A live update leaves the reader where they were: the focused card button
// keeps the focus, an opened stack trace stays open, the selected text
// stays selected.
func TestBrowserLiveUpdateKeepsFocusDetailsAndSelection(t *testing.T) {
	b := newBrowser(t)
	f, engine := liveFixture(t, nil)
	u := f.createUser(t, "ops@hossagent.test", db.RoleAdmin)
	b.signIn(t, f.srv.URL, u.Email)
	b.waitText(t, "#live-status", "live")
	ctx := context.Background()
	if err := engine.InjectPanic(ctx, agents.Ops); err != nil {
		t.Fatal(err)
	}
	b.waitText(t, "#agent-ops", "Restarts 1")
	b.waitJSWithin(t, `!!document.querySelector("#agent-ops details")`, 15*time.Second)
	b.markPage(t)

	// The operator opens the stack trace, selects the card's title and
	// tabs to its RUN button.
	ready := evalJS[bool](t, b, `(() => {
		document.querySelector("#agent-ops details").open = true;
		const r = document.createRange();
		r.selectNodeContents(document.querySelector("#agent-ops h3"));
		getSelection().removeAllRanges();
		getSelection().addRange(r);
		const run = document.querySelector('#agent-ops button[data-action="run"]');
		run.focus();
		return document.activeElement === run && getSelection().toString().trim() !== "";
	})()`)
	if !ready {
		t.Fatal("could not focus the button and select the title")
	}
	title := evalJS[string](t, b, `getSelection().toString()`)

	// The agent crashes again: its card is updated live.
	if err := engine.InjectPanic(ctx, agents.Ops); err != nil {
		t.Fatal(err)
	}
	b.waitText(t, "#agent-ops", "Restarts 2")

	if got := evalJS[string](t, b, `(() => { const a = document.activeElement;
		return a ? a.tagName + (a.matches('#agent-ops button[data-action="run"]') ? " run" : "") : "none"; })()`); got != "BUTTON run" {
		t.Errorf("after the live update the focus is on %q, want the ops RUN button", got)
	}
	if !evalJS[bool](t, b, `document.querySelector("#agent-ops details").open`) {
		t.Error("the opened stack trace closed on the live update")
	}
	if got := evalJS[string](t, b, `getSelection().toString()`); got != title {
		t.Errorf("selection after the live update = %q, want %q", got, title)
	}
	b.assertNotReloaded(t)
}

// Signing out in another tab ends the first tab's session: the first tab
// says so within a deadline, with a sign-in link back to the same page,
// and a button pressed after that swaps no 401 page into a panel.
func TestBrowserEndedSessionIsShownNotInjected(t *testing.T) {
	b := newBrowser(t)
	f, _ := liveFixture(t, nil)
	u := f.createUser(t, "ops@hossagent.test", db.RoleAdmin)
	b.signIn(t, f.srv.URL, u.Email)
	b.do(t, chromedp.Navigate(f.srv.URL+"/admin?q=acme"), chromedp.WaitVisible(chromedp.CSS("#admin-agents")))
	b.waitText(t, "#live-status", "live")
	b.markPage(t)
	if !evalJS[bool](t, b, `document.getElementById("session-ended").hidden`) {
		t.Fatal("the session-ended notice shows while signed in")
	}

	// Another tab of the same browser signs out.
	other, cancel := chromedp.NewContext(b.ctx)
	defer cancel()
	if err := chromedp.Do(other, chromedp.Navigate(f.srv.URL+"/admin"), chromedp.WaitVisible(chromedp.CSS(".signout button")),
		chromedp.Click(chromedp.CSS(".signout button")), chromedp.WaitVisible(chromedp.CSS(`input[name="password"]`))); err != nil {
		t.Fatalf("signing out in the other tab: %v", err)
	}

	// The first tab learns it from its stream.
	b.waitJSWithin(t, `!document.getElementById("session-ended").hidden`, 10*time.Second)
	b.waitText(t, "#session-ended", "Your session ended")
	b.waitText(t, "#live-status", "session ended")
	href := evalJS[string](t, b, `document.getElementById("session-ended-link").getAttribute("href")`)
	if want := "/login?next=" + url.QueryEscape("/admin?q=acme"); href != want {
		t.Errorf("sign-in link = %q, want %q", href, want)
	}

	// A button pressed now is answered 401: nothing of it lands in a panel.
	evalJS[bool](t, b, `(window.__finished = 0, document.addEventListener("htmx:finally:request", () => window.__finished++), true)`)
	before := b.text(t, "#agent-ops-result")
	b.click(t, `#agent-ops button[data-action="run"]`)
	b.waitJSWithin(t, `window.__finished > 0`, 10*time.Second)
	if got := b.text(t, "#agent-ops-result"); got != before || strings.Contains(got, "401") {
		t.Errorf("the 401 answer was swapped into the panel: %q", got)
	}
	if evalJS[bool](t, b, `!!document.querySelector(".error-page")`) {
		t.Error("a full error page was injected into the control room")
	}
	b.assertNotReloaded(t)

	// The link signs in again and comes back to the same page.
	b.click(t, "#session-ended-link")
	b.do(t, chromedp.WaitVisible(chromedp.CSS(`input[name="password"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="email"]`), u.Email),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), testPassword),
		chromedp.Submit(chromedp.CSS(`input[name="password"]`)),
		chromedp.WaitVisible(chromedp.CSS("#admin-agents")))
	if loc, _ := chromedp.Run(b.ctx, chromedp.Location()); !strings.HasSuffix(loc, "/admin?q=acme") {
		t.Errorf("after signing in again the browser is at %s, want /admin?q=acme", loc)
	}
}

// restartableServer serves a handler on one address that can go away and
// come back, like a server restart: while it is down, connections are
// refused and open streams are cut.
type restartableServer struct {
	t    *testing.T
	h    http.Handler
	addr string
	mu   sync.Mutex
	srv  *http.Server
}

func newRestartableServer(t *testing.T, h http.Handler) *restartableServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rs := &restartableServer{t: t, h: h, addr: ln.Addr().String()}
	rs.serve(ln)
	t.Cleanup(rs.stop)
	return rs
}

func (rs *restartableServer) URL() string { return "http://" + rs.addr }

func (rs *restartableServer) serve(ln net.Listener) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.srv = &http.Server{Handler: rs.h, ReadHeaderTimeout: 5 * time.Second}
	srv := rs.srv
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			rs.t.Errorf("serving: %v", err)
		}
	}()
}

func (rs *restartableServer) stop() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.srv != nil {
		_ = rs.srv.Close()
		rs.srv = nil
	}
}

func (rs *restartableServer) start() {
	ln, err := net.Listen("tcp", rs.addr)
	if err != nil {
		rs.t.Fatalf("listening again on %s: %v", rs.addr, err)
	}
	rs.serve(ln)
}

// waitClients waits until the hub has n open streams.
func waitClients(t *testing.T, hub *Hub, n int64) {
	t.Helper()
	released := make(chan struct{}, 64)
	hub.setOnRelease(func() {
		select {
		case released <- struct{}{}:
		default:
		}
	})
	defer hub.setOnRelease(nil)
	deadline := time.After(10 * time.Second)
	for hub.Clients() != n {
		select {
		case <-released:
		case <-deadline:
			t.Fatalf("the hub has %d streams, want %d", hub.Clients(), n)
		}
	}
}

// The page says whether it is live: reconnecting while the server is down,
// live again within two seconds of its restart, however long the outage.
func TestBrowserLiveIndicatorReconnectsFast(t *testing.T) {
	b := newBrowser(t)
	f, _ := liveFixture(t, nil)
	rs := newRestartableServer(t, f.srv.Config.Handler)
	u := f.createUser(t, "ops@hossagent.test", db.RoleAdmin)
	b.signIn(t, rs.URL(), u.Email)
	b.waitText(t, "#live-status", "live")
	b.markPage(t)
	if got := evalJS[string](t, b, `document.getElementById("live-status").getAttribute("aria-live")`); got != "polite" {
		t.Errorf("live status aria-live = %q", got)
	}

	rs.stop()
	b.waitText(t, "#live-status", "reconnecting")
	// Long enough an outage for an exponential back-off to have grown
	// (0.5, 1, 2, 4 s …): the page keeps trying every second, and says so.
	for range 3 {
		evalJS[bool](t, b, `(window.__tries = 0, document.addEventListener("htmx:sse:error", () => window.__tries++, {once: true}), true)`)
		b.waitJSWithin(t, `window.__tries > 0`, 5*time.Second)
	}
	b.waitText(t, "#live-status", "reconnecting")

	rs.start()
	restarted := time.Now()
	b.waitJSWithin(t, `document.getElementById("live-status").dataset.state === "live"`, 5*time.Second)
	if took := time.Since(restarted); took > 2*time.Second {
		t.Errorf("live again %s after the restart, want under 2 s", took.Round(time.Millisecond))
	}
	b.assertNotReloaded(t)
}

// Pause closes the stream and applies nothing; resume catches up.
func TestBrowserPauseStopsLiveUpdates(t *testing.T) {
	b := newBrowser(t)
	f, engine := liveFixture(t, nil)
	u := f.createUser(t, "ops@hossagent.test", db.RoleAdmin)
	b.signIn(t, f.srv.URL, u.Email)
	b.waitText(t, "#live-status", "live")
	b.waitText(t, "#agent-ops", "Runs 0")
	b.markPage(t)
	evalJS[bool](t, b, `(window.__swaps = 0, document.addEventListener("htmx:after:swap", () => window.__swaps++), true)`)

	b.click(t, "#live-toggle")
	b.waitText(t, "#live-status", "paused")
	if got := evalJS[string](t, b, `document.getElementById("live-toggle").getAttribute("aria-pressed") + " " + document.getElementById("live-toggle").textContent`); got != "true Resume live updates" {
		t.Errorf("the toggle while paused = %q", got)
	}
	waitClients(t, f.server.hub, 0) // the stream is closed

	// Another reader's stream proves the update is sent.
	f.createUser(t, "watcher@hossagent.test", db.RoleAdmin)
	_, msgs := openStream(t, f.signIn(t, "watcher@hossagent.test"), f.srv.URL+"/events/admin")
	nextMessage(t, msgs) // the full picture
	if _, err := engine.Ask(context.Background(), agents.Ops, db.TriggerManual, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for {
		m := nextMessage(t, msgs)
		if !strings.Contains(m.data, `hx-target="#admin-agents"`) {
			continue
		}
		if card := strings.Join(strings.Fields(partial(t, m, "admin-agents").Find("#agent-ops").Text()), ""); strings.Contains(card, "Runs1") {
			break
		}
	}
	if got := b.text(t, "#agent-ops"); !strings.Contains(got, "Runs 0") {
		t.Errorf("the paused page applied an update: %q", got)
	}
	if n := evalJS[int](t, b, `window.__swaps`); n != 0 {
		t.Errorf("the paused page swapped %d times", n)
	}

	b.click(t, "#live-toggle")
	b.waitText(t, "#live-status", "live")
	b.waitText(t, "#agent-ops", "Runs 1") // the resumed stream's first message catches up
	b.assertNotReloaded(t)
}

// The invoice page is live: after "Mark paid by hand" its fields say paid
// too, and the action's result stays on screen.
func TestBrowserInvoicePageFieldsFollowAnAction(t *testing.T) {
	b := newBrowser(t)
	b.acceptDialogs(t)
	f, _ := liveFixture(t, nil)
	f.seed(t)
	u := f.createUser(t, "ops@hossagent.test", db.RoleAdmin)
	b.signIn(t, f.srv.URL, u.Email)
	var inv db.Invoice
	if err := f.store.Bun().NewSelect().Model(&inv).Where("status = 'open'").Limit(1).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.do(t, chromedp.Navigate(f.srv.URL+"/admin/invoices/"+strconv.FormatInt(inv.ID, 10)), chromedp.WaitVisible(chromedp.CSS("#record-fields")))
	b.waitText(t, "#live-status", "live")
	b.waitText(t, "#record-fields", "open")
	b.markPage(t)

	b.do(t, chromedp.SendKeys(chromedp.CSS("#invoice-action-reason"), "cash in hand"))
	b.click(t, "#invoice-mark-paid")
	b.waitText(t, "#invoice-actions .result", "paid")
	b.waitJSWithin(t, `/\bpaid\b/i.test(document.querySelector("#record-fields dd .badge").textContent)`, 15*time.Second)
	b.waitJSWithin(t, `document.querySelector("#record-fields").innerText.includes("Paid") &&
		!/^\s*—\s*$/.test([...document.querySelectorAll("#record-fields dt")].find(d => d.textContent === "Paid").nextElementSibling.textContent)`, 15*time.Second)
	if got := b.text(t, "#invoice-actions"); !strings.Contains(got, "only an open invoice") || !strings.Contains(strings.ToLower(got), "paid") {
		t.Errorf("the actions panel after the action = %q", got)
	}
	if got := evalJS[bool](t, b, `!!document.querySelector("#invoice-actions .result")`); !got {
		t.Error("the live update wiped the action's result")
	}
	b.assertNotReloaded(t)
}
