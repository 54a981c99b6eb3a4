package db

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun/migrate"
)

// The owner's money figures (Stats: collected, refunded, outstanding and its
// aging, unbilled, written off, the cost of and the profit on collected
// work, the value of work done) are read from kept_totals. The tests below
// prove them against plain SQL over the rows, and prove the paid_cost total
// of migration 0014 is filled, kept, checked and repaired.

// addAgingInvoices adds, on top of the fixture, one open usd invoice (with
// its done task and line) per due time relative to fixedNow, so every aging
// bucket and each of its edges holds money; nil is an open invoice with no
// due date. It returns the invoice ids in order.
func addAgingInvoices(t *testing.T, d *DB, dues ...*time.Duration) []int64 {
	t.Helper()
	ctx := context.Background()
	var ids []int64
	for k, due := range dues {
		cust := countRows(t, d, "SELECT MIN(id) FROM customers")
		reward, cost := int64(10_000*(k+1)), int64(1_000*(k+1))
		task := newTask(500+k, int64(cust), TaskDone, "usd", reward, cost)
		if _, err := d.Bun().NewInsert().Model(task).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		inv := &Invoice{CustomerID: int64(cust), Currency: "usd", AmountCents: reward, Status: InvoiceOpen,
			Number: ptr(fmt.Sprintf("INV-AGE-%02d", k)), IssuedAt: ptr(fixedNow.Add(-100 * 24 * time.Hour)),
			CreatedAt: fixedNow.Add(-100 * 24 * time.Hour), UpdatedAt: fixedNow.Add(-100 * 24 * time.Hour)}
		if due != nil {
			inv.DueAt = ptr(fixedNow.Add(*due))
		}
		if _, err := d.Bun().NewInsert().Model(inv).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		line := &InvoiceLine{InvoiceID: inv.ID, TaskID: task.ID, AmountCents: reward, CreatedAt: inv.CreatedAt}
		if _, err := d.Bun().NewInsert().Model(line).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, inv.ID)
	}
	return ids
}

// daysOverdue is, in the oracle's SQL, how many UTC calendar days an open
// invoice is past its due day at ?0 (when due_at < ?0).
const daysOverdue = `CAST(julianday(date(?0)) - julianday(substr(due_at, 1, 10)) AS INTEGER)`

// daysOverduePostgres is daysOverdue on PostgreSQL: the difference of two
// dates is a number of days (the session's time zone is UTC).
const daysOverduePostgres = `(CAST(?0 AS TIMESTAMPTZ) AT TIME ZONE 'UTC')::date - (due_at AT TIME ZONE 'UTC')::date`

// oracleSQL is an oracle query in d's dialect.
func oracleSQL(d *DB, q string) string {
	if d.Postgres() {
		return strings.ReplaceAll(q, daysOverdue, daysOverduePostgres)
	}
	return q
}

// moneyOracle computes every money figure of Stats from the raw tables.
var moneyOracle = map[string]string{
	"Revenue":     "SELECT currency, SUM(amount_cents) FROM invoices WHERE status = 'paid' GROUP BY currency ORDER BY currency",
	"Refunded":    "SELECT currency, SUM(amount_cents) FROM invoices WHERE status = 'refunded' GROUP BY currency ORDER BY currency",
	"Outstanding": "SELECT currency, SUM(amount_cents) FROM invoices WHERE status = 'open' GROUP BY currency ORDER BY currency",
	"Overdue":     "SELECT currency, SUM(amount_cents) FROM invoices WHERE status = 'open' AND due_at < ?0 GROUP BY currency ORDER BY currency",
	"NotDue": `SELECT currency, SUM(amount_cents) FROM invoices WHERE status = 'open' AND (due_at IS NULL OR due_at >= ?0)
		GROUP BY currency ORDER BY currency`,
	"Days0To30": `SELECT currency, SUM(amount_cents) FROM invoices WHERE status = 'open' AND due_at < ?0
		AND ` + daysOverdue + ` BETWEEN 0 AND 30 GROUP BY currency ORDER BY currency`,
	"Days31To60": `SELECT currency, SUM(amount_cents) FROM invoices WHERE status = 'open' AND due_at < ?0
		AND ` + daysOverdue + ` BETWEEN 31 AND 60 GROUP BY currency ORDER BY currency`,
	"DaysOver60": `SELECT currency, SUM(amount_cents) FROM invoices WHERE status = 'open' AND due_at < ?0
		AND ` + daysOverdue + ` > 60 GROUP BY currency ORDER BY currency`,
	"WrittenOff": "SELECT currency, SUM(amount_cents) FROM invoices WHERE status = 'void' GROUP BY currency ORDER BY currency",
	"Unbilled": `SELECT currency, SUM(reward_cents) FROM tasks AS t WHERE status = 'done'
		AND NOT EXISTS (SELECT 1 FROM invoice_lines AS il WHERE il.task_id = t.id) GROUP BY currency ORDER BY currency`,
	"Reward": "SELECT currency, SUM(reward_cents) FROM tasks WHERE status = 'done' GROUP BY currency ORDER BY currency",
	"CollectedCost": `SELECT i.currency, SUM(t.cost_cents) FROM invoices AS i JOIN invoice_lines AS il ON il.invoice_id = i.id
		JOIN tasks AS t ON t.id = il.task_id WHERE i.status = 'paid' GROUP BY i.currency ORDER BY i.currency`,
	"CollectedProfit": `SELECT currency, SUM(amount_cents - (SELECT COALESCE(SUM(t.cost_cents), 0) FROM invoice_lines AS il
		JOIN tasks AS t ON t.id = il.task_id WHERE il.invoice_id = i.id)) FROM invoices AS i WHERE status = 'paid'
		GROUP BY currency ORDER BY currency`,
}

// moneyFigures are Stats' money figures by the names of moneyOracle.
func moneyFigures(s Stats) map[string]Totals {
	return map[string]Totals{
		"Revenue": s.Revenue, "Refunded": s.Refunded, "Outstanding": s.Outstanding, "Overdue": s.Overdue,
		"NotDue": s.Aging.NotDue, "Days0To30": s.Aging.Days0To30, "Days31To60": s.Aging.Days31To60, "DaysOver60": s.Aging.DaysOver60,
		"WrittenOff": s.WrittenOff, "Unbilled": s.Unbilled, "Reward": s.Reward,
		"CollectedCost": s.CollectedCost, "CollectedProfit": s.CollectedProfit,
	}
}

// assertMoneyMatchesRows compares every money figure of Stats with the
// oracle; with full, it also fails when the rows hold none of a figure.
func assertMoneyMatchesRows(t *testing.T, d *DB, when string, full bool) Stats {
	t.Helper()
	ctx := context.Background()
	s, err := d.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := moneyFigures(s)
	for name, q := range moneyOracle {
		want, err := d.totals(ctx, oracleSQL(d, q), fixedNow)
		if err != nil {
			t.Fatalf("%s oracle: %v", name, err)
		}
		want = slices.DeleteFunc(want, func(m Money) bool { return m.Cents == 0 })
		if full && len(want) == 0 {
			t.Errorf("%s: the dataset holds no %s money: the test proves nothing", when, name)
		}
		if !slices.Equal(got[name], want) {
			t.Errorf("%s: %s = %v, the rows say %v", when, name, got[name], want)
		}
	}
	return s
}

// TestMoneyFiguresMatchTheRows: over the fixture (paid, open due and
// overdue, void, refunded, unbilled done and failed work, two currencies)
// and open invoices at each edge of every aging bucket, each kept figure
// equals plain SQL over the rows, and keeps equalling it as invoices are
// paid and refunded and the cost of paid work changes.
func TestMoneyFiguresMatchTheRows(t *testing.T) {
	d := mustOpen(t)
	seed(t, d)
	day := 24 * time.Hour
	rel := func(x time.Duration) *time.Duration { return &x }
	// fixedNow is 12:00 UTC. Due 30 days ago to the hour: 30 days; 30 days
	// and 13 hours ago (23:00 the day before): 31 days; 60 days: 31-60;
	// 61 days and 90 days: over 60; later today: not due; no due date.
	ids := addAgingInvoices(t, d, rel(-30*day), rel(-30*day-13*time.Hour), rel(-60*day), rel(-61*day), rel(-90*day),
		rel(6*time.Hour), nil)
	s := assertMoneyMatchesRows(t, d, "after the dataset", true)

	// Hand-checked: the fixture's usd overdue (4600 + 4100) and the 30-day
	// invoice; 31 and 60 days; 61 and 90 days; the rest of the usd open money.
	usdAging := []Totals{s.Aging.Days0To30, s.Aging.Days31To60, s.Aging.DaysOver60}
	for i, want := range []Money{usd(8700 + 10_000), usd(20_000 + 30_000), usd(40_000 + 50_000)} {
		if got := usdAging[i].In("usd"); got != want {
			t.Errorf("usd aging bucket %d = %v, want %v", i+1, got, want)
		}
	}
	// Collected: usd invoices 13-20 bill u13..u20 (1800..2500) and 30 u27
	// (3200); their costs are 50 per index.
	if got, want := s.CollectedCost.In("usd"), usd(50*(13+14+15+16+17+18+19+20+27)); got != want {
		t.Errorf("usd collected cost = %v, want %v", got, want)
	}
	if got, want := s.CollectedProfit.In("usd"), usd(17_200+3200-50*(13+14+15+16+17+18+19+20+27)); got != want {
		t.Errorf("usd profit on collected work = %v, want %v", got, want)
	}

	ctx := context.Background()
	b := d.Bun()
	// Paid: the 90-day invoice leaves the aging and its cost joins collected work.
	mustExec(t, b, "UPDATE invoices SET status = 'paid', paid_at = ? WHERE id = ?", fixedNow, ids[4])
	assertMoneyMatchesRows(t, d, "after a payment", true)
	// Refunded: a paid invoice's revenue and cost leave collected work.
	mustExec(t, b, "UPDATE invoices SET status = 'refunded' WHERE id = ?", ids[4])
	assertMoneyMatchesRows(t, d, "after a refund", true)
	// The cost of a task on a paid invoice changes (a late provider bill).
	mustExec(t, b, `UPDATE tasks SET cost_cents = cost_cents + 777, profit_cents = profit_cents - 777
		WHERE id = (SELECT task_id FROM invoice_lines WHERE invoice_id = (SELECT id FROM invoices WHERE status = 'paid' AND currency = 'eur'))`)
	assertMoneyMatchesRows(t, d, "after a cost change on paid work", true)
	// Voided: written off, out of the outstanding money.
	mustExec(t, b, "UPDATE invoices SET status = 'void' WHERE id = ?", ids[2])
	after := assertMoneyMatchesRows(t, d, "after a void", true)
	if got := after.WrittenOff.In("usd"); got.Cents != s.WrittenOff.In("usd").Cents+30_000 {
		t.Errorf("usd written off after voiding 300.00 = %v (was %v)", got, s.WrittenOff.In("usd"))
	}
	if _, err := d.RepairKeptTotals(ctx); err != nil {
		t.Fatal(err)
	}
	assertNoDrift(t, d, "after the changes")
}

// TestCheckSeesCollectedCostDrift: a paid_cost total that no longer
// matches the rows breaks invariant 9, names the metric, and check
// --repair-totals mends it.
func TestCheckSeesCollectedCostDrift(t *testing.T) {
	d := mustOpen(t)
	seed(t, d)
	ctx := context.Background()
	mustExec(t, d.Bun(), "UPDATE kept_totals SET cents = cents + 7 WHERE metric = 'paid_cost' AND currency = 'usd'")
	mustExec(t, d.Bun(), "DELETE FROM kept_totals WHERE metric = 'paid_cost' AND currency = 'eur'")
	assertBroken(t, mustCheck(t, d, fixedNow), 9, 2, "kept total paid_cost/usd is 9 rows, 7957 cents", "the rows say 9 rows, 7950 cents")
	s, err := d.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CollectedCost.In("eur"); got.Cents != 0 {
		t.Fatalf("the damaged eur total still reads %v", got)
	}

	drift, err := d.RepairKeptTotals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(drift) != 2 || drift[0].Metric != "paid_cost" || drift[0].Currency != "eur" || drift[0].RowsCents != 500 ||
		drift[1].Currency != "usd" || drift[1].KeptCents != 7957 {
		t.Fatalf("repair reported %+v", drift)
	}
	requireAllInvariants(t, d, fixedNow)
	assertMoneyMatchesRows(t, d, "after the repair", false)
}

// TestMigration0014FillsCollectedCost: a file with paid work written
// before 0014 gets its paid_cost totals from the migration, and the
// triggers keep them from then on.
func TestMigration0014FillsCollectedCost(t *testing.T) {
	ctx := context.Background()
	d, err := openFile(filepath.Join(t.TempDir(), FileName), WithClock(func() time.Time { return fixedNow }))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ms := migrate.NewMigrations()
	// Every migration but 0014 (the later ones add columns the seed
	// writes; none of them reads what 0014 adds), then 0014 alone.
	if err := ms.Discover(migrationsWithout(t, "0014")); err != nil {
		t.Fatal(err)
	}
	m := migrate.NewMigrator(d.bun, ms, migrate.WithMarkAppliedOnSuccess(true))
	if err := m.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	seed(t, d)
	if n := countRows(t, d, "SELECT COUNT(*) FROM kept_totals WHERE metric = 'paid_cost'"); n != 0 {
		t.Fatalf("before 0014 there are %d paid_cost totals: the migration tests nothing", n)
	}
	if err := d.Migrate(ctx); err != nil {
		t.Fatalf("0014: %v", err)
	}
	var kept []keptTotal
	if err := d.bun.NewRaw("SELECT metric, label, currency, n, cents FROM kept_totals WHERE metric = 'paid_cost' ORDER BY currency").Scan(ctx, &kept); err != nil {
		t.Fatal(err)
	}
	// eur: invoice 26 bills e1 (cost 500); usd: invoices 13-20 and 30 bill
	// u13..u20 and u27 (cost 50 per index).
	want := []keptTotal{{"paid_cost", "", "eur", 1, 500}, {"paid_cost", "", "usd", 9, 7950}}
	if !slices.Equal(kept, want) {
		t.Fatalf("paid_cost after 0014 = %+v, want %+v", kept, want)
	}
	requireAllInvariants(t, d, fixedNow)
	mustExec(t, d.Bun(), "UPDATE invoices SET status = 'refunded' WHERE status = 'paid' AND currency = 'eur'")
	if n := countRows(t, d, "SELECT COUNT(*) FROM kept_totals WHERE metric = 'paid_cost' AND currency = 'eur'"); n != 0 {
		t.Errorf("the refund of the only paid eur invoice left %d paid_cost/eur totals", n)
	}
	assertNoDrift(t, d, "after a refund past 0014")
}

// TestMoneyFiguresReadKeptTotals: the queries Stats runs read kept_totals
// and, for the invoices due earlier today, one range of invoices_open_due;
// never tasks, invoices or invoice_lines whole, with or without statistics.
func TestMoneyFiguresReadKeptTotals(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a large dataset")
	}
	d := mustOpen(t)
	if _, err := d.Seed(context.Background(), SeedSizes{Leads: 2000, Customers: 500, Tasks: 20000, Invoices: 5000, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T) {
		hook := &recordQueries{}
		//lint:ignore SA1019 the store's handle, not a copy, needs the hook
		d.Bun().AddQueryHook(hook)
		if _, err := d.Stats(context.Background()); err != nil {
			t.Fatal(err)
		}
		queries := hook.take()
		if len(queries) != 2 {
			t.Fatalf("Stats ran %d queries, want 2 (kept totals, aging): %q", len(queries), queries)
		}
		if d.Postgres() {
			// PostgreSQL's planner, left to itself on the dataset: no
			// big table is read whole (kept_totals is small, and may be).
			for _, q := range queries {
				plan := pgPlanStepsAsIs(t, d, q)
				for _, big := range []string{"tasks", "invoices", "invoice_lines"} {
					if strings.Contains(plan+"\n", "Seq Scan "+big+"\n") {
						t.Errorf("reads %s whole:\n%s\n%s", big, plan, q)
					}
				}
			}
			if aging := pgPlanStepsAsIs(t, d, d.pin(agingSQL), agingArgs(fixedNow)...); !strings.Contains(aging, "USING invoices_open_due") {
				t.Errorf("aging reads today's invoices without invoices_open_due:\n%s", aging)
			}
			return
		}
		for _, q := range queries {
			plan := planOf(t, d, q)
			if problems := planProblems(plan, q); len(problems) > 0 {
				t.Errorf("scans a big table: %q\n%s", problems, q)
			}
			if !slices.ContainsFunc(plan, func(step string) bool {
				return strings.HasPrefix(step, "SEARCH kept_totals USING PRIMARY KEY (metric=?")
			}) {
				t.Errorf("does not search kept_totals by its key: %q\n%s", plan, q)
			}
			for _, step := range plan {
				if f := strings.Fields(step); len(f) > 1 && slices.Contains([]string{"tasks", "invoice_lines", "t", "il"}, f[1]) {
					t.Errorf("reads %s: %q\n%s", f[1], step, q)
				}
			}
		}
		aging := planOf(t, d, agingSQL, agingArgs(fixedNow)...)
		if !planUses(aging, "invoices_open_due") {
			t.Errorf("aging reads today's invoices without invoices_open_due: %q", aging)
		}
	}
	t.Run("without statistics", check)
	mustExec(t, d.Bun(), "ANALYZE")
	t.Run("with statistics", check)
}

// migrationsWithout is the embedded migrations without the one numbered n.
func migrationsWithout(t *testing.T, n string) fs.FS {
	return migrationsWhere(t, func(name string) bool { return !strings.HasPrefix(name, n+"_") })
}
