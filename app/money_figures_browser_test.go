package app

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/hossagent/hossagent/db"
)

// TestBrowserMoneyCardsFitAt1400: at 1,400 px, with seven-figure amounts
// and totals in two currencies, no money card's figure runs out of its
// card, on the dashboard or in the control room.
func TestBrowserMoneyCardsFitAt1400(t *testing.T) {
	b := newBrowser(t)
	f := newFixture(t, nil)
	f.seed(t)
	f.seedWalkThrough(t)
	ctx := context.Background()
	// Every figure in the millions, and every one also in euros.
	mustExec := func(q string) {
		t.Helper()
		if _, err := f.store.Bun().ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	mustExec("UPDATE tasks SET reward_cents = reward_cents * 1000 + 99, profit_cents = reward_cents * 1000 + 99 - cost_cents")
	mustExec("UPDATE invoice_lines SET amount_cents = (SELECT reward_cents FROM tasks WHERE tasks.id = task_id)")
	mustExec("UPDATE invoices SET amount_cents = (SELECT SUM(amount_cents) FROM invoice_lines WHERE invoice_id = invoices.id)")
	mustExec(`INSERT INTO tasks (customer_id, kind, status, currency, reward_cents, cost_cents, profit_cents, completed_at, created_at, updated_at)
		SELECT customer_id, kind, status, 'eur', reward_cents, cost_cents, profit_cents, completed_at, created_at, updated_at FROM tasks`)
	mustExec(`INSERT INTO invoices (customer_id, number, currency, amount_cents, status, issued_at, due_at, paid_at, created_at, updated_at)
		SELECT customer_id, number || '-EUR', 'eur', amount_cents, status, issued_at, due_at, paid_at, created_at, updated_at FROM invoices`)
	u := f.createUser(t, "ops@hossagent.test", db.RoleAdmin)
	b.signIn(t, f.srv.URL, u.Email)
	const overflowing = `[...document.querySelectorAll(%q)].filter(c =>
		c.scrollWidth > c.clientWidth || [...c.querySelectorAll(".value")].some(v => v.scrollWidth > v.clientWidth)
	).map(c => c.querySelector(".label").innerText + ": " + c.innerText.replace(/\s+/g, " "))`
	for path, region := range map[string]string{"/": "#dash-cards", "/admin": "#admin-cards"} {
		b.do(t, chromedp.Navigate(f.srv.URL+path), chromedp.WaitVisible(chromedp.CSS(region)))
		bad, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](fmt.Sprintf(overflowing, region+" .card")))
		if err != nil {
			t.Fatal(err)
		}
		if len(bad) > 0 {
			t.Errorf("%s: figures overflow their cards at 1400 px: %q", path, bad)
		}
		cards, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, region+" .card .value")))
		if err != nil {
			t.Fatal(err)
		}
		if cards < 12 {
			t.Errorf("%s: %d money lines, want two currencies on each of six cards", path, cards)
		}
		b.screenshot(t, "money-cards"+strings.ReplaceAll(path, "/", "-"), 1400)
	}
}
