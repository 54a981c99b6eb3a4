package db

import (
	"context"
	"crypto/rand"
	"testing"
)

// A failed task delivered nothing: it earns no reward, and its profit is
// minus what its attempts cost, whatever price it was sold at. That cost
// was real money (an LLM call that was paid for), so every cost and profit
// sum counts it; a task still pending or running counts when it ends.
func TestFailedTaskEarnsNothingButItsCostCounts(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	c, _, err := d.CreateCustomer(ctx, nil, NewCustomer{Company: "Acme", ContactEmail: "ops@acme.example", Plan: "p"}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	done := newTask(1, c.ID, TaskDone, "usd", 10000, 1000)
	failed := newTask(2, c.ID, TaskFailed, "usd", 5000, 300)
	failedEUR := newTask(3, c.ID, TaskFailed, "eur", 7000, 250) // a currency with failed work only
	pending := newTask(4, c.ID, TaskPending, "usd", 2000, 40)   // an earlier attempt cost 40: counted when it ends
	insert(t, d.Bun(), done, failed, failedEUR, pending)

	if got := failed.Earned(); got != usd(0) {
		t.Errorf("failed task earns %v, want nothing", got)
	}
	if got := failed.Profit(); got != usd(-300) {
		t.Errorf("failed task profit = %v, want -$3.00 (its cost)", got)
	}
	if got, earned := done.Profit(), done.Earned(); got != usd(9000) || earned != usd(10000) {
		t.Errorf("done task profit = %v, earned %v", got, earned)
	}
	if got := pending.Earned(); got != usd(2000) {
		t.Errorf("pending task will earn %v, want its price", got)
	}

	s, err := d.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	assertTotals(t, "Reward", s.Reward, Totals{usd(10000)})
	assertTotals(t, "Cost", s.Cost, Totals{eur(250), usd(1300)})
	assertTotals(t, "Profit", s.Profit, Totals{eur(-250), usd(8700)})

	totals, err := d.ProfitTotals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []ProfitTotal{
		{Currency: "eur", RewardCents: 0, CostCents: 250, ProfitCents: -250},
		{Currency: "usd", RewardCents: 10000, CostCents: 1300, ProfitCents: 8700},
	}
	if len(totals) != 2 || totals[0] != want[0] || totals[1] != want[1] {
		t.Errorf("ProfitTotals = %+v, want %+v", totals, want)
	}
	rows, err := d.ProfitByCustomer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	detail, err := d.CustomerDetail(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][]CustomerProfit{"ProfitByCustomer": rows, "CustomerDetail": detail.Profit} {
		if len(got) != 2 {
			t.Fatalf("%s = %+v, want eur and usd", name, got)
		}
		for i, w := range want {
			g := got[i]
			if g.Currency != w.Currency || g.RewardCents != w.RewardCents || g.CostCents != w.CostCents || g.ProfitCents != w.ProfitCents {
				t.Errorf("%s %s = %+v, want %+v", name, w.Currency, g, w)
			}
		}
	}
	requireAllInvariants(t, d, fixedNow)
}
