package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// This file holds invoices: billing finished work exactly once (billing),
// the payment links of open invoices, and the invoice list. Onboarding is
// in customers.go, leasing and finishing tasks (ops) in tasks.go, the
// profit figures in profit.go. Every method that writes does so in one
// transaction, and every time it records comes from the caller's clock.

// FlagOverMaximum is the flag of an invoice issued above the Stripe maximum:
// it gets no payment link and an operator bills it by hand.
const FlagOverMaximum = "over Stripe maximum: needs manual billing"

// InvoiceCounter is the counters row that numbers invoices.
const InvoiceCounter = "invoice_number"

// ErrAlreadyBilled is returned by BillCustomer when a task it was billing
// turned out to be on an invoice line already (a concurrent run billed it):
// the unique task_id of invoice_lines refused the line and the whole
// invoice was rolled back, number included.
var ErrAlreadyBilled = errors.New("task already billed")

// BillingRules are the limits billing applies to each invoice, in the
// invoice's own minor units.
type BillingRules struct {
	MinAmountCents int64         // a smaller total stays unbilled until it grows
	MaxAmountCents int64         // a larger total is issued flagged, without a link
	DueAfter       time.Duration // due date = issue time + DueAfter
}

// Billing is what billing one customer did.
type Billing struct {
	Invoices     []Invoice // issued, one per currency of unbilled work
	Lines        int
	BelowMinimum int // currencies whose unbilled total stays carried over
	Flagged      int // invoices issued over the maximum
}

// customersWithUnbilledWorkSQL reads unbilled_tasks, which holds only the
// done tasks on no invoice line (kept by the triggers of migration 0005), in
// the order of its index (customer_id, task_id) from the page's start: a
// range scan of the unbilled work, not of every done task ever billed. Each
// row is confirmed against tasks (primary key) and invoice_lines (its UNIQUE
// task_id index), so the answer is exactly that of the tasks themselves.
// CROSS JOIN keeps unbilled_tasks the outer loop: without statistics the
// planner would rather walk every done task and look each up here.
const customersWithUnbilledWorkSQL = `SELECT DISTINCT u.customer_id FROM unbilled_tasks AS u INDEXED BY unbilled_tasks_customer
	CROSS JOIN tasks AS t ON t.id = u.task_id
	WHERE u.customer_id > ? AND t.customer_id = u.customer_id AND t.status = 'done'
	  AND NOT EXISTS (SELECT 1 FROM invoice_lines AS il WHERE il.task_id = t.id)
	ORDER BY u.customer_id LIMIT ?`

// CustomersWithUnbilledWork returns up to limit ids, in order, above afterID,
// of customers with done tasks on no invoice line. Callers page through all
// customers by passing the last id they got.
func (d *DB) CustomersWithUnbilledWork(ctx context.Context, afterID int64, limit int) ([]int64, error) {
	var ids []int64
	err := d.bun.NewRaw(d.pinJoins(customersWithUnbilledWorkSQL), afterID, limit).Scan(ctx, &ids)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: unable to list customers with unbilled work: %w", err)
	}
	return ids, nil
}

// BillCustomer bills a customer's finished, unbilled work in one
// transaction: the work is selected again inside it, grouped by currency,
// and each currency's total becomes one open invoice with one line per task
// at the task's reward, numbered from the gapless invoice counter, or stays
// unbilled when it is below the minimum.
//
// A task is billed exactly once, however many instances bill at the same
// time. On SQLite the transaction holds the write lock from its start
// (_txlock=immediate), so no other biller reads the same unbilled work
// meanwhile. On PostgreSQL two billers may read it together; then the
// UNIQUE task_id of invoice_lines refuses the second line of a task (the
// second biller waits for the first to commit), and SERIALIZABLE aborts
// the later of two transactions that read work the other billed (40001).
// In practice the second biller waits on the counter row first
// (nextInvoiceNumber) and is aborted there; RunInTx runs it again, and the
// second run finds the work billed. Either way the loser's invoice, number
// included, is rolled back.
func (d *DB) BillCustomer(ctx context.Context, customerID int64, now time.Time, rules BillingRules) (Billing, error) {
	now = now.UTC()
	var b Billing
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		b = Billing{}
		var tasks []Task
		err := unbilledTasksQuery(tx, &tasks, customerID).Scan(ctx)
		if err != nil {
			return err
		}
		for _, group := range byCurrency(tasks) {
			if err := d.issueInvoice(ctx, tx, customerID, group, now, rules, &b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if isTaskBilledTwice(err) {
			return Billing{}, fmt.Errorf("store: unable to bill customer %d: %w", customerID, ErrAlreadyBilled)
		}
		return Billing{}, fmt.Errorf("store: unable to bill customer %d: %w", customerID, err)
	}
	return b, nil
}

// unbilledTasksQuery is BillCustomer's selection: the customer's rows of
// unbilled_tasks (a search of unbilled_tasks_customer), each confirmed
// against tasks and invoice_lines like customersWithUnbilledWorkSQL. Only
// the customer's unbilled work is read and sorted, not its billed history.
func unbilledTasksQuery(idb bun.IDB, dst *[]Task, customerID int64) *bun.SelectQuery {
	return idb.NewSelect().Model(dst).
		Where("t.id IN (SELECT u.task_id FROM unbilled_tasks AS u WHERE u.customer_id = ?)", customerID).
		Where("t.customer_id = ? AND t.status = ?", customerID, TaskDone).
		Where("NOT EXISTS (SELECT 1 FROM invoice_lines AS il WHERE il.task_id = t.id)").
		OrderExpr("t.currency, t.completed_at, t.id")
}

// byCurrency splits tasks sorted by currency into one slice per currency.
func byCurrency(tasks []Task) [][]Task {
	var groups [][]Task
	for i := 0; i < len(tasks); {
		j := i
		for j < len(tasks) && tasks[j].Currency == tasks[i].Currency {
			j++
		}
		groups = append(groups, tasks[i:j])
		i = j
	}
	return groups
}

func (d *DB) issueInvoice(ctx context.Context, tx bun.Tx, customerID int64, tasks []Task, now time.Time, rules BillingRules, b *Billing) error {
	var total int64
	for _, t := range tasks {
		total += t.RewardCents
	}
	if total < rules.MinAmountCents {
		b.BelowMinimum++
		return nil
	}
	number, err := d.nextInvoiceNumber(ctx, tx)
	if err != nil {
		return err
	}
	due := now.Add(rules.DueAfter)
	inv := Invoice{
		CustomerID: customerID, Number: &number, Currency: tasks[0].Currency, AmountCents: total,
		Status: InvoiceOpen, IssuedAt: &now, DueAt: &due, CreatedAt: now, UpdatedAt: now,
	}
	if total > rules.MaxAmountCents {
		inv.Flag = FlagOverMaximum
		b.Flagged++
	}
	if _, err := tx.NewInsert().Model(&inv).Exec(ctx); err != nil {
		return err
	}
	lines := make([]InvoiceLine, len(tasks))
	for i, t := range tasks {
		desc := t.Description
		if desc == "" {
			desc = t.Kind
		}
		lines[i] = InvoiceLine{InvoiceID: inv.ID, TaskID: t.ID, Description: desc, AmountCents: t.RewardCents, CreatedAt: now}
	}
	if _, err := tx.NewInsert().Model(&lines).Exec(ctx); err != nil {
		return err
	}
	b.Invoices = append(b.Invoices, inv)
	b.Lines += len(lines)
	return nil
}

// nextInvoiceNumber takes the next value of the invoice counter inside the
// issuing transaction, so a rolled-back invoice gives its number back and
// the numbers shown are gapless. A database without the counter row starts
// after the highest number already issued, so no number is ever reused.
//
// Across instances on PostgreSQL, the UPDATE takes the counter row's lock
// until the issuing transaction ends: a second issuer waits for it, and
// SERIALIZABLE then aborts it (40001, the row changed since its snapshot)
// rather than let it read the old value; RunInTx runs it again with the
// next number. Two issuers thus never take one number, and a number is
// taken only by a committed invoice. Two first issuers that both find no
// counter row both insert it: the primary key refuses the second, which
// PostgreSQL reports as a serialization failure too (ON CONFLICT DO
// NOTHING on a row a concurrent transaction inserted), so it is retried
// and finds the row.
func (d *DB) nextInvoiceNumber(ctx context.Context, tx bun.Tx) (string, error) {
	var n []int64
	err := tx.NewRaw("UPDATE counters SET value = value + 1 WHERE name = ? RETURNING value", InvoiceCounter).Scan(ctx, &n)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	if len(n) == 0 {
		var next int64
		if err := tx.NewRaw(d.highestInvoiceNumberSQL()).Scan(ctx, &next); err != nil {
			return "", err
		}
		insert := "INSERT INTO counters (name, value) VALUES (?, ?)"
		if d.Postgres() {
			insert += " ON CONFLICT (name) DO NOTHING"
		}
		if _, err := tx.ExecContext(ctx, insert, InvoiceCounter, next); err != nil {
			return "", err
		}
		n = []int64{next}
	}
	return fmt.Sprintf("INV-%06d", n[0]), nil
}

// highestInvoiceNumberSQL reads the highest invoice number issued, plus
// one. SQLite's CAST reads the leading digits of the text after "INV-" (0
// for none) and its LIKE ignores case; on PostgreSQL a CAST of text that is
// not all digits fails, so the digits are taken by a regular expression
// (no digits: NULL, which MAX skips) and ILIKE stands for LIKE. At most 18
// digits keep the number within BIGINT.
func (d *DB) highestInvoiceNumberSQL() string {
	if d.Postgres() {
		return `SELECT COALESCE(MAX(CAST(substring(number FROM '^.{4}0*([0-9]{1,18})') AS BIGINT)), 0) + 1
			FROM invoices WHERE number ILIKE 'INV-%'`
	}
	return `SELECT COALESCE(MAX(CAST(substr(number, 5) AS INTEGER)), 0) + 1
			FROM invoices WHERE number LIKE 'INV-%'`
}

// isTaskBilledTwice reports whether err is invoice_lines refusing a second
// line of one task (its UNIQUE task_id).
func isTaskBilledTwice(err error) bool {
	return uniqueViolationOn(err, "invoice_lines", "task_id")
}

// PaymentLinkCandidate is an open invoice that still needs a payment link.
type PaymentLinkCandidate struct {
	InvoiceID     int64  `bun:"id"`
	Number        string `bun:"number"`
	AmountCents   int64  `bun:"amount_cents"`
	Currency      string `bun:"currency"`
	CustomerEmail string `bun:"contact_email"`
}

// invoicesNeedingPaymentLinkSQL reads the partial index invoices_need_link
// (created_at, id), whose condition its WHERE spells, in order: only the
// open invoices still without a link, never the paid history or the open
// invoices that have one.
const invoicesNeedingPaymentLinkSQL = `SELECT i.id, i.number, i.amount_cents, i.currency, c.contact_email
	FROM invoices AS i INDEXED BY invoices_need_link JOIN customers AS c ON c.id = i.customer_id
	WHERE i.status = 'open' AND i.payment_url = '' AND i.flag = ''
	ORDER BY i.created_at, i.id LIMIT ?`

// InvoicesNeedingPaymentLink returns up to limit open, unflagged invoices
// without a payment link, oldest first.
func (d *DB) InvoicesNeedingPaymentLink(ctx context.Context, limit int) ([]PaymentLinkCandidate, error) {
	var out []PaymentLinkCandidate
	err := d.bun.NewRaw(d.pin(invoicesNeedingPaymentLinkSQL), limit).Scan(ctx, &out)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: unable to list invoices without a payment link: %w", err)
	}
	return out, nil
}

// SetInvoicePaymentLink stores an invoice's Stripe price, payment link and
// URL, only while it is open and has no link yet; it reports whether it did.
// The invoice's last payment-link error (0021) goes with it.
func (d *DB) SetInvoicePaymentLink(ctx context.Context, invoiceID int64, priceID, linkID, url string, now time.Time) (bool, error) {
	var saved bool
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE invoices
		SET stripe_price_id = ?, stripe_payment_link_id = ?, payment_url = ?, updated_at = ?
		WHERE id = ? AND status = 'open' AND payment_url = ''`, priceID, linkID, url, now.UTC(), invoiceID)
		if err != nil {
			return fmt.Errorf("store: unable to save payment link of invoice %d: %w", invoiceID, err)
		}
		if saved = affected(res) == 1; saved {
			return d.clearLinkError(ctx, tx, invoiceID)
		}
		return nil
	})
	return saved, err
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
	filter := func(sq *bun.SelectQuery) *bun.SelectQuery {
		if st := q.statuses(); len(st) > 0 {
			sq = sq.Where("i.status IN (?)", bun.List(st))
		}
		if customerID != 0 {
			sq = sq.Where("i.customer_id = ?", customerID)
		}
		return searchIndexed(sq, q.Search,
			ftsSource{idCol: "i.id", fts: "invoices_fts", likeCols: []string{"i.number", "i.payer_email"}},
			customerSearch("i.customer_id"))
	}
	l := list[InvoiceRow]{table: "invoices", alias: "i", sortCol: "created_at",
		query: func() *bun.SelectQuery {
			return d.bun.NewSelect().Model(&rows).ColumnExpr("i.*").ColumnExpr("c.company AS company").
				ColumnExpr("(SELECT COUNT(*) FROM invoice_lines AS il WHERE il.invoice_id = i.id) AS line_count").
				Join("JOIN customers AS c ON c.id = i.customer_id")
		},
		filter: filter,
		count:  d.kept("invoices", q.statuses()),
		id:     func(i *InvoiceRow) int64 { return i.ID },
	}
	if customerID != 0 {
		l.count = d.indexedCount("invoices", "i", filter)
	}
	pg, err := l.fetch(ctx, d, q, &rows)
	return rows, pg, err
}

// LinkedInvoice is an open invoice with a payment link, as reconcile asks
// Stripe about it.
type LinkedInvoice struct {
	InvoiceID     int64  `bun:"id"`
	Number        string `bun:"number"`
	PaymentLinkID string `bun:"stripe_payment_link_id"`
	AmountCents   int64  `bun:"amount_cents"`
	Currency      string `bun:"currency"`
}

// OpenInvoicesWithPaymentLink returns up to limit open invoices with a
// payment link and an id above afterID, by id. Callers page through all of
// them by passing the last id they got.
func (d *DB) OpenInvoicesWithPaymentLink(ctx context.Context, afterID int64, limit int) ([]LinkedInvoice, error) {
	var out []LinkedInvoice
	err := d.bun.NewRaw(`SELECT id, COALESCE(number, '') AS number, stripe_payment_link_id, amount_cents, currency
		FROM invoices WHERE status = 'open' AND stripe_payment_link_id <> '' AND id > ?
		ORDER BY id LIMIT ?`, afterID, limit).Scan(ctx, &out)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: unable to list open invoices with a payment link: %w", err)
	}
	return out, nil
}
