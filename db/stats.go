package db

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// Stats are the figures the dashboard and the control room show. Every one
// covers all rows (the prototype summed only the newest 20), yet none is
// recomputed per view: they are read from kept_totals, which triggers keep
// in the same transaction as every change (migration 0004), so a view costs
// the same at 100 rows as at 100,000.
type Stats struct {
	Revenue     Totals // collected: paid invoices (a refunded invoice is not in it)
	Refunded    Totals // refunded invoices
	Outstanding Totals // open invoices
	Overdue     Totals // open invoices past their due date
	Aging       Aging  // Outstanding by how late it is
	WrittenOff  Totals // void invoices
	Reward      Totals // done tasks at list price, billed or not, whatever became of their invoice: the value of work done, not profit
	Cost        Totals // finished tasks: done and failed (failed attempts were paid for)
	Profit      Totals // Reward - Cost - ReplySortCost: the margin of all finished work at list price, not money made
	Unbilled    Totals // done tasks not yet on any invoice line

	// CollectedCost is the cost of the tasks on paid invoices, in the
	// invoices' currency; CollectedProfit is Revenue - CollectedCost -
	// ReplySortCost, the profit on the work that was paid for less what
	// the LLM cost to sort replies.
	CollectedCost, CollectedProfit Totals

	// ReplySortCost is what the LLM's sortings of replies cost (migration
	// 0018), in the install's default currency. Like a task's LLM cost it
	// is money spent, so both profits count it as an expense; it belongs
	// to no task or customer, so a customer's own profit does not.
	ReplySortCost Totals
	// ReplySortings counts the LLM's sortings of replies.
	ReplySortings int64

	LeadsByStatus     map[string]int64
	CustomersByStatus map[string]int64
	TasksByStatus     map[string]int64
	InvoicesByStatus  map[string]int64
	MessagesByStatus  map[string]int64

	Leads, Customers, Tasks, Invoices, Messages int64
}

// ActiveLeads counts the leads still in the pipeline (not converted, not out).
func (s Stats) ActiveLeads() int64 {
	return s.LeadsByStatus[LeadNew] + s.LeadsByStatus[LeadContacted] + s.LeadsByStatus[LeadResponded]
}

// keptTotal is one row of kept_totals: n rows contribute, summing to cents.
type keptTotal struct {
	Metric   string `bun:"metric"`
	Label    string `bun:"label"`
	Currency string `bun:"currency"`
	N        int64  `bun:"n"`
	Cents    int64  `bun:"cents"`
}

// statsMetrics are the kept metrics Stats reads.
var statsMetrics = []string{"leads", "customers", "tasks", "task_cost", "unbilled", "invoices", "messages", "paid_cost", "reply_sort_cost"}

// keptTotals reads the kept totals of metrics: one primary-key search each.
func keptTotals(ctx context.Context, idb bun.IDB, metrics []string) ([]keptTotal, error) {
	var rows []keptTotal
	err := idb.NewRaw(`SELECT metric, label, currency, n, cents FROM kept_totals
		WHERE metric IN (?) AND n <> 0 ORDER BY metric, label, currency`, bun.List(metrics)).Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("store: unable to read kept totals: %w", err)
	}
	return rows, nil
}

// Stats reads every dashboard figure: the kept totals in one query of a
// small table, and Overdue from the kept totals by due day.
func (d *DB) Stats(ctx context.Context) (Stats, error) {
	s := Stats{
		LeadsByStatus: map[string]int64{}, CustomersByStatus: map[string]int64{}, TasksByStatus: map[string]int64{},
		InvoicesByStatus: map[string]int64{}, MessagesByStatus: map[string]int64{},
	}
	rows, err := keptTotals(ctx, d.bun, statsMetrics)
	if err != nil {
		return s, err
	}
	counts := map[string]struct {
		by    map[string]int64
		total *int64
	}{
		"leads": {s.LeadsByStatus, &s.Leads}, "customers": {s.CustomersByStatus, &s.Customers},
		"tasks": {s.TasksByStatus, &s.Tasks}, "invoices": {s.InvoicesByStatus, &s.Invoices},
		"messages": {s.MessagesByStatus, &s.Messages},
	}
	for _, r := range rows {
		if c, ok := counts[r.Metric]; ok {
			c.by[r.Label] += r.N
			*c.total += r.N
		}
		m := Money{Cents: r.Cents, Currency: r.Currency}
		switch {
		case r.Metric == "invoices" && r.Label == InvoicePaid:
			s.Revenue = append(s.Revenue, m)
		case r.Metric == "invoices" && r.Label == InvoiceOpen:
			s.Outstanding = append(s.Outstanding, m)
		case r.Metric == "invoices" && r.Label == InvoiceRefunded:
			s.Refunded = append(s.Refunded, m)
		case r.Metric == "invoices" && r.Label == InvoiceVoid:
			s.WrittenOff = append(s.WrittenOff, m)
		case r.Metric == "paid_cost":
			s.CollectedCost = append(s.CollectedCost, m)
		case r.Metric == "tasks" && r.Label == TaskDone:
			s.Reward = append(s.Reward, m)
		case r.Metric == "task_cost" && (r.Label == TaskDone || r.Label == TaskFailed):
			s.Cost = addMoney(s.Cost, m)
		case r.Metric == "unbilled":
			s.Unbilled = append(s.Unbilled, m)
		case r.Metric == "reply_sort_cost":
			s.ReplySortCost = append(s.ReplySortCost, m)
			s.ReplySortings += r.N
		}
	}
	s.Profit = subtract(subtract(s.Reward, s.Cost), s.ReplySortCost)
	s.CollectedProfit = subtract(subtract(s.Revenue, s.CollectedCost), s.ReplySortCost)
	if s.Aging, err = d.aging(ctx, d.Now()); err != nil {
		return s, err
	}
	s.Overdue = s.Aging.overdue()
	s.Aging.NotDue = nonZero(subtract(s.Outstanding, s.Overdue))
	return s, nil
}

// Aging is the open money by how late it is at the store's clock, in UTC
// calendar days past the due day: an invoice due yesterday is 1 day
// overdue, one due earlier today 0 days. NotDue holds the rest of the open
// money: due later, or with no due date.
type Aging struct {
	NotDue     Totals
	Days0To30  Totals // 0 to 30 days overdue
	Days31To60 Totals // 31 to 60 days overdue
	DaysOver60 Totals // more than 60 days overdue
}

// overdue is the money of every overdue bucket.
func (a Aging) overdue() Totals {
	var out Totals
	for _, t := range []Totals{a.Days0To30, a.Days31To60, a.DaysOver60} {
		for _, m := range t {
			out = addMoney(out, m)
		}
	}
	return out
}

// nonZero drops the currencies whose total is zero.
func nonZero(t Totals) Totals {
	return slices.DeleteFunc(t, func(m Money) bool { return m.Cents == 0 })
}

// addMoney adds m to its currency's total in t, keeping t sorted by currency.
func addMoney(t Totals, m Money) Totals {
	i, found := slices.BinarySearchFunc(t, m.Currency, func(x Money, c string) int { return strings.Compare(x.Currency, c) })
	if found {
		t[i].Cents += m.Cents
		return t
	}
	return slices.Insert(t, i, m)
}

// subtract is a - b per currency, over the currencies of either, sorted by
// currency (cost may be in a currency no done task earned anything in: a
// customer whose only tasks failed).
func subtract(a, b Totals) Totals {
	out := make(Totals, 0, len(a)+len(b))
	for _, m := range a {
		out = addMoney(out, m)
	}
	for _, m := range b {
		out = addMoney(out, Money{Cents: -m.Cents, Currency: m.Currency})
	}
	return out
}

// agingSQL sorts the open money past its due date at ?4 into the buckets
// of Aging (1: 0-30 days, 2: 31-60, 3: over 60). The clock moves without
// any row changing, so no trigger can keep it as one figure; the kept
// open_due totals hold open invoices by due day instead, so the days before
// today (?0) are a range of kept_totals' primary key, bucketed by their
// label against the days 30 (?1) and 60 (?2) before today, and the
// invoices due earlier today (from ?3, today's midnight) a range of the
// covering partial index invoices_open_due. Its cost follows the number of
// due days, not invoices. The app never runs ANALYZE, and without
// statistics the planner would rather read every open invoice through
// invoices_status_created: INDEXED BY pins the plan (on SQLite; d.pin drops
// it for PostgreSQL, whose planner picks the partial index by its predicate).
// The UNION is named (buckets) because PostgreSQL 15 wants every subquery in
// FROM named.
const agingSQL = `SELECT currency, bucket, SUM(n) AS n, SUM(cents) AS cents FROM (
		SELECT currency, CASE WHEN label < ?2 THEN 3 WHEN label < ?1 THEN 2 ELSE 1 END AS bucket, n, cents
		  FROM kept_totals WHERE metric = 'open_due' AND label < ?0 AND n <> 0
		UNION ALL
		SELECT currency, 1, COUNT(*), SUM(amount_cents) FROM invoices INDEXED BY invoices_open_due
		 WHERE status = 'open' AND due_at >= ?3 AND due_at < ?4 GROUP BY currency
	) AS buckets GROUP BY currency, bucket HAVING SUM(n) > 0 ORDER BY currency, bucket`

// agingArgs are agingSQL's arguments at now.
func agingArgs(now time.Time) []any {
	now = now.UTC()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	return []any{day.Format(time.DateOnly), day.AddDate(0, 0, -30).Format(time.DateOnly),
		day.AddDate(0, 0, -60).Format(time.DateOnly), day, now}
}

// aging is the overdue money at now by bucket (Aging without NotDue).
func (d *DB) aging(ctx context.Context, now time.Time) (Aging, error) {
	var rows []struct {
		Currency string `bun:"currency"`
		Bucket   int    `bun:"bucket"`
		N        int64  `bun:"n"`
		Cents    int64  `bun:"cents"`
	}
	var a Aging
	if err := d.bun.NewRaw(d.pin(agingSQL), agingArgs(now)...).Scan(ctx, &rows); err != nil {
		return a, fmt.Errorf("store: unable to sum overdue invoices: %w", err)
	}
	for _, r := range rows {
		m := Money{Cents: r.Cents, Currency: r.Currency}
		switch r.Bucket {
		case 1:
			a.Days0To30 = append(a.Days0To30, m)
		case 2:
			a.Days31To60 = append(a.Days31To60, m)
		default:
			a.DaysOver60 = append(a.DaysOver60, m)
		}
	}
	return a, nil
}

// keptCount is the kept number of rows of the metrics that match (metric
// = ? and its arguments, or a range of them), with one of labels, or every
// label when none is given: one range read of kept_totals' primary key.
func (d *DB) keptCount(ctx context.Context, labels []string, metric string, args ...any) (int64, error) {
	q := d.bun.NewSelect().Table("kept_totals").ColumnExpr("COALESCE(SUM(n), 0)").Where(metric, args...)
	if len(labels) > 0 {
		q = q.Where("label IN (?)", bun.List(labels))
	}
	var n int64
	if err := q.Scan(ctx, &n); err != nil {
		return 0, fmt.Errorf("store: unable to read a kept count: %w", err)
	}
	return n, nil
}

// KeptTotalDrift is one kept total that differs from the rows it sums.
type KeptTotalDrift struct {
	Metric, Label, Currency string
	KeptN, KeptCents        int64
	RowsN, RowsCents        int64
}

func (k KeptTotalDrift) String() string {
	key := strings.Join(slices.DeleteFunc([]string{k.Metric, k.Label, k.Currency}, func(s string) bool { return s == "" }), "/")
	return fmt.Sprintf("kept total %s is %d rows, %d cents; the rows say %d rows, %d cents",
		key, k.KeptN, k.KeptCents, k.RowsN, k.RowsCents)
}

// keptTotalsDriftSQL lists every (metric, label, currency) whose kept total
// differs from the same figure computed over all rows (kept_totals_expected);
// a row missing on one side counts as zero there. (The subquery is named:
// PostgreSQL 15 refuses one without a name in FROM; SQLite ignores it.)
const keptTotalsDriftSQL = `SELECT metric, label, currency,
		SUM(kn) AS kept_n, SUM(kc) AS kept_cents, SUM(en) AS rows_n, SUM(ec) AS rows_cents
	FROM (SELECT metric, label, currency, n AS kn, cents AS kc, 0 AS en, 0 AS ec FROM kept_totals
	      UNION ALL
	      SELECT metric, label, currency, 0, 0, n, cents FROM kept_totals_expected) AS both_sides
	GROUP BY metric, label, currency
	HAVING SUM(kn) <> SUM(en) OR SUM(kc) <> SUM(ec)
	ORDER BY metric, label, currency`

// KeptTotalsDrift compares every kept total with the sum over all rows. It
// reads whole tables: it is for the checker, never for a page.
func (d *DB) KeptTotalsDrift(ctx context.Context) ([]KeptTotalDrift, error) {
	return keptTotalsDrift(ctx, d.bun)
}

func keptTotalsDrift(ctx context.Context, idb bun.IDB) ([]KeptTotalDrift, error) {
	var out []KeptTotalDrift
	rows, err := idb.QueryContext(ctx, keptTotalsDriftSQL)
	if err != nil {
		return nil, fmt.Errorf("check: unable to compare kept totals: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k KeptTotalDrift
		if err := rows.Scan(&k.Metric, &k.Label, &k.Currency, &k.KeptN, &k.KeptCents, &k.RowsN, &k.RowsCents); err != nil {
			return nil, fmt.Errorf("check: unable to read kept totals: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("check: unable to compare kept totals: %w", err)
	}
	return out, nil
}

// RepairKeptTotals rebuilds kept_totals from all rows in one transaction and
// returns what it changed (the drift it found; empty when all were right).
func (d *DB) RepairKeptTotals(ctx context.Context) ([]KeptTotalDrift, error) {
	var drift []KeptTotalDrift
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if drift, err = keptTotalsDrift(ctx, tx); err != nil || len(drift) == 0 {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM kept_totals"); err != nil {
			return fmt.Errorf("check: unable to clear kept totals: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO kept_totals (metric, label, currency, n, cents)
			SELECT metric, label, currency, n, cents FROM kept_totals_expected WHERE true`); err != nil {
			return fmt.Errorf("check: unable to rebuild kept totals: %w", err)
		}
		return nil
	})
	return drift, err
}

// totals runs a "currency, SUM(...)" query into Totals (per-customer and
// per-window sums, bounded by their indexes).
func (d *DB) totals(ctx context.Context, query string, args ...any) (Totals, error) {
	rows, err := d.bun.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: unable to sum money: %w", err)
	}
	defer rows.Close()
	var t Totals
	for rows.Next() {
		var m Money
		if err := rows.Scan(&m.Currency, &m.Cents); err != nil {
			return nil, fmt.Errorf("store: unable to read money sum: %w", err)
		}
		t = append(t, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: unable to sum money: %w", err)
	}
	return t, nil
}

// keptCounts is the kept row count of each of metrics by label (status),
// in one read of kept_totals.
func (d *DB) keptCounts(ctx context.Context, metrics ...string) (map[string]map[string]int64, error) {
	var rows []keptTotal
	err := d.bun.NewRaw(`SELECT metric, label, SUM(n) AS n FROM kept_totals
		WHERE metric IN (?) AND n <> 0 GROUP BY metric, label`, bun.List(metrics)).Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("store: unable to read kept counts: %w", err)
	}
	out := make(map[string]map[string]int64, len(metrics))
	for _, m := range metrics {
		out[m] = map[string]int64{}
	}
	for _, r := range rows {
		out[r.Metric][r.Label] = r.N
	}
	return out, nil
}

// sum adds up counts.
func sum(counts map[string]int64) int64 {
	var n int64
	for _, c := range counts {
		n += c
	}
	return n
}

// RepairBillingQueue rebuilds unbilled_tasks (the done tasks on no invoice
// line, which billing reads) from the rows, in one transaction, and says
// how many entries it added and removed.
func (d *DB) RepairBillingQueue(ctx context.Context) (added, removed int, err error) {
	err = d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		const expected = `SELECT t.id, t.customer_id FROM tasks AS t
			WHERE t.status = 'done' AND NOT EXISTS (SELECT 1 FROM invoice_lines AS il WHERE il.task_id = t.id)`
		res, err := tx.ExecContext(ctx, `DELETE FROM unbilled_tasks WHERE (task_id, customer_id) NOT IN (`+expected+`)`)
		if err != nil {
			return fmt.Errorf("check: unable to clean the billing queue: %w", err)
		}
		removed = affected(res)
		res, err = tx.ExecContext(ctx, `INSERT INTO unbilled_tasks (task_id, customer_id)
			SELECT e.id, e.customer_id FROM (`+expected+`) AS e
			WHERE NOT EXISTS (SELECT 1 FROM unbilled_tasks AS u WHERE u.task_id = e.id)`)
		if err != nil {
			return fmt.Errorf("check: unable to refill the billing queue: %w", err)
		}
		added = affected(res)
		return nil
	})
	return added, removed, err
}
