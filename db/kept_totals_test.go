package db

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/uptrace/bun"
)

// assertNoDrift fails when any kept total differs from the sum over its rows.
func assertNoDrift(t *testing.T, d *DB, when string) {
	t.Helper()
	drift, err := d.KeptTotalsDrift(context.Background())
	if err != nil {
		t.Fatalf("KeptTotalsDrift: %v", err)
	}
	for _, k := range drift {
		t.Errorf("%s: %s", when, k)
	}
}

// TestKeptTotalsFollowEveryChange drives random inserts, updates and deletes
// straight in SQL (no store method, so only the triggers can keep up) and
// proves after each batch that every kept total equals the sum over all rows.
func TestKeptTotalsFollowEveryChange(t *testing.T) {
	d := mustOpen(t)
	seed(t, d)
	assertNoDrift(t, d, "after the fixture")
	r := rand.New(rand.NewPCG(8, 42))
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	ctx := context.Background()
	changes := []func() string{
		func() string {
			return fmt.Sprintf("UPDATE tasks SET status = '%s' WHERE id = %d", pick("pending", "running", "done", "failed"), 1+r.IntN(60))
		},
		func() string {
			return fmt.Sprintf("UPDATE tasks SET reward_cents = %[1]d, profit_cents = %[1]d - cost_cents WHERE id = %[2]d", r.IntN(9000), 1+r.IntN(60))
		},
		func() string {
			return fmt.Sprintf("UPDATE tasks SET currency = '%s' WHERE id = %d", pick("usd", "eur", "gbp"), 1+r.IntN(60))
		},
		func() string {
			return fmt.Sprintf("UPDATE invoices SET status = '%s' WHERE id = %d AND status NOT IN ('paid','refunded')", pick("open", "void", "draft"), 1+r.IntN(30))
		},
		func() string {
			return fmt.Sprintf("UPDATE invoices SET amount_cents = %d, currency = '%s' WHERE id = %d", r.IntN(9000), pick("usd", "eur"), 1+r.IntN(30))
		},
		func() string { return fmt.Sprintf("DELETE FROM invoice_lines WHERE id = %d", 1+r.IntN(31)) },
		func() string {
			return fmt.Sprintf("UPDATE invoice_lines SET task_id = %d WHERE id = %d", 1+r.IntN(60), 1+r.IntN(31))
		},
		func() string {
			return fmt.Sprintf("UPDATE leads SET status = '%s' WHERE id = %d", pick(LeadStatuses...), 1+r.IntN(37))
		},
		func() string {
			return fmt.Sprintf("UPDATE customers SET status = '%s' WHERE id = %d", pick("active", "paused", "closed"), 1+r.IntN(25))
		},
		func() string {
			return fmt.Sprintf("UPDATE messages SET status = '%s', needs_review = %d WHERE id = %d",
				pick("queued", "sending", "sent", "dry_run", "failed", "suppressed"), r.IntN(2), 1+r.IntN(22))
		},
		func() string {
			return fmt.Sprintf("INSERT INTO suppressions (kind, value, reason, created_at) VALUES ('address', 'x%d@example.com', '%s', '2025-01-01')",
				r.Int(), pick("unsubscribed", "bounced", "complaint", "manual"))
		},
		func() string { return fmt.Sprintf("DELETE FROM suppressions WHERE id = %d", 1+r.IntN(5)) },
		func() string {
			return fmt.Sprintf(`INSERT INTO agent_runs (agent, trigger, started_at, outcome) VALUES ('%s', 'manual', '2025-01-01', '%s')`,
				pick("leadsource", "bizdev"), pick("running", "ok", "failed"))
		},
		func() string {
			return fmt.Sprintf("UPDATE agent_runs SET outcome = '%s' WHERE id = %d", pick("ok", "failed", "panicked"), 1+r.IntN(10))
		},
		func() string { return fmt.Sprintf("DELETE FROM messages WHERE id = %d", 1+r.IntN(22)) },
		// Collected work (paid_cost, 0014): payments, refunds, the cost of
		// billed work, lines moving between invoices.
		func() string {
			return fmt.Sprintf("UPDATE invoices SET status = 'paid', paid_at = '2025-01-01' WHERE id = %d AND status = 'open'", 1+r.IntN(30))
		},
		func() string {
			return fmt.Sprintf("UPDATE invoices SET status = 'refunded' WHERE id = %d AND status = 'paid'", 1+r.IntN(30))
		},
		func() string {
			return fmt.Sprintf("UPDATE tasks SET cost_cents = %[1]d, profit_cents = reward_cents - %[1]d WHERE id = %[2]d", r.IntN(4000), 1+r.IntN(60))
		},
		func() string {
			return fmt.Sprintf("UPDATE invoice_lines SET invoice_id = %d WHERE id = %d", 1+r.IntN(30), 1+r.IntN(31))
		},
		// The LLM's reply sortings (reply_sort_cost, 0018).
		func() string {
			return fmt.Sprintf(`INSERT INTO reply_sortings (model, class, reason, cost_cents, currency, created_at)
				VALUES ('gpt-4o-mini', '%s', 'r', %d, '%s', '2025-01-01')`, pick("", "interested", "other"), r.IntN(5), pick("usd", "eur"))
		},
		func() string {
			return fmt.Sprintf("UPDATE reply_sortings SET cost_cents = %d, currency = '%s' WHERE id = %d", r.IntN(5), pick("usd", "eur"), 1+r.IntN(20))
		},
		func() string { return fmt.Sprintf("DELETE FROM reply_sortings WHERE id = %d", 1+r.IntN(20)) },
	}
	applied := 0
	for batch := range 40 {
		damaged(t, d, func(conn bun.Conn) {
			for range 10 {
				// A change may be refused (a UNIQUE index, the paid-invoice
				// guard); the ones that land must be followed by the totals.
				res, err := conn.ExecContext(ctx, changes[r.IntN(len(changes))]())
				if err == nil {
					if n, _ := res.RowsAffected(); n > 0 {
						applied++
					}
				}
			}
		})
		assertNoDrift(t, d, fmt.Sprintf("batch %d", batch))
		if t.Failed() {
			return
		}
	}
	if applied < 200 {
		t.Fatalf("only %d of 400 random changes changed a row: the test proves little", applied)
	}
}

// TestStatsEqualFullAggregates compares the kept figures with the same
// figures computed the slow way, over every row.
func TestStatsEqualFullAggregates(t *testing.T) {
	d := mustOpen(t)
	seed(t, d)
	ctx := context.Background()
	s, err := d.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	full := func(q string) Totals {
		tot, err := d.totals(ctx, q, fixedNow)
		if err != nil {
			t.Fatal(err)
		}
		return tot
	}
	for name, c := range map[string]struct {
		got  Totals
		want string
	}{
		"Revenue":     {s.Revenue, "SELECT currency, SUM(amount_cents) FROM invoices WHERE status = 'paid' GROUP BY currency ORDER BY currency"},
		"Outstanding": {s.Outstanding, "SELECT currency, SUM(amount_cents) FROM invoices WHERE status = 'open' GROUP BY currency ORDER BY currency"},
		"Overdue":     {s.Overdue, "SELECT currency, SUM(amount_cents) FROM invoices WHERE status = 'open' AND due_at < ? GROUP BY currency ORDER BY currency"},
		"Profit": {s.Profit, `SELECT currency, SUM(CASE WHEN status = 'done' THEN reward_cents ELSE 0 END) - SUM(cost_cents)
			FROM tasks WHERE status IN ('done', 'failed') GROUP BY currency ORDER BY currency`},
	} {
		if want := full(c.want); !slices.Equal(c.got, want) {
			t.Errorf("%s = %v, the rows say %v", name, c.got, want)
		}
	}
}

func TestCheckInvariant9KeptTotalsAndRepair(t *testing.T) {
	d := mustOpen(t)
	seed(t, d)
	ctx := context.Background()
	mustExec(t, d.Bun(), "UPDATE kept_totals SET n = n + 2, cents = cents + 5 WHERE metric = 'invoices' AND label = 'paid' AND currency = 'usd'")
	mustExec(t, d.Bun(), "DELETE FROM kept_totals WHERE metric = 'leads' AND label = 'new'")
	assertBroken(t, mustCheck(t, d, fixedNow), 9, 2, "kept total invoices/paid/usd is 11 rows", "the rows say 9 rows")

	drift, err := d.RepairKeptTotals(ctx)
	if err != nil {
		t.Fatalf("RepairKeptTotals: %v", err)
	}
	if len(drift) != 2 || drift[0].Metric != "invoices" || drift[1].Metric != "leads" || drift[1].RowsN != 10 || drift[1].KeptN != 0 {
		t.Fatalf("repair reported %+v", drift)
	}
	for _, r := range mustCheck(t, d, fixedNow) {
		if !r.OK() {
			t.Errorf("invariant %d broken after repair: %q", r.Number, r.Violations)
		}
	}
	if drift, err = d.RepairKeptTotals(ctx); err != nil || len(drift) != 0 {
		t.Fatalf("second repair = %v, %v; want nothing to change", drift, err)
	}
}

// TestCheckProvesTheBillingQueue: a done, unbilled task missing from
// unbilled_tasks (which billing reads) breaks invariant 3, and so does an
// entry for billed work; RepairBillingQueue puts both right.
func TestCheckProvesTheBillingQueue(t *testing.T) {
	d := mustOpen(t)
	f := seed(t, d)
	ctx := context.Background()
	u28, u1 := f.doneUSD[27], f.doneUSD[0] // u28 is unbilled, u1 is billed
	mustExec(t, d.Bun(), "DELETE FROM unbilled_tasks WHERE task_id = ?", u28.ID)
	mustExec(t, d.Bun(), "INSERT INTO unbilled_tasks (task_id, customer_id) VALUES (?, ?)", u1.ID, u1.CustomerID)
	results := mustCheck(t, d, fixedNow)
	assertBroken(t, results, 3, 2, fmt.Sprintf("done task %d is unbilled but missing from the billing queue", u28.ID))
	added, removed, err := d.RepairBillingQueue(ctx)
	if err != nil || added != 1 || removed != 1 {
		t.Fatalf("RepairBillingQueue = %d added, %d removed, %v; want 1, 1", added, removed, err)
	}
	for _, r := range mustCheck(t, d, fixedNow) {
		if !r.OK() {
			t.Errorf("invariant %d broken after repair: %q", r.Number, r.Violations)
		}
	}
}

// TestKeptTotalsDropWhatNoRowHas: when the last row of a figure goes (the
// last open invoice of a due day is paid), its kept total goes too, so the
// table holds only live figures.
func TestKeptTotalsDropWhatNoRowHas(t *testing.T) {
	d := mustOpen(t)
	seed(t, d)
	mustExec(t, d.Bun(), "UPDATE invoices SET status = 'void' WHERE status = 'open'")
	if n := countRows(t, d, "SELECT COUNT(*) FROM kept_totals WHERE metric = 'open_due' OR (metric = 'invoices' AND label = 'open') OR n = 0"); n != 0 {
		t.Errorf("%d kept totals remain for figures no row has", n)
	}
	assertNoDrift(t, d, "after voiding every open invoice")
}
