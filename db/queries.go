package db

import (
	"context"
	"fmt"
	"strings"

	"github.com/uptrace/bun"
)

// MaxPerPage bounds every paged list, whatever the request asks for.
const MaxPerPage = 200

// ListQuery selects one page of a list, optionally filtered.
type ListQuery struct {
	Page    int    // 1-based; values below 1 mean 1
	PerPage int    // 0 means the default of 25; capped at MaxPerPage
	Search  string // case-insensitive substring match on the list's text columns
	Status  string // exact status, or "" for all
	// Statuses, when set, selects any of these statuses (invoice lists).
	Statuses []string
}

func (q ListQuery) normal() ListQuery {
	if q.Page < 1 {
		q.Page = 1
	}
	if q.PerPage <= 0 {
		q.PerPage = 25
	}
	if q.PerPage > MaxPerPage {
		q.PerPage = MaxPerPage
	}
	q.Search = strings.TrimSpace(q.Search)
	return q
}

func (q ListQuery) offset() int { return (q.Page - 1) * q.PerPage }

// Page describes where a page sits in its list.
type Page struct {
	Number, PerPage, Total int
}

// Pages is the number of pages (at least 1).
func (p Page) Pages() int {
	if p.Total == 0 || p.PerPage == 0 {
		return 1
	}
	return (p.Total + p.PerPage - 1) / p.PerPage
}

// HasPrev and HasNext say whether neighbouring pages exist.
func (p Page) HasPrev() bool { return p.Number > 1 }

// HasNext reports whether a later page exists.
func (p Page) HasNext() bool { return p.Number < p.Pages() }

// likePattern escapes a search term for LIKE ... ESCAPE '\'.
func likePattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(s)) + "%"
}

// searchWhere adds "any of these columns contains the term" to a query.
func searchWhere(sq *bun.SelectQuery, term string, cols ...string) *bun.SelectQuery {
	if term == "" {
		return sq
	}
	pat := likePattern(term)
	return sq.WhereGroup(" AND ", func(g *bun.SelectQuery) *bun.SelectQuery {
		for _, c := range cols {
			g = g.WhereOr("lower(coalesce("+c+", '')) LIKE ? ESCAPE '\\'", pat)
		}
		return g
	})
}

func page(sq *bun.SelectQuery, q ListQuery) *bun.SelectQuery {
	return sq.Limit(int64(q.PerPage)).Offset(int64(q.offset()))
}

// ListLeads returns a page of leads, newest first.
func (d *DB) ListLeads(ctx context.Context, q ListQuery) ([]Lead, Page, error) {
	q = q.normal()
	var leads []Lead
	sq := d.bun.NewSelect().Model(&leads)
	sq = searchWhere(sq, q.Search, "l.name", "l.email", "l.company", "l.niche", "l.website")
	if q.Status != "" {
		sq = sq.Where("l.status = ?", q.Status)
	}
	n, err := page(sq.OrderExpr("l.created_at DESC, l.id DESC"), q).ScanAndCount(ctx)
	if err != nil {
		return nil, Page{}, fmt.Errorf("store: unable to list leads: %w", err)
	}
	return leads, Page{q.Page, q.PerPage, int(n)}, nil
}

// CustomerRow is a customer with its money figures, for lists.
type CustomerRow struct {
	Customer `bun:",extend"`

	TaskCount int64 `bun:"task_count"`
	// Billed (open and paid invoices) and Paid, one entry per currency:
	// amounts in different currencies are never added together.
	Billed Totals `bun:"-"`
	Paid   Totals `bun:"-"`
}

// ListCustomers returns a page of customers, newest first.
func (d *DB) ListCustomers(ctx context.Context, q ListQuery) ([]CustomerRow, Page, error) {
	q = q.normal()
	var rows []CustomerRow
	sq := d.bun.NewSelect().Model(&rows).
		ColumnExpr("c.*").
		ColumnExpr("(SELECT COUNT(*) FROM tasks AS t WHERE t.customer_id = c.id) AS task_count")
	sq = searchWhere(sq, q.Search, "c.company", "c.contact_email", "c.plan")
	if q.Status != "" {
		sq = sq.Where("c.status = ?", q.Status)
	}
	n, err := page(sq.OrderExpr("c.created_at DESC, c.id DESC"), q).ScanAndCount(ctx)
	if err != nil {
		return nil, Page{}, fmt.Errorf("store: unable to list customers: %w", err)
	}
	if err := d.customerMoney(ctx, rows); err != nil {
		return nil, Page{}, err
	}
	return rows, Page{q.Page, q.PerPage, int(n)}, nil
}

// customerMoney fills Billed and Paid for a page of customers in one
// aggregate query, per customer and currency.
func (d *DB) customerMoney(ctx context.Context, rows []CustomerRow) error {
	if len(rows) == 0 {
		return nil
	}
	at := make(map[int64]*CustomerRow, len(rows))
	ids := make([]int64, len(rows))
	for i := range rows {
		ids[i], at[rows[i].ID] = rows[i].ID, &rows[i]
	}
	var sums []struct {
		CustomerID int64  `bun:"customer_id"`
		Currency   string `bun:"currency"`
		Billed     int64  `bun:"billed"`
		Paid       int64  `bun:"paid"`
	}
	err := d.bun.NewRaw(`SELECT customer_id, currency,
			SUM(CASE WHEN status IN ('open','paid') THEN amount_cents ELSE 0 END) AS billed,
			SUM(CASE WHEN status = 'paid' THEN amount_cents ELSE 0 END) AS paid
		FROM invoices WHERE customer_id IN (?) AND status IN ('open','paid')
		GROUP BY customer_id, currency ORDER BY currency`, bun.List(ids)).Scan(ctx, &sums)
	if err != nil {
		return fmt.Errorf("store: unable to sum customers' invoices: %w", err)
	}
	for _, s := range sums {
		r := at[s.CustomerID]
		r.Billed = append(r.Billed, Money{Cents: s.Billed, Currency: s.Currency})
		if s.Paid != 0 {
			r.Paid = append(r.Paid, Money{Cents: s.Paid, Currency: s.Currency})
		}
	}
	return nil
}

// TaskRow is a task with its customer's company name.
type TaskRow struct {
	Task `bun:",extend"`

	Company string `bun:"company"`
}

// ListTasks returns a page of tasks, newest first; with Status "done" they
// are ordered by completion time instead.
func (d *DB) ListTasks(ctx context.Context, q ListQuery) ([]TaskRow, Page, error) {
	return d.listTasks(ctx, q, 0)
}

// ListCustomerTasks is ListTasks for one customer.
func (d *DB) ListCustomerTasks(ctx context.Context, customerID int64, q ListQuery) ([]TaskRow, Page, error) {
	return d.listTasks(ctx, q, customerID)
}

func (d *DB) listTasks(ctx context.Context, q ListQuery, customerID int64) ([]TaskRow, Page, error) {
	q = q.normal()
	var rows []TaskRow
	sq := d.bun.NewSelect().Model(&rows).
		ColumnExpr("t.*").ColumnExpr("c.company AS company").
		Join("JOIN customers AS c ON c.id = t.customer_id")
	sq = searchWhere(sq, q.Search, "t.kind", "t.description", "c.company", "t.result")
	if q.Status != "" {
		sq = sq.Where("t.status = ?", q.Status)
	}
	if customerID != 0 {
		sq = sq.Where("t.customer_id = ?", customerID)
	}
	if q.Status == TaskDone {
		sq = sq.OrderExpr("t.completed_at DESC, t.id DESC")
	} else {
		sq = sq.OrderExpr("t.created_at DESC, t.id DESC")
	}
	n, err := page(sq, q).ScanAndCount(ctx)
	if err != nil {
		return nil, Page{}, fmt.Errorf("store: unable to list tasks: %w", err)
	}
	return rows, Page{q.Page, q.PerPage, int(n)}, nil
}

// InvoiceRow is an invoice with its customer's company name.
type InvoiceRow struct {
	Invoice `bun:",extend"`

	Company   string `bun:"company"`
	LineCount int64  `bun:"line_count"`
}

// ListInvoices returns a page of invoices, newest first.
func (d *DB) ListInvoices(ctx context.Context, q ListQuery) ([]InvoiceRow, Page, error) {
	return d.listInvoices(ctx, q, 0)
}

// ListCustomerInvoices is ListInvoices for one customer.
func (d *DB) ListCustomerInvoices(ctx context.Context, customerID int64, q ListQuery) ([]InvoiceRow, Page, error) {
	return d.listInvoices(ctx, q, customerID)
}

func (d *DB) listInvoices(ctx context.Context, q ListQuery, customerID int64) ([]InvoiceRow, Page, error) {
	q = q.normal()
	var rows []InvoiceRow
	sq := d.bun.NewSelect().Model(&rows).
		ColumnExpr("i.*").ColumnExpr("c.company AS company").
		ColumnExpr("(SELECT COUNT(*) FROM invoice_lines AS il WHERE il.invoice_id = i.id) AS line_count").
		Join("JOIN customers AS c ON c.id = i.customer_id")
	sq = searchWhere(sq, q.Search, "i.number", "c.company", "i.payer_email")
	if q.Status != "" {
		sq = sq.Where("i.status = ?", q.Status)
	}
	if len(q.Statuses) > 0 {
		sq = sq.Where("i.status IN (?)", bun.List(q.Statuses))
	}
	if customerID != 0 {
		sq = sq.Where("i.customer_id = ?", customerID)
	}
	n, err := page(sq.OrderExpr("i.created_at DESC, i.id DESC"), q).ScanAndCount(ctx)
	if err != nil {
		return nil, Page{}, fmt.Errorf("store: unable to list invoices: %w", err)
	}
	return rows, Page{q.Page, q.PerPage, int(n)}, nil
}

// ListAgentRuns returns a page of the cycle log, newest first. Status filters
// by outcome.
func (d *DB) ListAgentRuns(ctx context.Context, q ListQuery) ([]AgentRun, Page, error) {
	q = q.normal()
	var runs []AgentRun
	sq := d.bun.NewSelect().Model(&runs)
	sq = searchWhere(sq, q.Search, "r.agent", "r.message")
	if q.Status != "" {
		sq = sq.Where("r.outcome = ?", q.Status)
	}
	n, err := page(sq.OrderExpr("r.started_at DESC, r.id DESC"), q).ScanAndCount(ctx)
	if err != nil {
		return nil, Page{}, fmt.Errorf("store: unable to list agent runs: %w", err)
	}
	return runs, Page{q.Page, q.PerPage, int(n)}, nil
}

// ListAudit returns a page of the audit log, newest first.
func (d *DB) ListAudit(ctx context.Context, q ListQuery) ([]AuditEntry, Page, error) {
	q = q.normal()
	var entries []AuditEntry
	sq := d.bun.NewSelect().Model(&entries)
	sq = searchWhere(sq, q.Search, "actor", "action", "target", "detail")
	n, err := page(sq.OrderExpr("created_at DESC, id DESC"), q).ScanAndCount(ctx)
	if err != nil {
		return nil, Page{}, fmt.Errorf("store: unable to list audit log: %w", err)
	}
	return entries, Page{q.Page, q.PerPage, int(n)}, nil
}

// Setting returns a run-time setting, or def when it was never set.
func (d *DB) Setting(ctx context.Context, key, def string) (string, error) {
	var s Setting
	err := d.bun.NewSelect().Model(&s).Where("key = ?", key).Scan(ctx)
	if err = notFound(err); err == ErrNotFound {
		return def, nil
	}
	if err != nil {
		return "", fmt.Errorf("store: unable to read setting %s: %w", key, err)
	}
	return s.Value, nil
}

// SetSetting stores a run-time setting.
func (d *DB) SetSetting(ctx context.Context, key, value string) error {
	s := &Setting{Key: key, Value: value, UpdatedAt: d.Now()}
	_, err := d.bun.NewInsert().Model(s).
		On("CONFLICT (key) DO UPDATE").
		Set("value = EXCLUDED.value, updated_at = EXCLUDED.updated_at").
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("store: unable to save setting %s: %w", key, err)
	}
	return nil
}
