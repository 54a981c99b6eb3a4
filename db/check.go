package db

import (
	"context"
	"fmt"
	"time"
)

// maxViolationsShown bounds how many offending rows one invariant lists; the
// count is always exact.
const maxViolationsShown = 50

// InvariantResult is the verdict on one invariant of SPEC §3.
type InvariantResult struct {
	Number     int
	Name       string
	Violations []string // one line per offending record, at most maxViolationsShown
	Count      int      // how many records violate it
}

// OK reports whether the invariant holds.
func (r InvariantResult) OK() bool { return r.Count == 0 }

// invariant is one rule proven by SQL probes: each row a probe returns is
// one violation, read as a single text column describing the offending
// record. A probe may hold at most one ? placeholder, which is bound to the
// time the check judges leases at (bun does not bind named placeholders from
// a map).
type invariant struct {
	number int
	name   string
	probes []probe
}

// probe is one query of an invariant: the same text on both databases, or,
// where the SQL must differ, the SQLite text and its PostgreSQL equivalent
// side by side (see dialects).
type probe struct {
	sqlite, postgres string
}

// both is a probe written in the SQL both databases share.
func both(query string) probe { return probe{sqlite: query, postgres: query} }

// dialects is a probe whose SQL differs between the databases.
func dialects(sqliteQuery, postgresQuery string) probe {
	return probe{sqlite: sqliteQuery, postgres: postgresQuery}
}

// text is the probe's SQL for the store's database.
func (p probe) text(d *DB) string {
	if d.Postgres() {
		return p.postgres
	}
	return p.sqlite
}

// invariants are the eight rules of SPEC §3 and the kept totals' rule, each proven by probes that must
// return no rows. They read the data as it is, so they also catch a database
// whose constraints were loosened or that was written by another program.
var invariants = []invariant{
	{1, "no task appears on two invoice lines", []probe{
		// group_concat is SQLite's; PostgreSQL's string_agg takes text and
		// an explicit separator (ordered, so the line reads the same each run).
		dialects(
			`SELECT 'task ' || task_id || ' is on ' || COUNT(*) || ' lines (invoices ' || group_concat(invoice_id) || ')'
			   FROM invoice_lines GROUP BY task_id HAVING COUNT(*) > 1 ORDER BY task_id`,
			`SELECT 'task ' || task_id || ' is on ' || COUNT(*) || ' lines (invoices ' || string_agg(invoice_id::text, ',' ORDER BY invoice_id) || ')'
			   FROM invoice_lines GROUP BY task_id HAVING COUNT(*) > 1 ORDER BY task_id`),
	}},
	{2, "every invoice amount equals the sum of its lines", []probe{
		both(`SELECT 'invoice ' || i.id || ' (' || COALESCE(i.number, 'draft') || ') amount ' || i.amount_cents ||
		        ' but lines sum to ' || COALESCE(SUM(il.amount_cents), 0)
		   FROM invoices AS i LEFT JOIN invoice_lines AS il ON il.invoice_id = i.id
		  GROUP BY i.id HAVING i.amount_cents <> COALESCE(SUM(il.amount_cents), 0) ORDER BY i.id`),
	}},
	{3, "every done task is billed or still billable (none lost)", []probe{
		// A line must bill finished work at the task's own price.
		both(`SELECT 'task ' || t.id || ' is billed on invoice ' || il.invoice_id || ' but is ' || t.status
		   FROM invoice_lines AS il JOIN tasks AS t ON t.id = il.task_id
		  WHERE t.status <> 'done' ORDER BY t.id`),
		both(`SELECT 'task ' || t.id || ' reward ' || t.reward_cents || ' is billed as ' || il.amount_cents
		   FROM invoice_lines AS il JOIN tasks AS t ON t.id = il.task_id
		  WHERE il.amount_cents <> t.reward_cents ORDER BY t.id`),
		// Unbilled done work is picked up by billing only with a completion
		// time and a customer to bill.
		both(`SELECT 'done task ' || t.id || ' is unbilled and has no completion time'
		   FROM tasks AS t
		  WHERE t.status = 'done' AND t.completed_at IS NULL
		    AND NOT EXISTS (SELECT 1 FROM invoice_lines AS il WHERE il.task_id = t.id) ORDER BY t.id`),
		both(`SELECT 'done task ' || t.id || ' belongs to missing customer ' || t.customer_id
		   FROM tasks AS t LEFT JOIN customers AS c ON c.id = t.customer_id
		  WHERE t.status = 'done' AND c.id IS NULL ORDER BY t.id`),
		// Billing takes its work from unbilled_tasks (migration 0005): a
		// done, unbilled task missing there would never be billed.
		both(`SELECT 'done task ' || t.id || ' is unbilled but missing from the billing queue (unbilled_tasks)'
		   FROM tasks AS t
		  WHERE t.status = 'done' AND NOT EXISTS (SELECT 1 FROM invoice_lines AS il WHERE il.task_id = t.id)
		    AND NOT EXISTS (SELECT 1 FROM unbilled_tasks AS u WHERE u.task_id = t.id AND u.customer_id = t.customer_id)
		  ORDER BY t.id`),
		both(`SELECT 'the billing queue holds task ' || u.task_id || ', which is not done and unbilled work of customer ' || u.customer_id
		   FROM unbilled_tasks AS u LEFT JOIN tasks AS t ON t.id = u.task_id
		  WHERE t.id IS NULL OR t.status <> 'done' OR t.customer_id <> u.customer_id
		     OR EXISTS (SELECT 1 FROM invoice_lines AS il WHERE il.task_id = u.task_id)
		  ORDER BY u.task_id`),
	}},
	{4, "every customer has a live portal token", []probe{
		// A hash holding anything but lower-case hex: SQLite's GLOB class,
		// PostgreSQL's regular expression match (~) with the same class.
		dialects(
			`SELECT 'customer ' || id || ' (' || company || ') has no live portal token'
			   FROM customers
			  WHERE status <> 'closed'
			    AND (token_revoked_at IS NOT NULL OR length(portal_token_hash) <> 64
			         OR portal_token_hash GLOB '*[^0-9a-f]*') ORDER BY id`,
			`SELECT 'customer ' || id || ' (' || company || ') has no live portal token'
			   FROM customers
			  WHERE status <> 'closed'
			    AND (token_revoked_at IS NOT NULL OR length(portal_token_hash) <> 64
			         OR portal_token_hash ~ '[^0-9a-f]') ORDER BY id`),
	}},
	{5, "no lead e-mail or company domain appears twice", []probe{
		// group_concat → string_agg, as in invariant 1.
		dialects(
			`SELECT 'lead e-mail ' || lower(email) || ' appears ' || COUNT(*) || ' times (leads ' || group_concat(id) || ')'
			   FROM leads WHERE email IS NOT NULL GROUP BY lower(email) HAVING COUNT(*) > 1`,
			`SELECT 'lead e-mail ' || lower(email) || ' appears ' || COUNT(*) || ' times (leads ' || string_agg(id::text, ',' ORDER BY id) || ')'
			   FROM leads WHERE email IS NOT NULL GROUP BY lower(email) HAVING COUNT(*) > 1`),
		dialects(
			`SELECT 'company domain ' || lower(domain_key) || ' appears ' || COUNT(*) || ' times (leads ' || group_concat(id) || ')'
			   FROM leads WHERE domain_key IS NOT NULL GROUP BY lower(domain_key) HAVING COUNT(*) > 1`,
			`SELECT 'company domain ' || lower(domain_key) || ' appears ' || COUNT(*) || ' times (leads ' || string_agg(id::text, ',' ORDER BY id) || ')'
			   FROM leads WHERE domain_key IS NOT NULL GROUP BY lower(domain_key) HAVING COUNT(*) > 1`),
	}},
	{6, "no task stays running past its lease", []probe{
		both(`SELECT 'task ' || id || ' is running with ' ||
		        CASE WHEN lease_expires_at IS NULL THEN 'no lease' ELSE 'a lease that expired at ' || lease_expires_at END
		   FROM tasks WHERE status = 'running' AND (lease_expires_at IS NULL OR lease_expires_at < ?) ORDER BY id`),
	}},
	{7, "a paid invoice never returns to open", []probe{
		both(`SELECT 'invoice ' || id || ' (' || COALESCE(number, 'draft') || ') was paid at ' || paid_at || ' but is ' || status
		   FROM invoices WHERE paid_at IS NOT NULL AND status IN ('draft','open') ORDER BY id`),
		// The guard itself: SQLite lists triggers in sqlite_master,
		// PostgreSQL in pg_trigger (by table, since its trigger names are
		// per table; a disabled trigger guards nothing, so it counts as
		// missing).
		dialects(
			`SELECT 'the guard trigger invoices_paid_is_final is missing'
			  WHERE NOT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'invoices_paid_is_final')`,
			`SELECT 'the guard trigger invoices_paid_is_final is missing'
			  WHERE NOT EXISTS (SELECT 1 FROM pg_trigger
			                     WHERE tgrelid = 'invoices'::regclass AND tgname = 'invoices_paid_is_final' AND tgenabled <> 'D')`),
	}},
	{8, "each Stripe event id is applied at most once", []probe{
		both(`SELECT 'Stripe event ' || event_id || ' recorded ' || COUNT(*) || ' times'
		   FROM stripe_events GROUP BY event_id HAVING COUNT(*) > 1`),
	}},
	// Not one of SPEC §3's eight: the dashboard reads its figures from
	// kept_totals, so they must equal what the rows say (repair with
	// check --repair-totals).
	{9, "every kept total equals the sum over all rows", []probe{
		// PostgreSQL 15 wants a name for a subquery in FROM.
		both(`SELECT 'kept total ' || metric || CASE WHEN label <> '' THEN '/' || label ELSE '' END ||
		        CASE WHEN currency <> '' THEN '/' || currency ELSE '' END ||
		        ' is ' || kept_n || ' rows, ' || kept_cents || ' cents; the rows say ' || rows_n || ' rows, ' || rows_cents || ' cents'
		   FROM (` + keptTotalsDriftSQL + `) AS drift`),
	}},
}

// CheckInvariants runs every invariant probe against the data as it is and
// reports each invariant with its violations. now is the time leases are
// judged against.
func (d *DB) CheckInvariants(ctx context.Context, now time.Time) ([]InvariantResult, error) {
	results := make([]InvariantResult, 0, len(invariants))
	for _, inv := range invariants {
		r := InvariantResult{Number: inv.number, Name: inv.name}
		for _, probe := range inv.probes {
			if err := d.probe(ctx, probe.text(d), now.UTC(), &r); err != nil {
				return nil, fmt.Errorf("check: invariant %d: %w", inv.number, err)
			}
		}
		results = append(results, r)
	}
	return results, nil
}

func (d *DB) probe(ctx context.Context, query string, now time.Time, r *InvariantResult) error {
	rows, err := d.bun.QueryContext(ctx, query, now)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return err
		}
		r.Count++
		if len(r.Violations) < maxViolationsShown {
			r.Violations = append(r.Violations, line)
		}
	}
	return rows.Err()
}
