package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// This file reads one record with the rows around it for the control room's
// record pages, and every record in id order for the CSV export.

// RelatedLimit bounds the related rows a record page lists in full (a lead's
// messages and replies, an invoice's Stripe events); the counts stay exact.
const RelatedLimit = 50

// TimelineLimit bounds a record's timeline; Timeline.More says when older
// entries were left out.
const TimelineLimit = 200

// TimelineEntry is one thing that happened to a record or a row around it.
type TimelineEntry struct {
	At     time.Time `bun:"at"`
	Event  string    `bun:"event"`
	Detail string    `bun:"detail"`
	// Ref and RefID name the row the entry comes from: lead, customer,
	// task, invoice, message, reply, stripe_event or audit.
	Ref   string `bun:"ref"`
	RefID int64  `bun:"ref_id"`
}

// Timeline is a record's history, newest first.
type Timeline struct {
	Entries []TimelineEntry
	More    bool // older entries exist beyond TimelineLimit
}

// LeadDetail is a lead with its outreach, replies and customer.
type LeadDetail struct {
	Lead         Lead
	Customer     *Customer // nil until the lead is converted
	Messages     []Message // newest first, at most RelatedLimit
	MessageCount int64
	Replies      []Reply // newest first, at most RelatedLimit
	ReplyCount   int64
	Timeline     Timeline
}

// CustomerDetail is a customer with its lead and money. Its tasks and
// invoices are paged lists of their own (ListCustomerTasks, …).
type CustomerDetail struct {
	Customer Customer
	Lead     *Lead            // nil for a customer an admin created by hand
	Profit   []CustomerProfit // one row per currency
	// PortalActions are the latest portal link rotations and revocations
	// from the audit log, newest first.
	PortalActions []AuditEntry
	Timeline      Timeline
}

// BilledLine is the invoice line that bills a task, with its invoice.
type BilledLine struct {
	InvoiceLine `bun:",extend"`

	Number        *string `bun:"number"`
	InvoiceStatus string  `bun:"invoice_status"`
	Currency      string  `bun:"currency"`
}

// Amount is the line's amount as money.
func (l BilledLine) Amount() Money { return Money{Cents: l.AmountCents, Currency: l.Currency} }

// TaskDetail is a task with its customer and the line that bills it.
type TaskDetail struct {
	Task     Task
	Customer Customer
	Line     *BilledLine // nil while unbilled
	Timeline Timeline
}

// InvoiceLineRow is an invoice line with its task's kind and status.
type InvoiceLineRow struct {
	InvoiceLine `bun:",extend"`

	TaskKind   string `bun:"task_kind"`
	TaskStatus string `bun:"task_status"`
}

// InvoiceDetail is an invoice with its customer, lines and Stripe events.
type InvoiceDetail struct {
	Invoice    Invoice
	Customer   Customer
	Lines      []InvoiceLineRow // every line, in id order
	Events     []StripeEvent    // newest first, at most RelatedLimit
	EventCount int64
	Timeline   Timeline
}

// LeadDetail reads lead id with its related rows; ErrNotFound when missing.
func (d *DB) LeadDetail(ctx context.Context, id int64) (*LeadDetail, error) {
	r := &LeadDetail{}
	if err := d.one(ctx, &r.Lead, "l.id = ?", id); err != nil {
		return nil, fmt.Errorf("store: unable to read lead %d: %w", id, err)
	}
	var err error
	if r.Customer, err = optional(ctx, d, new(Customer), "c.lead_id = ?", id); err != nil {
		return nil, fmt.Errorf("store: unable to read the customer of lead %d: %w", id, err)
	}
	if r.MessageCount, err = d.bun.NewSelect().Model(&r.Messages).Where("m.lead_id = ?", id).
		OrderExpr("m.created_at DESC, m.id DESC").Limit(RelatedLimit).ScanAndCount(ctx); err != nil {
		return nil, fmt.Errorf("store: unable to read the messages of lead %d: %w", id, err)
	}
	if r.ReplyCount, err = d.bun.NewSelect().Model(&r.Replies).Where("lead_id = ?", id).
		OrderExpr("received_at DESC, id DESC").Limit(RelatedLimit).ScanAndCount(ctx); err != nil {
		return nil, fmt.Errorf("store: unable to read the replies of lead %d: %w", id, err)
	}
	if r.Timeline, err = d.timeline(ctx, leadTimeline, id, "lead "+itoa(id)); err != nil {
		return nil, fmt.Errorf("store: unable to read the timeline of lead %d: %w", id, err)
	}
	return r, nil
}

// CustomerDetail reads customer id with its lead, profit and timeline.
func (d *DB) CustomerDetail(ctx context.Context, id int64) (*CustomerDetail, error) {
	r := &CustomerDetail{}
	if err := d.one(ctx, &r.Customer, "c.id = ?", id); err != nil {
		return nil, fmt.Errorf("store: unable to read customer %d: %w", id, err)
	}
	var err error
	if r.Customer.LeadID != nil {
		if r.Lead, err = optional(ctx, d, new(Lead), "l.id = ?", *r.Customer.LeadID); err != nil {
			return nil, fmt.Errorf("store: unable to read the lead of customer %d: %w", id, err)
		}
	}
	err = d.bun.NewRaw(`WITH work AS (
			SELECT currency, `+finishedWork+`
			FROM tasks WHERE customer_id = ?0 AND status IN ('done', 'failed') GROUP BY currency),
		paid AS (
			SELECT currency, SUM(amount_cents) AS paid
			FROM invoices WHERE customer_id = ?0 AND status = 'paid' GROUP BY currency),
		keys AS (SELECT currency FROM work UNION SELECT currency FROM paid)
		SELECT ?0 AS customer_id, ?1 AS company, k.currency, COALESCE(w.reward, 0) AS reward_cents,
		       COALESCE(w.cost, 0) AS cost_cents, COALESCE(w.profit, 0) AS profit_cents, COALESCE(p.paid, 0) AS paid_cents
		FROM keys AS k LEFT JOIN work AS w ON w.currency = k.currency LEFT JOIN paid AS p ON p.currency = k.currency
		ORDER BY k.currency`, id, r.Customer.Company).Scan(ctx, &r.Profit)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: unable to sum the profit of customer %d: %w", id, err)
	}
	if r.PortalActions, err = d.PortalLinkActions(ctx, id, 5); err != nil {
		return nil, err
	}
	if r.Timeline, err = d.timeline(ctx, customerTimeline, id, "customer "+itoa(id)); err != nil {
		return nil, fmt.Errorf("store: unable to read the timeline of customer %d: %w", id, err)
	}
	return r, nil
}

// TaskDetail reads task id with its customer and invoice line.
func (d *DB) TaskDetail(ctx context.Context, id int64) (*TaskDetail, error) {
	r := &TaskDetail{}
	if err := d.one(ctx, &r.Task, "t.id = ?", id); err != nil {
		return nil, fmt.Errorf("store: unable to read task %d: %w", id, err)
	}
	if err := d.one(ctx, &r.Customer, "c.id = ?", r.Task.CustomerID); err != nil {
		return nil, fmt.Errorf("store: unable to read the customer of task %d: %w", id, err)
	}
	var lines []BilledLine
	err := d.bun.NewSelect().Model(&lines).ModelTableExpr("invoice_lines AS il").
		ColumnExpr("il.*").
		ColumnExpr("i.number AS number, i.status AS invoice_status, i.currency AS currency").
		Join("JOIN invoices AS i ON i.id = il.invoice_id").
		Where("il.task_id = ?", id).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: unable to read the invoice line of task %d: %w", id, err)
	}
	if len(lines) > 0 {
		r.Line = &lines[0]
	}
	if r.Timeline, err = d.timeline(ctx, taskTimeline, id, "task "+itoa(id)); err != nil {
		return nil, fmt.Errorf("store: unable to read the timeline of task %d: %w", id, err)
	}
	return r, nil
}

// InvoiceDetail reads invoice id with its customer, lines and Stripe events.
func (d *DB) InvoiceDetail(ctx context.Context, id int64) (*InvoiceDetail, error) {
	r := &InvoiceDetail{}
	if err := d.one(ctx, &r.Invoice, "i.id = ?", id); err != nil {
		return nil, fmt.Errorf("store: unable to read invoice %d: %w", id, err)
	}
	if err := d.one(ctx, &r.Customer, "c.id = ?", r.Invoice.CustomerID); err != nil {
		return nil, fmt.Errorf("store: unable to read the customer of invoice %d: %w", id, err)
	}
	err := d.bun.NewSelect().Model(&r.Lines).ModelTableExpr("invoice_lines AS il").
		ColumnExpr("il.*").
		ColumnExpr("t.kind AS task_kind, t.status AS task_status").
		Join("JOIN tasks AS t ON t.id = il.task_id").
		Where("il.invoice_id = ?", id).OrderExpr("il.id").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: unable to read the lines of invoice %d: %w", id, err)
	}
	if r.EventCount, err = d.bun.NewSelect().Model(&r.Events).Where("invoice_id = ?", id).
		OrderExpr("received_at DESC, id DESC").Limit(RelatedLimit).ScanAndCount(ctx); err != nil {
		return nil, fmt.Errorf("store: unable to read the Stripe events of invoice %d: %w", id, err)
	}
	targets := []string{"invoice " + itoa(id)}
	if n := r.Invoice.Number; n != nil {
		targets = append(targets, *n, "invoice "+*n)
	}
	if r.Timeline, err = d.timeline(ctx, invoiceTimeline, id, targets...); err != nil {
		return nil, fmt.Errorf("store: unable to read the timeline of invoice %d: %w", id, err)
	}
	return r, nil
}

// one scans the single row of model's table matching where.
func (d *DB) one(ctx context.Context, model any, where string, args ...any) error {
	return notFound(d.bun.NewSelect().Model(model).Where(where, args...).Limit(1).Scan(ctx))
}

// optional is one for a row that may not exist: nil, not an error.
func optional[T any](ctx context.Context, d *DB, model *T, where string, args ...any) (*T, error) {
	err := d.one(ctx, model, where, args...)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return model, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// LeadsAfter returns up to limit leads with an id above afterID, in id order:
// the export pages through every row with the last id it saw, so rows added
// meanwhile never shift a page.
func (d *DB) LeadsAfter(ctx context.Context, afterID int64, limit int) ([]Lead, error) {
	var rows []Lead
	return rows, d.after(ctx, &rows, "l", afterID, limit)
}

// CustomersAfter is LeadsAfter for customers.
func (d *DB) CustomersAfter(ctx context.Context, afterID int64, limit int) ([]Customer, error) {
	var rows []Customer
	return rows, d.after(ctx, &rows, "c", afterID, limit)
}

// TasksAfter is LeadsAfter for tasks.
func (d *DB) TasksAfter(ctx context.Context, afterID int64, limit int) ([]Task, error) {
	var rows []Task
	return rows, d.after(ctx, &rows, "t", afterID, limit)
}

// InvoicesAfter is LeadsAfter for invoices.
func (d *DB) InvoicesAfter(ctx context.Context, afterID int64, limit int) ([]Invoice, error) {
	var rows []Invoice
	return rows, d.after(ctx, &rows, "i", afterID, limit)
}

func (d *DB) after(ctx context.Context, rows any, alias string, afterID int64, limit int) error {
	if limit <= 0 || limit > MaxPerPage {
		limit = MaxPerPage
	}
	err := d.bun.NewSelect().Model(rows).
		Where(alias+".id > ?", afterID).OrderExpr(alias + ".id").Limit(int64(limit)).Scan(ctx)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: unable to read rows for export: %w", err)
	}
	return nil
}
