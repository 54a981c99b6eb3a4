package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/hossagent/hossagent/db"
)

// The accessibility check and the layout check: every page of the app, in
// the test browser. axe-core is vendored, test-only, in testdata/axe (see
// its vendor.sh); the test refuses a file that does not match SHA256SUMS.

var axeSource = sync.OnceValues(func() (string, error) {
	src, err := os.ReadFile("testdata/axe/axe.min.js")
	if err != nil {
		return "", err
	}
	sums, err := os.ReadFile("testdata/axe/SHA256SUMS")
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(src)
	want, _, _ := strings.Cut(strings.TrimSpace(string(sums)), " ")
	if hex.EncodeToString(sum[:]) != want {
		return "", fmt.Errorf("testdata/axe/axe.min.js does not match SHA256SUMS: re-vendor it with testdata/axe/vendor.sh")
	}
	return string(src), nil
})

// sitePage is one page to check: its path and an element that shows it
// has rendered.
type sitePage struct{ name, path, ready string }

// siteFixture is a live control room with a business in it: every kind of
// record, so that every page has rows, and an operator signed in.
func siteFixture(t *testing.T) (*fixture, *browser, []sitePage) {
	t.Helper()
	b := newBrowser(t)
	f, _ := liveFixture(t, map[string]string{"OUTREACH_REVIEW": "true"})
	f.seed(t)
	f.seedWalkThrough(t)
	ch := f.seedChain(t)
	ctx := context.Background()
	var ids struct{ customer, task, invoice int64 }
	for q, dst := range map[string]*int64{
		"SELECT id FROM customers ORDER BY id LIMIT 1":                      &ids.customer,
		"SELECT id FROM tasks ORDER BY id LIMIT 1":                          &ids.task,
		"SELECT id FROM invoices WHERE status = 'open' ORDER BY id LIMIT 1": &ids.invoice,
	} {
		if err := f.store.Bun().NewRaw(q).Scan(ctx, dst); err != nil {
			t.Fatal(err)
		}
	}
	// Anonymous pages first, before the sign-in.
	anon := []sitePage{
		{"login", "/login", "form"},
		{"portal sign-in", "/portal", "form"},
		{"not found", "/nope", ".error-page"},
	}
	pages := []sitePage{
		{"dashboard", "/", "#dash-cards"},
		{"admin", "/admin", "#admin-agents"},
		{"activity", "/admin/activity", "#activity-work"},
		{"lead", fmt.Sprintf("/admin/leads/%d", ch.lead.ID), "main"},
		{"customer", fmt.Sprintf("/admin/customers/%d", ids.customer), "main"},
		{"task", fmt.Sprintf("/admin/tasks/%d", ids.task), "main"},
		{"invoice", fmt.Sprintf("/admin/invoices/%d", ids.invoice), "#invoice-actions"},
		{"client mail", "/admin/client-mail", "main"},
		{"api tokens", "/admin/api-tokens", "main"},
		{"users", "/admin/users", "main"},
		{"password", "/account/password", "form"},
		{"plans", "/admin/plans", "main"},
		{"sequences", "/admin/sequences", "main"},
		{"drafts", "/admin/outreach/drafts", "main"},
		{"suppressions", "/admin/suppressions", "main"},
		{"cycle log", "/admin/runs", "main"},
		{"audit log", "/admin/audit", "main"},
		{"portal", "/portal/" + f.token, "#portal-outstanding"},
		{"portal invoice", fmt.Sprintf("/portal/invoices/%d", ids.invoice), "main"},
	}
	return f, b, append(anon, pages...)
}

// visitAll opens each page (signing in after the anonymous ones) and calls
// check on it.
func visitAll(t *testing.T, f *fixture, b *browser, pages []sitePage, check func(p sitePage)) {
	t.Helper()
	signedIn := false
	for _, p := range pages {
		if !signedIn && !strings.HasPrefix(p.path, "/login") && !strings.HasPrefix(p.path, "/portal") && p.path != "/nope" {
			u := f.createUser(t, "ops@hossagent.test", db.RoleAdmin)
			b.signIn(t, f.srv.URL, u.Email)
			signedIn = true
		}
		b.do(t, chromedp.Navigate(f.srv.URL+p.path), chromedp.WaitVisible(chromedp.CSS(p.ready)))
		check(p)
	}
}

type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// runAxe runs axe-core on the open page against WCAG 2.2 A and AA and
// returns its serious and critical violations.
func (b *browser) runAxe(t *testing.T) []axeViolation {
	t.Helper()
	src, err := axeSource()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`typeof axe !== "undefined" || (() => { `+src+`; return true })()`)); err != nil {
		t.Fatalf("loading axe: %v", err)
	}
	const run = `axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]}, resultTypes: ["violations"]})
		.then(r => r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
			.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + " — " + (n.failureSummary || "").split("\n").slice(1, 2).join(""))})))`
	got, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]axeViolation](run, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("running axe: %v", err)
	}
	return got
}

// TestBrowserAccessibilityEveryPage: axe-core finds no serious or critical
// WCAG 2.2 AA violation on any page, at desktop and phone widths.
func TestBrowserAccessibilityEveryPage(t *testing.T) {
	f, b, pages := siteFixture(t)
	visitAll(t, f, b, pages, func(p sitePage) {
		for _, width := range []int64{1400, 390} {
			b.do(t, chromedp.EmulateViewport(width, 900))
			for _, v := range b.runAxe(t) {
				t.Errorf("%s (%s) at %d px: %s [%s, %s]:\n  %s", p.name, p.path, width, v.Help, v.ID, v.Impact, strings.Join(v.Nodes, "\n  "))
			}
		}
	})
}

// overflowJS lists what sticks out at the open width: the document wider
// than the viewport, and any card, card figure or panel whose content is
// wider than its box (its text runs out of it or under its neighbour).
const overflowJS = `(() => {
	const out = [];
	const de = document.documentElement;
	if (de.scrollWidth > de.clientWidth) out.push("document: " + de.scrollWidth + " > " + de.clientWidth);
	const name = e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className && typeof e.className === "string" ? "." + e.className.trim().split(/\s+/).join(".") : "");
	for (const e of document.querySelectorAll(".card, .card .value, .card .label, .card .sub, section.panel, .agent-card, .portal-headline, .headline-amount, .record-fields dd")) {
		if (e.closest("[hidden]") || e.closest(".table-scroll")) continue;
		if (e.scrollWidth > e.clientWidth + 1) out.push(name(e) + " " + JSON.stringify(e.innerText.slice(0, 60)) + ": " + e.scrollWidth + " > " + e.clientWidth);
	}
	return out;
})()`

// TestBrowserLayoutEveryWidth: at 320, 390, 1400 and 2560 px no page is
// wider than the screen and no figure or text runs out of its card or
// panel.
func TestBrowserLayoutEveryWidth(t *testing.T) {
	f, b, pages := siteFixture(t)
	visitAll(t, f, b, pages, func(p sitePage) {
		for _, width := range []int64{320, 390, 1400, 2560} {
			var opts []chromedp.EmulateViewportOption
			if width < 600 {
				opts = append(opts, chromedp.EmulateMobile)
			}
			b.do(t, chromedp.EmulateViewport(width, 900, opts...))
			bad, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](overflowJS))
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range bad {
				t.Errorf("%s (%s) at %d px: %s", p.name, p.path, width, s)
			}
		}
	})
}
