package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// This file holds the store side of fulfilment: turning a lead into a
// customer with its plan's tasks (onboarding), leasing and finishing tasks
// (ops), billing finished work exactly once (billing), and the profit
// figures. Every method that writes does so in one transaction, and every
// time it records comes from the caller's clock.

// NewTask is one task onboarding opens for a customer's plan.
type NewTask struct {
	Kind, Description, Currency string
	RewardCents                 int64
}

// Conversion outcomes.
const (
	ConversionCreated         = "converted"
	ConversionAlreadyCustomer = "already_customer"
	ConversionNoEmail         = "no_email"
	// ConversionSkipped: the lead was no longer responded when its
	// transaction began (another run converted it first).
	ConversionSkipped = "skipped"
)

// Conversion is what converting one lead did.
type Conversion struct {
	Outcome string
	// Customer is the new customer, or the existing one the lead's e-mail
	// already belongs to.
	Customer *Customer
	// PortalToken is the plain portal token of a new customer. It is never
	// stored; whoever sends the portal link must take it from here.
	PortalToken string
	Tasks       []Task
}

// respondedLeadsQuery is RespondedLeads' query: the first rows of the
// partial index leads_responded (responded_at, id), whose condition its
// WHERE spells, read in order and stopped at limit.
func respondedLeadsQuery(idb bun.IDB, dst *[]Lead, limit int) *bun.SelectQuery {
	return idb.NewSelect().Model(dst).ModelTableExpr("leads AS l INDEXED BY leads_responded").Where("l.status = 'responded'").
		OrderExpr("l.responded_at, l.id").Limit(int64(limit))
}

// RespondedLeads returns up to limit leads waiting to be converted, the ones
// that answered first first.
func (d *DB) RespondedLeads(ctx context.Context, limit int) ([]Lead, error) {
	var leads []Lead
	err := respondedLeadsQuery(d.bun, &leads, limit).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: unable to list responded leads: %w", err)
	}
	return leads, nil
}

// ConvertLead turns a responded lead into a customer on plan with tasks
// opened, in one transaction: the customer (with a portal token drawn from
// random), the lead marked converted, the tasks pending.
//
// A lead whose e-mail (or id) already belongs to a customer is marked
// converted without a second customer or new tasks; a lead without an e-mail
// cannot be a customer and is marked dead. A lead that is no longer responded
// is left alone. None of these is an error.
func (d *DB) ConvertLead(ctx context.Context, leadID int64, plan string, tasks []NewTask, now time.Time, random io.Reader) (Conversion, error) {
	now = now.UTC()
	var conv Conversion
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		conv = Conversion{}
		lead := new(Lead)
		if err := tx.NewSelect().Model(lead).Where("l.id = ?", leadID).Scan(ctx); err != nil {
			return notFound(err)
		}
		if lead.Status != LeadResponded {
			conv.Outcome = ConversionSkipped
			return nil
		}
		if lead.Email == nil {
			conv.Outcome = ConversionNoEmail
			return setLeadStatus(ctx, tx, lead.ID, LeadDead, now)
		}
		existing := new(Customer)
		err := existingCustomerQuery(tx, existing, *lead.Email, lead.ID).Scan(ctx)
		switch {
		case err == nil:
			conv.Outcome, conv.Customer = ConversionAlreadyCustomer, existing
			return setLeadStatus(ctx, tx, lead.ID, LeadConverted, now)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		c, token, err := d.CreateCustomer(ctx, tx, NewCustomer{
			Company: lead.Company, ContactEmail: *lead.Email, Plan: plan, LeadID: &lead.ID,
		}, random)
		if err != nil {
			return err
		}
		conv.Outcome, conv.Customer, conv.PortalToken = ConversionCreated, c, token
		if err := setLeadStatus(ctx, tx, lead.ID, LeadConverted, now); err != nil {
			return err
		}
		conv.Tasks, err = openTasks(ctx, tx, c.ID, tasks, now)
		return err
	})
	if err != nil {
		return Conversion{}, fmt.Errorf("store: unable to convert lead %d: %w", leadID, err)
	}
	return conv, nil
}

// existingCustomerQuery finds the first customer with e-mail email or lead
// leadID. Each is a search of its UNIQUE index (contact_email, lead_id); the
// two ids are looked up by primary key. (One OR ordered by id with LIMIT 1
// lets the planner walk every customer in id order instead.)
func existingCustomerQuery(idb bun.IDB, dst *Customer, email string, leadID int64) *bun.SelectQuery {
	return idb.NewSelect().Model(dst).
		Where(`c.id = (SELECT MIN(id) FROM (
			SELECT id FROM customers WHERE contact_email = ?
			UNION ALL SELECT id FROM customers WHERE lead_id = ?))`, email, leadID)
}

func setLeadStatus(ctx context.Context, tx bun.Tx, leadID int64, status string, now time.Time) error {
	q := tx.NewUpdate().Model((*Lead)(nil)).
		Set("status = ?", status).Set("updated_at = ?", now).
		Where("id = ?", leadID)
	if status == LeadConverted {
		q = q.Set("converted_at = ?", now)
	}
	_, err := q.Exec(ctx)
	return err
}

func openTasks(ctx context.Context, tx bun.Tx, customerID int64, in []NewTask, now time.Time) ([]Task, error) {
	if len(in) == 0 {
		return nil, nil
	}
	tasks := make([]Task, len(in))
	for i, nt := range in {
		tasks[i] = Task{
			CustomerID: customerID, Kind: nt.Kind, Description: nt.Description, Status: TaskPending,
			Currency: nt.Currency, RewardCents: nt.RewardCents, ProfitCents: nt.RewardCents,
			CreatedAt: now, UpdatedAt: now,
		}
	}
	if _, err := tx.NewInsert().Model(&tasks).Exec(ctx); err != nil {
		return nil, err
	}
	return tasks, nil
}

// LeaseExpiredError is the last_error of a task whose lease ran out.
const LeaseExpiredError = "lease expired (agent crashed or timed out)"

// maxErrorLen bounds a stored task error.
const maxErrorLen = 2000

// expireLeasesSQL (completed by an attempts comparison) ends the expired
// leases: a search of tasks_status_created for the running tasks, a set as
// small as the work in flight.
const expireLeasesSQL = `UPDATE tasks SET status = ?, last_error = ?, lease_expires_at = NULL, updated_at = ?
	WHERE status = 'running' AND lease_expires_at < ? AND attempts `

// RecoverExpiredLeases puts running tasks whose lease ended before now back
// to pending, or to failed once they have had maxAttempts attempts, in one
// transaction.
func (d *DB) RecoverExpiredLeases(ctx context.Context, now time.Time, maxAttempts int) (recovered, failed int, err error) {
	now = now.UTC()
	err = d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.ExecContext(ctx, expireLeasesSQL+">= ?", TaskFailed, LeaseExpiredError, now, now, maxAttempts)
		if err != nil {
			return err
		}
		failed = affected(res)
		res, err = tx.ExecContext(ctx, expireLeasesSQL+"< ?", TaskPending, LeaseExpiredError, now, now, maxAttempts)
		if err != nil {
			return err
		}
		recovered = affected(res)
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("store: unable to recover expired task leases: %w", err)
	}
	return recovered, failed, nil
}

func affected(res sql.Result) int {
	n, err := res.RowsAffected()
	if err != nil {
		return 0
	}
	return int(n)
}

// ClaimedTask is a task leased to one executor, with what the executor needs
// to know about its customer and the lead it came from.
type ClaimedTask struct {
	Task `bun:",extend"`

	Company      string `bun:"company"`
	ContactEmail string `bun:"contact_email"`
	ContactName  string `bun:"contact_name"`
	Niche        string `bun:"niche"`
	Website      string `bun:"website"`
}

// claimTasksSQL leases the oldest pending tasks: the first rows of
// tasks_status_created (status, created_at, id) for 'pending', in order,
// stopped at the limit; the update finds each by primary key.
const claimTasksSQL = `UPDATE tasks
	SET status = 'running', attempts = attempts + 1, started_at = ?, lease_expires_at = ?, updated_at = ?
	WHERE status = 'pending' AND id IN (
		SELECT id FROM tasks WHERE status = 'pending' ORDER BY created_at, id LIMIT ?)
	RETURNING id`

// ClaimTasks leases up to limit pending tasks, oldest first, until now+lease:
// each becomes running with one more attempt. The claim is one transaction
// and only takes rows still pending, so two concurrent claimers never get the
// same task. The claimed attempt is ClaimedTask.Attempts.
func (d *DB) ClaimTasks(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]ClaimedTask, error) {
	now = now.UTC()
	var claimed []ClaimedTask
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var ids []int64
		err := tx.NewRaw(claimTasksSQL, now, now.Add(lease), now, limit).Scan(ctx, &ids)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		claimed = nil
		if len(ids) == 0 {
			return nil
		}
		return tx.NewSelect().Model(&claimed).
			ColumnExpr("t.*").
			ColumnExpr("c.company AS company, c.contact_email AS contact_email").
			ColumnExpr("COALESCE(l.name, '') AS contact_name, COALESCE(l.niche, '') AS niche, COALESCE(l.website, '') AS website").
			Join("JOIN customers AS c ON c.id = t.customer_id").
			Join("LEFT JOIN leads AS l ON l.id = c.lead_id").
			Where("t.id IN (?)", bun.List(ids)).
			OrderExpr("t.created_at, t.id").
			Scan(ctx)
	})
	if err != nil {
		return nil, fmt.Errorf("store: unable to claim tasks: %w", err)
	}
	return claimed, nil
}

// CompleteTask records a successful attempt: done, its result, what it cost
// (added to what earlier, failed attempts cost) and its profit (reward -
// cost, negative when the work cost more than it earns). It only applies while the task is still running the claimed
// attempt; a late finisher whose lease was recovered changes nothing and
// gets false.
func (d *DB) CompleteTask(ctx context.Context, taskID int64, attempt int, result string, costCents int64, now time.Time) (bool, error) {
	now = now.UTC()
	res, err := d.bun.ExecContext(ctx, `UPDATE tasks
		SET status = 'done', result = ?, cost_cents = cost_cents + ?, profit_cents = reward_cents - (cost_cents + ?), last_error = '',
		    completed_at = ?, lease_expires_at = NULL, updated_at = ?
		WHERE id = ? AND status = 'running' AND attempts = ?`,
		result, costCents, costCents, now, now, taskID, attempt)
	if err != nil {
		return false, fmt.Errorf("store: unable to complete task %d: %w", taskID, err)
	}
	return affected(res) == 1, nil
}

// FailTaskAttempt records a failed attempt: the task goes back to pending
// for a later cycle, or to failed once it has had maxAttempts attempts, with
// the error kept. What the failed attempt cost the executor (an LLM call
// that answered unusably still spent tokens) is added to the task's cost.
// It returns the task's new status, or "" when the attempt was no longer the
// task's current one (its lease was recovered).
func (d *DB) FailTaskAttempt(ctx context.Context, taskID int64, attempt, maxAttempts int, cause string, costCents int64, now time.Time) (string, error) {
	now = now.UTC()
	if costCents < 0 {
		costCents = 0
	}
	var status []string
	err := d.bun.NewRaw(`UPDATE tasks
		SET status = CASE WHEN attempts >= ? THEN 'failed' ELSE 'pending' END,
		    cost_cents = cost_cents + ?, profit_cents = reward_cents - (cost_cents + ?),
		    last_error = ?, lease_expires_at = NULL, updated_at = ?
		WHERE id = ? AND status = 'running' AND attempts = ?
		RETURNING status`, maxAttempts, costCents, costCents, truncate(cause, maxErrorLen), now, taskID, attempt).Scan(ctx, &status)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("store: unable to record failed attempt of task %d: %w", taskID, err)
	}
	if len(status) == 0 {
		return "", nil
	}
	return status[0], nil
}

// ReleaseTask hands a claimed task that was never started back to pending
// and gives its attempt back (the cycle was stopped before running it).
func (d *DB) ReleaseTask(ctx context.Context, taskID int64, attempt int, now time.Time) (bool, error) {
	res, err := d.bun.ExecContext(ctx, `UPDATE tasks
		SET status = 'pending', attempts = attempts - 1, lease_expires_at = NULL, updated_at = ?
		WHERE id = ? AND status = 'running' AND attempts = ?`, now.UTC(), taskID, attempt)
	if err != nil {
		return false, fmt.Errorf("store: unable to release task %d: %w", taskID, err)
	}
	return affected(res) == 1, nil
}

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
	err := d.bun.NewRaw(customersWithUnbilledWorkSQL, afterID, limit).Scan(ctx, &ids)
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
			if err := issueInvoice(ctx, tx, customerID, group, now, rules, &b); err != nil {
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

func issueInvoice(ctx context.Context, tx bun.Tx, customerID int64, tasks []Task, now time.Time, rules BillingRules, b *Billing) error {
	var total int64
	for _, t := range tasks {
		total += t.RewardCents
	}
	if total < rules.MinAmountCents {
		b.BelowMinimum++
		return nil
	}
	number, err := nextInvoiceNumber(ctx, tx)
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
func nextInvoiceNumber(ctx context.Context, tx bun.Tx) (string, error) {
	var n []int64
	err := tx.NewRaw("UPDATE counters SET value = value + 1 WHERE name = ? RETURNING value", InvoiceCounter).Scan(ctx, &n)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	if len(n) == 0 {
		var next int64
		err := tx.NewRaw(`SELECT COALESCE(MAX(CAST(substr(number, 5) AS INTEGER)), 0) + 1
			FROM invoices WHERE number LIKE 'INV-%'`).Scan(ctx, &next)
		if err != nil {
			return "", err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO counters (name, value) VALUES (?, ?)", InvoiceCounter, next); err != nil {
			return "", err
		}
		n = []int64{next}
	}
	return fmt.Sprintf("INV-%06d", n[0]), nil
}

func isTaskBilledTwice(err error) bool {
	return IsUniqueViolation(err) && strings.Contains(err.Error(), "invoice_lines.task_id")
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
	err := d.bun.NewRaw(invoicesNeedingPaymentLinkSQL, limit).Scan(ctx, &out)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: unable to list invoices without a payment link: %w", err)
	}
	return out, nil
}

// SetInvoicePaymentLink stores an invoice's Stripe price, payment link and
// URL, only while it is open and has no link yet; it reports whether it did.
func (d *DB) SetInvoicePaymentLink(ctx context.Context, invoiceID int64, priceID, linkID, url string, now time.Time) (bool, error) {
	res, err := d.bun.ExecContext(ctx, `UPDATE invoices
		SET stripe_price_id = ?, stripe_payment_link_id = ?, payment_url = ?, updated_at = ?
		WHERE id = ? AND status = 'open' AND payment_url = ''`, priceID, linkID, url, now.UTC(), invoiceID)
	if err != nil {
		return false, fmt.Errorf("store: unable to save payment link of invoice %d: %w", invoiceID, err)
	}
	return affected(res) == 1, nil
}

// CustomerProfit is one customer's money in one currency: the reward of its
// done tasks, the cost of its finished ones (done and failed: a failed
// task earns nothing, but its attempts were paid for), the profit (reward -
// cost), and what it has paid.
type CustomerProfit struct {
	CustomerID  int64  `bun:"customer_id"`
	Company     string `bun:"company"`
	Currency    string `bun:"currency"`
	RewardCents int64  `bun:"reward_cents"`
	CostCents   int64  `bun:"cost_cents"`
	ProfitCents int64  `bun:"profit_cents"`
	PaidCents   int64  `bun:"paid_cents"`
}

// ProfitTotal is the whole business's money in one currency.
type ProfitTotal struct {
	Currency    string `bun:"currency"`
	RewardCents int64  `bun:"reward_cents"`
	CostCents   int64  `bun:"cost_cents"`
	ProfitCents int64  `bun:"profit_cents"`
	PaidCents   int64  `bun:"paid_cents"`
}

// finishedWork sums, per currency, the finished tasks (the caller's FROM
// tasks WHERE … AND): the reward of the done ones, the cost of done and
// failed ones, and the difference.
const finishedWork = `SUM(CASE WHEN status = 'done' THEN reward_cents ELSE 0 END) AS reward, SUM(cost_cents) AS cost,
		SUM(CASE WHEN status = 'done' THEN reward_cents ELSE 0 END) - SUM(cost_cents) AS profit`

// profitSources are the per customer and currency sums the profit figures
// are built from: finished work and paid invoices (refunded money is not
// revenue).
const profitSources = `WITH work AS (
		SELECT customer_id, currency, ` + finishedWork + `
		FROM tasks WHERE status IN ('done', 'failed') GROUP BY customer_id, currency),
	paid AS (
		SELECT customer_id, currency, SUM(amount_cents) AS paid
		FROM invoices WHERE status = 'paid' GROUP BY customer_id, currency),
	keys AS (SELECT customer_id, currency FROM work UNION SELECT customer_id, currency FROM paid),
	money AS (
		SELECT k.customer_id, k.currency, COALESCE(w.reward, 0) AS reward, COALESCE(w.cost, 0) AS cost,
		       COALESCE(w.profit, 0) AS profit, COALESCE(p.paid, 0) AS paid
		FROM keys AS k
		LEFT JOIN work AS w ON w.customer_id = k.customer_id AND w.currency = k.currency
		LEFT JOIN paid AS p ON p.customer_id = k.customer_id AND p.currency = k.currency)
	`

// ProfitByCustomer returns, for every customer with finished work or
// payments, one row per currency, by customer id. Per-task profit is
// Task.Profit.
func (d *DB) ProfitByCustomer(ctx context.Context) ([]CustomerProfit, error) {
	var out []CustomerProfit
	err := d.bun.NewRaw(profitSources+`SELECT m.customer_id, c.company, m.currency, m.reward AS reward_cents,
			m.cost AS cost_cents, m.profit AS profit_cents, m.paid AS paid_cents
		FROM money AS m JOIN customers AS c ON c.id = m.customer_id
		ORDER BY m.customer_id, m.currency`).Scan(ctx, &out)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: unable to sum profit by customer: %w", err)
	}
	return out, nil
}

// ProfitTotals returns the reward, cost and profit of all finished work and
// the paid revenue, one row per currency, sorted by currency.
func (d *DB) ProfitTotals(ctx context.Context) ([]ProfitTotal, error) {
	var out []ProfitTotal
	err := d.bun.NewRaw(profitSources+`SELECT currency, SUM(reward) AS reward_cents, SUM(cost) AS cost_cents,
			SUM(profit) AS profit_cents, SUM(paid) AS paid_cents
		FROM money GROUP BY currency ORDER BY currency`).Scan(ctx, &out)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: unable to sum profit: %w", err)
	}
	return out, nil
}
