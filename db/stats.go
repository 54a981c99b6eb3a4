package db

import (
	"context"
	"fmt"
)

// Stats are the figures the dashboard and the control room show. Every one is
// an SQL aggregate over all rows (the prototype summed only the newest 20).
type Stats struct {
	Revenue     Totals // paid invoices
	Outstanding Totals // open invoices
	Overdue     Totals // open invoices past their due date
	Reward      Totals // done tasks
	Cost        Totals // done tasks
	Profit      Totals // done tasks: reward - cost
	Unbilled    Totals // done tasks not yet on any invoice line

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

// Stats computes every dashboard figure in a handful of aggregate queries.
func (d *DB) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	var err error
	now := d.Now()
	sums := []struct {
		dst   *Totals
		query string
		args  []any
	}{
		{&s.Revenue, "SELECT currency, SUM(amount_cents) FROM invoices WHERE status = 'paid' GROUP BY currency ORDER BY currency", nil},
		{&s.Outstanding, "SELECT currency, SUM(amount_cents) FROM invoices WHERE status = 'open' GROUP BY currency ORDER BY currency", nil},
		{&s.Overdue, "SELECT currency, SUM(amount_cents) FROM invoices WHERE status = 'open' AND due_at < ? GROUP BY currency ORDER BY currency", []any{now}},
		{&s.Reward, "SELECT currency, SUM(reward_cents) FROM tasks WHERE status = 'done' GROUP BY currency ORDER BY currency", nil},
		{&s.Cost, "SELECT currency, SUM(cost_cents) FROM tasks WHERE status = 'done' GROUP BY currency ORDER BY currency", nil},
		{&s.Profit, "SELECT currency, SUM(profit_cents) FROM tasks WHERE status = 'done' GROUP BY currency ORDER BY currency", nil},
		{&s.Unbilled, `SELECT t.currency, SUM(t.reward_cents) FROM tasks AS t
			WHERE t.status = 'done' AND NOT EXISTS (SELECT 1 FROM invoice_lines AS il WHERE il.task_id = t.id)
			GROUP BY t.currency ORDER BY t.currency`, nil},
	}
	for _, q := range sums {
		if *q.dst, err = d.totals(ctx, q.query, q.args...); err != nil {
			return s, err
		}
	}
	counts := []struct {
		dst   *map[string]int64
		total *int64
		table string
	}{
		{&s.LeadsByStatus, &s.Leads, "leads"},
		{&s.CustomersByStatus, &s.Customers, "customers"},
		{&s.TasksByStatus, &s.Tasks, "tasks"},
		{&s.InvoicesByStatus, &s.Invoices, "invoices"},
		{&s.MessagesByStatus, &s.Messages, "messages"},
	}
	for _, c := range counts {
		if *c.dst, *c.total, err = d.countByStatus(ctx, c.table); err != nil {
			return s, err
		}
	}
	return s, nil
}

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

// countByStatus counts the rows of a table by status. table is one of a fixed
// set of names chosen in code, never user input.
func (d *DB) countByStatus(ctx context.Context, table string) (map[string]int64, int64, error) {
	rows, err := d.bun.QueryContext(ctx, "SELECT status, COUNT(*) FROM "+table+" GROUP BY status")
	if err != nil {
		return nil, 0, fmt.Errorf("store: unable to count %s: %w", table, err)
	}
	defer rows.Close()
	out := map[string]int64{}
	var total int64
	for rows.Next() {
		var status string
		var n int64
		if err := rows.Scan(&status, &n); err != nil {
			return nil, 0, fmt.Errorf("store: unable to read %s counts: %w", table, err)
		}
		out[status] = n
		total += n
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("store: unable to count %s: %w", table, err)
	}
	return out, total, nil
}
