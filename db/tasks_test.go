package db

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"testing"
	"time"
)

// requireAllInvariants fails the test unless every invariant holds at now.
func requireAllInvariants(t *testing.T, d *DB, now time.Time) {
	t.Helper()
	for _, r := range mustCheck(t, d, now) {
		if !r.OK() {
			t.Errorf("invariant %d (%s) broken: %q", r.Number, r.Name, r.Violations)
		}
	}
}

func loadFulfilmentTask(t *testing.T, d *DB, id int64) *Task {
	t.Helper()
	task := new(Task)
	if err := d.Bun().NewSelect().Model(task).Where("t.id = ?", id).Scan(context.Background()); err != nil {
		t.Fatalf("load task %d: %v", id, err)
	}
	return task
}

func TestConvertLeadOutcomes(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	f := seed(t, d)
	tasks := []NewTask{{Kind: "brief", Description: "Brief", Currency: "usd", RewardCents: 15000}}

	responded, err := d.RespondedLeads(ctx, 10)
	if err != nil || len(responded) != 5 || responded[0].ID != f.leads[18].ID {
		t.Fatalf("RespondedLeads = %d leads, first %v, %v", len(responded), responded, err)
	}

	conv, err := d.ConvertLead(ctx, f.leads[18].ID, "starter", tasks, fixedNow, rand.Reader)
	if err != nil || conv.Outcome != ConversionCreated || len(conv.Tasks) != 1 || conv.Tasks[0].Status != TaskPending {
		t.Fatalf("convert lead 19: %+v, %v", conv, err)
	}
	if c, err := d.CustomerByPortalToken(ctx, conv.PortalToken); err != nil || c.ID != conv.Customer.ID || *c.LeadID != f.leads[18].ID {
		t.Errorf("portal token resolves to %+v, %v", c, err)
	}
	if again, err := d.ConvertLead(ctx, f.leads[18].ID, "starter", tasks, fixedNow, rand.Reader); err != nil || again.Outcome != ConversionSkipped {
		t.Errorf("converting twice: %+v, %v", again, err)
	}
	if fresh, err := d.ConvertLead(ctx, f.leads[0].ID, "starter", tasks, fixedNow, rand.Reader); err != nil || fresh.Outcome != ConversionSkipped {
		t.Errorf("converting a new lead: %+v, %v", fresh, err)
	}

	mustExec(t, d.Bun(), "UPDATE leads SET email = ? WHERE id = ?", f.customers[7].ContactEmail, f.leads[19].ID)
	conv, err = d.ConvertLead(ctx, f.leads[19].ID, "starter", tasks, fixedNow, rand.Reader)
	if err != nil || conv.Outcome != ConversionAlreadyCustomer || conv.Customer.ID != f.customers[7].ID || conv.PortalToken != "" {
		t.Errorf("lead with a customer's e-mail: %+v, %v", conv, err)
	}
	if n := countRows(t, d, "SELECT COUNT(*) FROM leads WHERE id = ? AND status = 'converted' AND converted_at IS NOT NULL", f.leads[19].ID); n != 1 {
		t.Error("the already-customer lead is not converted")
	}

	if _, err := d.ConvertLead(ctx, 99999, "starter", tasks, fixedNow, rand.Reader); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing lead: %v", err)
	}
	requireAllInvariants(t, d, fixedNow)
}

func TestClaimTasksOldestFirstNeverTwice(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	f := seed(t, d)
	var got []int64
	for _, want := range []int{5, 5, 2, 0} {
		claimed, err := d.ClaimTasks(ctx, fixedNow, 5, 10*time.Minute)
		if err != nil || len(claimed) != want {
			t.Fatalf("claim: %d tasks, %v; want %d", len(claimed), err, want)
		}
		for _, c := range claimed {
			if c.Status != TaskRunning || c.Attempts != 1 || !c.LeaseExpiresAt.Equal(fixedNow.Add(10*time.Minute)) ||
				!c.StartedAt.Equal(fixedNow) || c.Company == "" || c.ContactEmail == "" {
				t.Errorf("claimed task = %+v", c)
			}
			got = append(got, c.ID)
		}
	}
	var want []int64
	for _, p := range f.pending {
		want = append(want, p.ID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("claimed %v, want the pending tasks oldest first %v", got, want)
	}
	requireAllInvariants(t, d, fixedNow)
}

func TestClaimedTaskCarriesTheLeadsData(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	f := seed(t, d)
	// Customer 0 came from lead 24.
	mustExec(t, d.Bun(), "UPDATE tasks SET status = 'failed' WHERE status = 'pending'")
	task := newTask(100, f.customers[0].ID, TaskPending, "usd", 100, 0)
	insert(t, d.Bun(), task)
	claimed, err := d.ClaimTasks(ctx, fixedNow, 10, time.Minute)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %+v, %v", claimed, err)
	}
	c, l := claimed[0], f.leads[23]
	if c.Company != "Customer 00" || c.ContactName != l.Name || c.Niche != l.Niche || c.Website != l.Website {
		t.Errorf("claimed = %+v, lead %+v", c, l)
	}
}

func TestFinishingAnAttemptIsGuardedByItsNumber(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	f := seed(t, d)
	claimed, err := d.ClaimTasks(ctx, fixedNow, 3, 10*time.Minute)
	if err != nil || len(claimed) != 3 {
		t.Fatal(err)
	}
	done, retried, released := claimed[0], claimed[1], claimed[2]

	if ok, err := d.CompleteTask(ctx, done.ID, 2, "x", 1, fixedNow); ok || err != nil {
		t.Errorf("completing another attempt: %v, %v", ok, err)
	}
	if ok, err := d.CompleteTask(ctx, done.ID, 1, "report", 9000, fixedNow); !ok || err != nil {
		t.Fatalf("CompleteTask: %v, %v", ok, err)
	}
	if ok, _ := d.CompleteTask(ctx, done.ID, 1, "again", 1, fixedNow); ok {
		t.Error("a done task was completed twice")
	}
	got := loadFulfilmentTask(t, d, done.ID)
	if got.Status != TaskDone || got.CostCents != 9000 || got.ProfitCents != f.pending[0].RewardCents-9000 || got.Result != "report" {
		t.Errorf("done task = %+v", got)
	}

	if s, err := d.FailTaskAttempt(ctx, retried.ID, 1, 3, "boom", 0, fixedNow); s != TaskPending || err != nil {
		t.Errorf("FailTaskAttempt = %q, %v", s, err)
	}
	if s, _ := d.FailTaskAttempt(ctx, retried.ID, 1, 3, "boom", 0, fixedNow); s != "" {
		t.Errorf("failing a finished attempt = %q", s)
	}
	if s, _ := d.FailTaskAttempt(ctx, released.ID, 1, 1, "boom", 0, fixedNow); s != TaskFailed {
		t.Errorf("failing the last attempt = %q", s)
	}
	mustExec(t, d.Bun(), "UPDATE tasks SET status = 'running', lease_expires_at = ?, last_error = '' WHERE id = ?", fixedNow.Add(time.Minute), released.ID)
	if ok, err := d.ReleaseTask(ctx, released.ID, 1, fixedNow); !ok || err != nil {
		t.Errorf("ReleaseTask: %v, %v", ok, err)
	}
	if got := loadFulfilmentTask(t, d, released.ID); got.Status != TaskPending || got.Attempts != 0 || got.LeaseExpiresAt != nil {
		t.Errorf("released task = %+v", got)
	}
	requireAllInvariants(t, d, fixedNow)
}

func TestRecoverExpiredLeases(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	f := seed(t, d)
	// The fixture's six running tasks (one attempt each) are leased until fixedNow+10m.
	if rec, failed, err := d.RecoverExpiredLeases(ctx, fixedNow.Add(10*time.Minute), 3); rec+failed != 0 || err != nil {
		t.Fatalf("recovered live leases: %d %d %v", rec, failed, err)
	}
	mustExec(t, d.Bun(), "UPDATE tasks SET attempts = 3 WHERE id = ?", f.running[0].ID)
	later := fixedNow.Add(11 * time.Minute)
	rec, failed, err := d.RecoverExpiredLeases(ctx, later, 3)
	if rec != 5 || failed != 1 || err != nil {
		t.Fatalf("RecoverExpiredLeases = %d, %d, %v; want 5, 1", rec, failed, err)
	}
	if got := loadFulfilmentTask(t, d, f.running[0].ID); got.Status != TaskFailed || got.LastError != LeaseExpiredError {
		t.Errorf("exhausted task = %+v", got)
	}
	if got := loadFulfilmentTask(t, d, f.running[1].ID); got.Status != TaskPending || got.LeaseExpiresAt != nil {
		t.Errorf("recovered task = %+v", got)
	}
	requireAllInvariants(t, d, later)
}

func TestBillCustomerOnTheFixtureContinuesNumbering(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	f := seed(t, d)
	ids, err := d.CustomersWithUnbilledWork(ctx, 0, 100)
	// u28, u29 and e4 are unbilled: customers 2, 3 and 23.
	want := []int64{f.customers[2].ID, f.customers[3].ID, f.customers[23].ID}
	if err != nil || !slices.Equal(ids, want) {
		t.Fatalf("CustomersWithUnbilledWork = %v, %v; want %v", ids, err, want)
	}
	if page, _ := d.CustomersWithUnbilledWork(ctx, ids[0], 1); !slices.Equal(page, ids[1:2]) {
		t.Errorf("second page = %v", page)
	}
	rules := BillingRules{MinAmountCents: 100, MaxAmountCents: 50000, DueAfter: 14 * 24 * time.Hour}
	// The fixture issued 26 numbers without the counter row: billing goes on from there.
	for i, id := range ids {
		b, err := d.BillCustomer(ctx, id, fixedNow, rules)
		if err != nil || len(b.Invoices) != 1 || b.Lines != 1 {
			t.Fatalf("BillCustomer(%d) = %+v, %v", id, b, err)
		}
		if n := *b.Invoices[0].Number; n != fmt.Sprintf("INV-%06d", 27+i) {
			t.Errorf("number = %s", n)
		}
	}
	if again, err := d.BillCustomer(ctx, ids[0], fixedNow, rules); err != nil || len(again.Invoices) != 0 {
		t.Errorf("billing again = %+v, %v", again, err)
	}
	if ids, _ := d.CustomersWithUnbilledWork(ctx, 0, 100); len(ids) != 0 {
		t.Errorf("still unbilled: %v", ids)
	}
	requireAllInvariants(t, d, fixedNow)
}

// The driver's own errors, from a scratch database: a second line for one
// task is a double billing, a duplicate invoice number is not, and neither
// is told apart by matching "UNIQUE constraint failed" in its text alone.
func TestBillCustomerAlreadyBilledIsRecognised(t *testing.T) {
	scratch, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer scratch.Close()
	scratch.SetMaxOpenConns(1)
	violation := func(table, column string) error {
		t.Helper()
		if _, err := scratch.Exec("CREATE TABLE " + table + " (" + column + " UNIQUE)"); err != nil {
			t.Fatal(err)
		}
		if _, err := scratch.Exec("INSERT INTO " + table + " VALUES (1)"); err != nil {
			t.Fatal(err)
		}
		_, err := scratch.Exec("INSERT INTO " + table + " VALUES (1)")
		if err == nil {
			t.Fatalf("a duplicate %s.%s was taken", table, column)
		}
		return fmt.Errorf("wrapped: %w", err)
	}
	billedTwice, otherDuplicate := violation("invoice_lines", "task_id"), violation("invoices", "number")
	if !IsUniqueViolation(billedTwice) || !IsConstraintViolation(billedTwice) || !isTaskBilledTwice(billedTwice) {
		t.Errorf("a second line for one task (%v) is not recognised as a double billing", billedTwice)
	}
	if !IsUniqueViolation(otherDuplicate) || isTaskBilledTwice(otherDuplicate) {
		t.Errorf("a duplicate invoice number (%v) is taken for a double billing", otherDuplicate)
	}
	if text := errors.New("UNIQUE constraint failed: invoice_lines.task_id"); IsUniqueViolation(text) || isTaskBilledTwice(text) {
		t.Error("an error that only reads like SQLite's is taken for a unique violation")
	}
}

func TestPaymentLinkCandidatesAndSaving(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	f := seed(t, d)
	mustExec(t, d.Bun(), "UPDATE invoices SET flag = ? WHERE id = ?", FlagOverMaximum, f.invoices[10].ID)
	got, err := d.InvoicesNeedingPaymentLink(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, c := range got {
		ids = append(ids, c.InvoiceID)
	}
	// Open invoices 5-12 (11 is flagged), 27, 28 and 29, oldest first.
	var want []int64
	for _, n := range []int{5, 6, 7, 8, 9, 10, 12, 27, 28, 29} {
		want = append(want, f.invoices[n-1].ID)
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("candidates = %v, want %v", ids, want)
	}
	if got[0].Number != "INV-000001" || got[0].CustomerEmail != "billing@customer04.com" || got[0].AmountCents != f.invoices[4].AmountCents {
		t.Errorf("first candidate = %+v", got[0])
	}
	if ok, err := d.SetInvoicePaymentLink(ctx, ids[0], "price_1", "plink_1", "https://pay.example/1", fixedNow); !ok || err != nil {
		t.Errorf("SetInvoicePaymentLink: %v, %v", ok, err)
	}
	if ok, _ := d.SetInvoicePaymentLink(ctx, ids[0], "price_2", "plink_2", "https://pay.example/2", fixedNow); ok {
		t.Error("a second link overwrote the first")
	}
	if ok, _ := d.SetInvoicePaymentLink(ctx, f.invoices[12].ID, "p", "l", "https://pay.example/paid", fixedNow); ok {
		t.Error("a paid invoice got a link")
	}
	if limited, _ := d.InvoicesNeedingPaymentLink(ctx, 2); len(limited) != 2 || limited[0].InvoiceID != want[1] {
		t.Errorf("limited candidates = %+v", limited)
	}
}

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
