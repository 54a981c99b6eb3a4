package app

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

// selCardValue is the value of the card labelled label inside sel.
func selCardValue(sel *goquery.Selection, label string) string {
	value := "(no card)"
	sel.Find(".card").Each(func(_ int, s *goquery.Selection) {
		if text(s.Find(".label")) == label {
			value = text(s.Find(".value"))
		}
	})
	return value
}

// seedWalkThrough adds to the fixture's business (99.00 collected at a cost
// of 1.00, 150.00 open and not due) the walk-through that showed $9,180 of
// "profit" against $810 collected: 8,000.00 of done work on a void
// invoice, 500.00 refunded, 300.00 open and 45 days overdue (cost 20.00),
// 40.00 of done work not billed, and a failed task that earns nothing.
// It returns the overdue invoice's id.
func (f *fixture) seedWalkThrough(t *testing.T) int64 {
	t.Helper()
	ctx := context.Background()
	b := f.store.Bun()
	var customerID int64
	if err := b.NewSelect().Table("customers").Column("id").Limit(1).Scan(ctx, &customerID); err != nil {
		t.Fatal(err)
	}
	done := testNow.Add(-50 * 24 * time.Hour)
	task := func(status string, reward, cost int64) *db.Task {
		tk := &db.Task{CustomerID: customerID, Kind: "market_research", Status: status, Currency: "usd",
			RewardCents: reward, CostCents: cost, ProfitCents: reward - cost, CreatedAt: done, UpdatedAt: done}
		if status == db.TaskDone {
			tk.CompletedAt = &done
		}
		if _, err := b.NewInsert().Model(tk).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		return tk
	}
	var overdueID int64
	for i, inv := range []struct {
		status      string
		reward, due int64 // due: days from testNow
		cost        int64
	}{{db.InvoiceVoid, 800_000, -30, 7000}, {db.InvoiceRefunded, 50_000, -40, 3000}, {db.InvoiceOpen, 30_000, -45, 2000}} {
		tk := task(db.TaskDone, inv.reward, inv.cost)
		number, due := "INV-WALK-"+string(rune('A'+i)), testNow.Add(time.Duration(inv.due)*24*time.Hour)
		row := &db.Invoice{CustomerID: customerID, Number: &number, Currency: "usd", AmountCents: inv.reward, Status: inv.status,
			IssuedAt: &done, DueAt: &due, CreatedAt: done, UpdatedAt: done}
		if inv.status == db.InvoiceRefunded {
			row.PaidAt = &done
		}
		if _, err := b.NewInsert().Model(row).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		line := &db.InvoiceLine{InvoiceID: row.ID, TaskID: tk.ID, AmountCents: inv.reward, CreatedAt: done}
		if _, err := b.NewInsert().Model(line).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if inv.status == db.InvoiceOpen {
			overdueID = row.ID
		}
	}
	task(db.TaskDone, 4000, 100)
	task(db.TaskFailed, 5555, 3333)
	return overdueID
}

// TestDashboardShowsCollectedMoneyAndProfitOnIt: the dashboard and the
// control room show what was collected and the profit on it, the open
// money by how late it is, unbilled work, and void work written off apart,
// never the list value of all done work as profit; and the live stream
// carries the same cards when a payment lands.
func TestDashboardShowsCollectedMoneyAndProfitOnIt(t *testing.T) {
	bus := agents.NewBus()
	f := newFixture(t, nil, func(d *Deps) { d.Live = NewHub(bus) })
	f.seed(t)
	overdue := f.seedWalkThrough(t)
	// The LLM sorted two replies: the cost is an expense of the profit on
	// collected work, and said on its card.
	if _, err := f.store.Bun().ExecContext(context.Background(), `INSERT INTO reply_sortings (model, class, reason, cost_cents, currency, created_at)
		VALUES ('gpt-4o-mini', 'interested', 'asks for a call', 3, 'usd', ?), ('gpt-4o-mini', '', 'unavailable: timeout', 0, 'usd', ?)`, testNow, testNow); err != nil {
		t.Fatal(err)
	}
	f.signInAs(t, db.RoleAdmin)

	want := map[string]string{
		"Collected":           "$99.00",
		"Profit on collected": "$97.97", // 99.00 - 1.00 - 0.03 of LLM reply sorting
		"Outstanding":         "$450.00",
		"Unbilled work":       "$40.00",
		"Written off":         "$8,000.00",
		// 150.00 + 99.00 + 8,000.00 + 500.00 + 300.00 + 40.00: not profit.
		"Work done (list)": "$9,089.00",
	}
	_, dash, _ := f.get(t, "/")
	_, admin, _ := f.get(t, "/admin")
	for page, region := range map[string]*goquery.Selection{"dashboard": dash.Find("#dash-cards"), "control room": admin.Find("#admin-cards")} {
		for label, value := range want {
			if got := selCardValue(region, label); got != value {
				t.Errorf("%s: %s = %q, want %q", page, label, got, value)
			}
		}
		if got := selCardValue(region, "Profit"); got != "(no card)" {
			t.Errorf("%s still shows a card called Profit: %q", page, got)
		}
		var aging []string
		region.Find(".sub.aging").Each(func(_ int, s *goquery.Selection) { aging = append(aging, text(s)) })
		if len(aging) != 4 || aging[0] != "Not yet due $150.00" || aging[1] != "0–30 days late $0.00" ||
			aging[2] != "31–60 days late $300.00" || aging[3] != "Over 60 days late $0.00" {
			t.Errorf("%s: aging = %q", page, aging)
		}
		if got := text(region.Find(".card").FilterFunction(func(_ int, s *goquery.Selection) bool {
			return text(s.Find(".label")) == "Collected"
		}).Find(".sub")); !strings.Contains(got, "refunded $500.00, not counted") {
			t.Errorf("%s: collected details = %q", page, got)
		}
		if got := text(region.Find(".card").FilterFunction(func(_ int, s *goquery.Selection) bool {
			return text(s.Find(".label")) == "Profit on collected"
		}).Find(".sub")); !strings.Contains(got, "replies sorted by the LLM: $0.03") {
			t.Errorf("%s: profit details = %q", page, got)
		}
	}

	// The overdue invoice is paid: collected and its profit move, live.
	_, msgs := openStream(t, f.client, f.srv.URL+"/events/dashboard")
	nextMessage(t, msgs)
	if _, err := f.store.Bun().NewUpdate().Table("invoices").Set("status = 'paid', paid_at = ?", testNow).
		Where("id = ?", overdue).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	bus.Publish(agents.Event{Kind: agents.EventMoneyChanged, Agent: agents.Billing})
	cards := partial(t, nextMessage(t, msgs), "dash-cards")
	for label, value := range map[string]string{
		"Collected": "$399.00", "Profit on collected": "$377.97", "Outstanding": "$150.00", "Written off": "$8,000.00",
	} {
		if got := selCardValue(cards, label); got != value {
			t.Errorf("live: %s = %q, want %q", label, got, value)
		}
	}
}
