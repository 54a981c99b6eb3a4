package db

import (
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"testing"
)

func TestProfitOnTheFixtureIsExact(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	f := seed(t, d)
	want := map[string]ProfitTotal{}
	byCustomer := map[[2]any]CustomerProfit{}
	// A done task adds its reward and cost; a failed one only its cost.
	addWork := func(task *Task) {
		reward := task.RewardCents
		if task.Status == TaskFailed {
			reward = 0
		}
		tot := want[task.Currency]
		tot.Currency = task.Currency
		tot.RewardCents += reward
		tot.CostCents += task.CostCents
		tot.ProfitCents += reward - task.CostCents
		want[task.Currency] = tot
		k := [2]any{task.CustomerID, task.Currency}
		cp := byCustomer[k]
		cp.RewardCents += reward
		cp.CostCents += task.CostCents
		cp.ProfitCents += reward - task.CostCents
		byCustomer[k] = cp
	}
	for _, task := range append(append(append(slices.Clone(f.doneUSD), f.negative), f.doneEUR...), f.failed...) {
		addWork(task)
	}
	for _, inv := range f.invoices {
		if inv.Status == InvoicePaid {
			tot := want[inv.Currency]
			tot.PaidCents += inv.AmountCents
			want[inv.Currency] = tot
			k := [2]any{inv.CustomerID, inv.Currency}
			cp := byCustomer[k]
			cp.PaidCents += inv.AmountCents
			byCustomer[k] = cp
		}
	}
	totals, err := d.ProfitTotals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(totals) != 2 || totals[0] != want["eur"] || totals[1] != want["usd"] {
		t.Errorf("ProfitTotals = %+v, want eur %+v usd %+v", totals, want["eur"], want["usd"])
	}
	rows, err := d.ProfitByCustomer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(byCustomer) {
		t.Errorf("ProfitByCustomer has %d rows, want %d", len(rows), len(byCustomer))
	}
	for _, r := range rows {
		w := byCustomer[[2]any{r.CustomerID, r.Currency}]
		if r.RewardCents != w.RewardCents || r.CostCents != w.CostCents || r.ProfitCents != w.ProfitCents || r.PaidCents != w.PaidCents || r.Company == "" {
			t.Errorf("customer %d %s = %+v, want %+v", r.CustomerID, r.Currency, r, w)
		}
	}
	// Customer 0 has u1, u26 and the negative-profit task: its profit is not clamped.
	if cp := byCustomer[[2]any{f.customers[0].ID, "usd"}]; cp.ProfitCents != (600-50)+(3100-1300)+(1000-2500) {
		t.Errorf("customer 0 profit = %d", cp.ProfitCents)
	}
}

func TestProfitTotalsOnASeededRandomSetAreExact(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	r := mrand.New(mrand.NewPCG(42, 7))
	currencies := []string{"usd", "eur", "gbp"}
	var customers []*Customer
	for n := range 8 {
		c, _, err := d.CreateCustomer(ctx, nil, NewCustomer{Company: fmt.Sprintf("R%d", n), ContactEmail: fmt.Sprintf("r%d@r.example", n), Plan: "p"}, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		customers = append(customers, c)
	}
	want := map[string]*ProfitTotal{}
	for _, cur := range currencies {
		want[cur] = &ProfitTotal{Currency: cur}
	}
	for i := range 300 {
		cur := currencies[r.IntN(len(currencies))]
		status := []string{TaskDone, TaskDone, TaskPending, TaskFailed}[r.IntN(4)]
		reward, cost := r.Int64N(100_000_00), r.Int64N(120_000_00)
		task := newTask(i, customers[r.IntN(len(customers))].ID, status, cur, reward, cost)
		insert(t, d.Bun(), task)
		if status == TaskFailed { // earns nothing, but its attempts were paid for
			want[cur].CostCents += cost
			want[cur].ProfitCents -= cost
		}
		if status == TaskDone {
			want[cur].RewardCents += reward
			want[cur].CostCents += cost
			want[cur].ProfitCents += reward - cost
			if r.IntN(2) == 0 {
				inv := &Invoice{CustomerID: task.CustomerID, Number: ptr(fmt.Sprintf("INV-%06d", i+1)), Currency: cur,
					AmountCents: reward, Status: InvoicePaid, PaidAt: ptr(fixedNow), CreatedAt: fixedNow, UpdatedAt: fixedNow}
				insert(t, d.Bun(), inv)
				insert(t, d.Bun(), &InvoiceLine{InvoiceID: inv.ID, TaskID: task.ID, AmountCents: reward, CreatedAt: fixedNow})
				want[cur].PaidCents += reward
			}
		}
	}
	totals, err := d.ProfitTotals(ctx)
	if err != nil || len(totals) != 3 {
		t.Fatalf("ProfitTotals = %+v, %v", totals, err)
	}
	for _, got := range totals {
		if got != *want[got.Currency] {
			t.Errorf("%s = %+v, want %+v", got.Currency, got, *want[got.Currency])
		}
	}
	rows, err := d.ProfitByCustomer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sum := map[string]ProfitTotal{}
	for _, row := range rows {
		s := sum[row.Currency]
		s.Currency = row.Currency
		s.RewardCents += row.RewardCents
		s.CostCents += row.CostCents
		s.ProfitCents += row.ProfitCents
		s.PaidCents += row.PaidCents
		sum[row.Currency] = s
	}
	for _, cur := range currencies {
		if sum[cur] != *want[cur] {
			t.Errorf("ProfitByCustomer sums in %s to %+v, want %+v", cur, sum[cur], *want[cur])
		}
	}
	requireAllInvariants(t, d, fixedNow)
}
