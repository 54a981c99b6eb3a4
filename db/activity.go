package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// This file answers "what happened": the activity summary of a window of
// time, and the timeline of one record.

// Activity is what the business did in a window of time. Every figure is
// counted in SQL over all rows; the window includes both ends.
type Activity struct {
	Since, Until time.Time

	LeadsCreated, LeadsContacted, LeadsResponded, LeadsConverted int64

	// EmailsByStatus counts the outbox messages whose outcome time (sent_at,
	// or updated_at for those never sent) falls in the window, by status.
	EmailsByStatus map[string]int64
	Emails         int64

	TasksDone            int64
	Reward, Cost, Profit Totals // of the tasks done in the window

	InvoicesIssued int64
	Issued         Totals // amount of the invoices issued in the window
	InvoicesPaid   int64
	Revenue        Totals // invoices paid in the window and still paid
}

// Activity counts what happened between since and until.
func (d *DB) Activity(ctx context.Context, since, until time.Time) (Activity, error) {
	a := Activity{Since: since.UTC(), Until: until.UTC(), EmailsByStatus: map[string]int64{}}
	w := []any{a.Since, a.Until}
	err := d.bun.NewRaw(d.pin(`SELECT
		(SELECT COUNT(*) FROM leads WHERE created_at >= ?0 AND created_at <= ?1),
		(SELECT COUNT(*) FROM leads WHERE contacted_at >= ?0 AND contacted_at <= ?1),
		(SELECT COUNT(*) FROM leads WHERE responded_at >= ?0 AND responded_at <= ?1),
		(SELECT COUNT(*) FROM leads WHERE converted_at >= ?0 AND converted_at <= ?1),
		(SELECT COUNT(*) FROM tasks WHERE status = 'done' AND completed_at >= ?0 AND completed_at <= ?1),
		(SELECT COUNT(*) FROM invoices WHERE issued_at >= ?0 AND issued_at <= ?1),
		(SELECT COUNT(*) FROM invoices INDEXED BY invoices_paid_at WHERE status = 'paid' AND paid_at >= ?0 AND paid_at <= ?1)`), w...).
		Scan(ctx, &a.LeadsCreated, &a.LeadsContacted, &a.LeadsResponded, &a.LeadsConverted,
			&a.TasksDone, &a.InvoicesIssued, &a.InvoicesPaid)
	if err != nil {
		return a, fmt.Errorf("store: unable to count activity: %w", err)
	}
	rows, err := d.bun.QueryContext(ctx, `SELECT status, COUNT(*) FROM messages
		WHERE COALESCE(sent_at, updated_at) >= ?0 AND COALESCE(sent_at, updated_at) <= ?1
		GROUP BY status`, w...)
	if err != nil {
		return a, fmt.Errorf("store: unable to count e-mails: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var status string
		var n int64
		if err := rows.Scan(&status, &n); err != nil {
			return a, fmt.Errorf("store: unable to read e-mail counts: %w", err)
		}
		a.EmailsByStatus[status] = n
		a.Emails += n
	}
	if err := rows.Err(); err != nil {
		return a, fmt.Errorf("store: unable to count e-mails: %w", err)
	}
	const done = " FROM tasks WHERE status = 'done' AND completed_at >= ?0 AND completed_at <= ?1 GROUP BY currency ORDER BY currency"
	sums := []struct {
		dst   *Totals
		query string
	}{
		{&a.Reward, "SELECT currency, SUM(reward_cents)" + done},
		{&a.Cost, "SELECT currency, SUM(cost_cents)" + done},
		{&a.Profit, "SELECT currency, SUM(profit_cents)" + done},
		{&a.Issued, "SELECT currency, SUM(amount_cents) FROM invoices WHERE issued_at >= ?0 AND issued_at <= ?1 GROUP BY currency ORDER BY currency"},
		// The partial index of paid invoices by paid_at (0023), not the
		// search by status the planner prefers, which reads every paid one.
		{&a.Revenue, "SELECT currency, SUM(amount_cents) FROM invoices INDEXED BY invoices_paid_at WHERE status = 'paid' AND paid_at >= ?0 AND paid_at <= ?1 GROUP BY currency ORDER BY currency"},
	}
	for _, s := range sums {
		if *s.dst, err = d.totals(ctx, d.pin(s.query), w...); err != nil {
			return a, err
		}
	}
	return a, nil
}

// A timeline is one UNION ALL query: each branch turns one kind of
// timestamp into entries (at, ord, event, detail, ref, ref_id). ?0 is the
// record's id. ord orders entries of the same instant by their place in the
// lifecycle (a reply before the conversion it caused).

// leadBranches are a lead's own events, its outreach and its replies; lead
// is the SQL expression of the lead's id.
func leadBranches(lead string) string {
	return strings.ReplaceAll(`
	UNION ALL SELECT created_at, 10, 'Lead created', 'source: ' || source, 'lead', id FROM leads WHERE id = {lead}
	UNION ALL SELECT contacted_at, 30, CASE WHEN dry_run THEN 'Contacted (dry run: nothing was sent)' ELSE 'Contacted' END,
		'', 'lead', id FROM leads WHERE id = {lead} AND contacted_at IS NOT NULL
	UNION ALL SELECT responded_at, 50, 'Responded', '', 'lead', id FROM leads WHERE id = {lead} AND responded_at IS NOT NULL
	UNION ALL SELECT converted_at, 60, 'Converted', '', 'lead', id FROM leads WHERE id = {lead} AND converted_at IS NOT NULL
	UNION ALL SELECT created_at, 20, 'E-mail queued', subject, 'message', id FROM messages WHERE lead_id = {lead}
	UNION ALL SELECT sent_at, 25, CASE status WHEN 'dry_run' THEN 'E-mail recorded, not sent (dry run)' ELSE 'E-mail sent' END,
		subject, 'message', id FROM messages WHERE lead_id = {lead} AND sent_at IS NOT NULL
	UNION ALL SELECT updated_at, 25, 'E-mail ' || status, error, 'message', id FROM messages
		WHERE lead_id = {lead} AND status IN ('failed', 'suppressed')
	UNION ALL SELECT received_at, 40, CASE WHEN simulated THEN 'Reply received (simulated)' ELSE 'Reply received' END,
		subject, 'reply', id FROM replies WHERE lead_id = {lead}`, "{lead}", lead)
}

// taskBranches are the events of the tasks matching where (alias t). The
// unary + keeps the planner off the status-led indexes (tasks_status_completed
// would read every done task of the business for one record's timeline);
// where's own index (the id, or tasks_customer) bounds each branch.
func taskBranches(where string) string {
	return strings.ReplaceAll(`
	UNION ALL SELECT t.created_at, 80, 'Task opened', t.kind, 'task', t.id FROM tasks AS t WHERE {where}
	UNION ALL SELECT t.started_at, 81, 'Task claimed', t.kind || ', attempt ' || t.attempts, 'task', t.id
		FROM tasks AS t WHERE {where} AND t.started_at IS NOT NULL
	UNION ALL SELECT t.completed_at, 82, 'Task done', t.kind, 'task', t.id
		FROM tasks AS t WHERE {where} AND t.status = 'done' AND +t.completed_at IS NOT NULL
	UNION ALL SELECT t.updated_at, 82, 'Task failed', t.kind || ': ' || t.last_error, 'task', t.id
		FROM tasks AS t WHERE {where} AND t.status = 'failed'`, "{where}", where)
}

// invoiceBranches are the events of the invoices matching where (alias i)
// and their Stripe events; the unary + on status keeps the planner off
// invoices_status_created, as in taskBranches. {label} is the invoice's
// number and amount ("HA-0007 · 12.50 EUR"), spelled per dialect by
// timelineSQL.
func invoiceBranches(where string) string {
	return strings.NewReplacer("{where}", where).Replace(`
	UNION ALL SELECT i.issued_at, 91, 'Invoice issued', {label}, 'invoice', i.id
		FROM invoices AS i WHERE {where} AND i.issued_at IS NOT NULL
	UNION ALL SELECT i.paid_at, 93, 'Invoice paid', {label}, 'invoice', i.id
		FROM invoices AS i WHERE {where} AND i.paid_at IS NOT NULL
	UNION ALL SELECT i.updated_at, 94, CASE i.status WHEN 'void' THEN 'Invoice voided' ELSE 'Invoice refunded' END, {label}, 'invoice', i.id
		FROM invoices AS i WHERE {where} AND +i.status IN ('void', 'refunded')
	UNION ALL SELECT se.received_at, 92, 'Stripe event ' || se.type, se.outcome, 'stripe_event', se.id
		FROM stripe_events AS se JOIN invoices AS i ON i.id = se.invoice_id WHERE {where}`)
}

var (
	leadTimeline = leadBranches("?0") + `
	UNION ALL SELECT created_at, 70, 'Customer created', company, 'customer', id FROM customers WHERE lead_id = ?0`

	customerTimeline = leadBranches("(SELECT lead_id FROM customers WHERE id = ?0)") + `
	UNION ALL SELECT created_at, 70, 'Customer created', 'plan: ' || plan, 'customer', id FROM customers WHERE id = ?0
	UNION ALL SELECT token_created_at, 71, 'Portal token replaced', '', 'customer', id FROM customers
		WHERE id = ?0 AND token_created_at <> created_at
	UNION ALL SELECT token_revoked_at, 72, 'Portal link revoked', '', 'customer', id FROM customers
		WHERE id = ?0 AND token_revoked_at IS NOT NULL` +
		taskBranches("t.customer_id = ?0") + invoiceBranches("i.customer_id = ?0")

	taskTimeline = taskBranches("t.id = ?0") + `
	UNION ALL SELECT il.created_at, 90, 'Billed', 'on ' || COALESCE(i.number, 'a draft invoice'), 'invoice', i.id
		FROM invoice_lines AS il JOIN invoices AS i ON i.id = il.invoice_id WHERE il.task_id = ?0` +
		invoiceBranches("i.id IN (SELECT invoice_id FROM invoice_lines WHERE task_id = ?0)")

	invoiceTimeline = `
	UNION ALL SELECT i.created_at, 89, 'Invoice created', COALESCE(i.number, 'draft'), 'invoice', i.id FROM invoices AS i WHERE i.id = ?0` +
		invoiceBranches("i.id = ?0")
)

// invoiceLabelSQLite and invoiceLabelPostgres write an invoice's label,
// the same text on both: SQLite's printf has %02d; PostgreSQL's format()
// knows only %s, %I and %L, so the cents are padded with lpad. Amounts are
// never negative (a CHECK of invoices), so / and % split them as printf
// would.
const (
	invoiceLabelSQLite   = `printf('%s · %d.%02d %s', COALESCE(i.number, 'draft'), i.amount_cents / 100, i.amount_cents % 100, upper(i.currency))`
	invoiceLabelPostgres = `COALESCE(i.number, 'draft') || ' · ' || (i.amount_cents / 100)::text || '.' || lpad((i.amount_cents % 100)::text, 2, '0') || ' ' || upper(i.currency)`
)

// postgresTimeline turns the SQLite spelling of the timeline's branches
// into PostgreSQL's. The unary + that keeps SQLite's planner off an index
// is no operator on timestamps or text in PostgreSQL, whose planner needs
// no such hint: each branch is bounded by its record's id or customer.
var postgresTimeline = strings.NewReplacer("+t.completed_at", "t.completed_at", "+i.status", "i.status", "{label}", invoiceLabelPostgres)

// timelineSQL is the timeline query of branches for the store's dialect.
func (d *DB) timelineSQL(branches string) string {
	q := `SELECT at, event, COALESCE(detail, '') AS detail, ref, ref_id FROM (
		SELECT a.created_at AS at, 100 AS ord, 'Admin: ' || a.action AS event,
		       a.actor || CASE WHEN a.detail <> '' THEN ' · ' || a.detail ELSE '' END AS detail,
		       'audit' AS ref, a.id AS ref_id
		FROM audit_log AS a WHERE lower(a.target) IN (?1)` + branches + `
	) AS timeline ORDER BY at DESC, ord DESC, ref_id DESC LIMIT ?2`
	if d.Postgres() {
		return postgresTimeline.Replace(q)
	}
	return strings.ReplaceAll(q, "{label}", invoiceLabelSQLite)
}

// timeline runs a record's branches, with the audit entries whose target is
// one of targets ("customer 12", any case), newest first.
func (d *DB) timeline(ctx context.Context, branches string, id int64, targets ...string) (Timeline, error) {
	for i, t := range targets {
		targets[i] = strings.ToLower(t)
	}
	var entries []TimelineEntry
	err := d.bun.NewRaw(d.timelineSQL(branches), id, bun.List(targets), TimelineLimit+1).Scan(ctx, &entries)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Timeline{}, err
	}
	tl := Timeline{Entries: entries}
	if len(entries) > TimelineLimit {
		tl.Entries, tl.More = entries[:TimelineLimit], true
	}
	return tl, nil
}
