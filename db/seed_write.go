package db

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// batch buffers the rows of one table and writes them as multi-row
// INSERTs of up to per rows each, through one prepared statement.
type batch struct {
	ctx   context.Context
	tx    *seedTx
	table string
	cols  []string
	per   int
	args  []any
	rows  int
	full  *sql.Stmt
	count int
}

func newBatch(ctx context.Context, tx *seedTx, table string, cols ...string) *batch {
	per := max(1, min(500, seedMaxVariables/len(cols)))
	return &batch{ctx: ctx, tx: tx, table: table, cols: cols, per: per, args: make([]any, 0, per*len(cols))}
}

// insertSQL is the INSERT of n rows.
func (b *batch) insertSQL(n int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", len(b.cols)), ",") + ")"
	return b.tx.sql("INSERT INTO " + b.table + " (" + strings.Join(b.cols, ", ") + ") VALUES " +
		strings.TrimSuffix(strings.Repeat(row+",", n), ","))
}

// add buffers one row, writing the batch when it is full.
func (b *batch) add(values ...any) error {
	if len(values) != len(b.cols) {
		return fmt.Errorf("%s: %d values for %d columns", b.table, len(values), len(b.cols))
	}
	b.args = append(b.args, values...)
	b.rows++
	b.count++
	if b.rows < b.per {
		return nil
	}
	if b.full == nil {
		st, err := b.tx.PrepareContext(b.ctx, b.insertSQL(b.per))
		if err != nil {
			return fmt.Errorf("%s: %w", b.table, err)
		}
		b.full = st
	}
	_, err := b.full.ExecContext(b.ctx, b.args...)
	b.args, b.rows = b.args[:0], 0
	if err != nil {
		return fmt.Errorf("%s: %w", b.table, err)
	}
	return nil
}

// flush writes the rows still buffered and releases the statement.
func (b *batch) flush() error {
	defer func() {
		if b.full != nil {
			b.full.Close()
			b.full = nil
		}
	}()
	if b.rows == 0 {
		return nil
	}
	_, err := b.tx.ExecContext(b.ctx, b.insertSQL(b.rows), b.args...)
	b.args, b.rows = b.args[:0], 0
	if err != nil {
		return fmt.Errorf("%s: %w", b.table, err)
	}
	return nil
}

// write inserts the plan, parents before children.
func (p *seedPlanned) write(ctx context.Context, tx *seedTx) error {
	for _, step := range []func(context.Context, *seedTx) error{
		p.writeLeads, p.writeMessages, p.writeCustomers, p.writeTasks, p.writeInvoices, p.writeCounter, forgetSeededJobs,
		advanceIdentities,
	} {
		if err := step(ctx, tx); err != nil {
			return err
		}
	}
	return nil
}

// forgetSeededJobs drops the collection jobs the seeded rows' triggers
// added: a made-up history is not news to its made-up clients (no welcome
// for a customer of last year, no receipt for an old payment). What the
// agents do after the seed is told as usual.
func forgetSeededJobs(ctx context.Context, tx *seedTx) error {
	_, err := tx.ExecContext(ctx, "DELETE FROM collection_jobs")
	return err
}

// seededTables are the tables a seed writes with its own ids.
var seededTables = []string{"leads", "messages", "customers", "tasks", "invoices", "invoice_lines"}

// advanceIdentities moves each seeded table's id generator past the ids the
// seed wrote. SQLite's INTEGER PRIMARY KEY takes MAX(rowid)+1 by itself; a
// PostgreSQL identity column draws from its sequence, which explicit ids do
// not move, so the next row the app inserts would take id 1 again.
func advanceIdentities(ctx context.Context, tx *seedTx) error {
	if !tx.pg {
		return nil
	}
	for _, table := range seededTables {
		_, err := tx.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('`+table+`', 'id'), MAX(id)) FROM `+table+
			` HAVING MAX(id) IS NOT NULL`)
		if err != nil {
			return fmt.Errorf("%s: %w", table, err)
		}
	}
	return nil
}

func (p *seedPlanned) writeLeads(ctx context.Context, tx *seedTx) error {
	b := newBatch(ctx, tx, "leads", "id", "name", "email", "company", "domain_key", "niche", "website", "website_key", "source",
		"status", "dry_run", "contacted_at", "responded_at", "converted_at", "created_at", "updated_at")
	for i := range p.leads {
		l := &p.leads[i]
		err := b.add(l.id, l.first+" "+l.last, l.email, l.company, l.domain, l.niche, "https://"+l.domain, WebsiteKey("https://"+l.domain), SeedSource,
			l.status, l.messageStatus == MessageDryRun, seedTimePtr(l.contacted), seedTimePtr(l.responded), seedTimePtr(l.converted),
			seedTime(l.created), seedTime(l.updated()))
		if err != nil {
			return err
		}
	}
	return b.flush()
}

func (p *seedPlanned) writeMessages(ctx context.Context, tx *seedTx) error {
	b := newBatch(ctx, tx, "messages", "id", "lead_id", "to_addr", "template", "subject", "body", "status",
		"provider_id", "attempts", "created_at", "sending_at", "sent_at", "updated_at")
	var id int64
	for i := range p.leads {
		l := &p.leads[i]
		if l.messageStatus == "" {
			continue
		}
		id++
		provider := ""
		if l.messageStatus == MessageSent {
			provider = fmt.Sprintf("seed-%d", id)
		}
		queued := l.contacted.Add(-time.Minute)
		err := b.add(id, l.id, l.email, l.template, "A quick idea for "+l.company,
			"Hi "+l.first+",\n\nwe help "+l.niche+" like "+l.company+" find their next customers.\n", l.messageStatus,
			provider, 1, seedTime(queued), seedTime(l.contacted), seedTime(l.contacted), seedTime(l.contacted))
		if err != nil {
			return err
		}
	}
	return b.flush()
}

func (p *seedPlanned) writeCustomers(ctx context.Context, tx *seedTx) error {
	b := newBatch(ctx, tx, "customers", "id", "company", "contact_email", "plan", "lead_id", "status",
		"portal_token_hash", "token_created_at", "created_at")
	for _, l := range p.customers {
		status := CustomerActive
		if l.customerPaused {
			status = CustomerPaused
		}
		err := b.add(l.customerID, l.company, l.email, seedPlans[l.customerPlan].name, l.id, status,
			HashToken(seedPortalToken(p.sizes.Seed, l.customerID)), seedTime(l.converted), seedTime(l.converted))
		if err != nil {
			return err
		}
	}
	return b.flush()
}

func (p *seedPlanned) writeTasks(ctx context.Context, tx *seedTx) error {
	b := newBatch(ctx, tx, "tasks", "id", "customer_id", "kind", "description", "status", "currency",
		"reward_cents", "cost_cents", "profit_cents", "attempts", "started_at", "result", "last_error",
		"completed_at", "created_at", "updated_at")
	for _, t := range p.tasks {
		k := seedKinds[t.kind]
		company := p.customers[t.customerID-1].company
		result, lastErr, updated := "", "", t.created
		switch t.status {
		case TaskDone:
			result, updated = k.name+" delivered for "+company+".", t.completed
		case TaskFailed:
			lastErr, updated = "executor: no usable answer after 3 attempts (seeded)", t.started.Add(time.Minute)
		}
		err := b.add(t.id, t.customerID, k.kind, k.name+" for "+company, t.status, seedCurrency,
			k.cents, t.cost, k.cents-t.cost, t.attempts, seedTimePtr(t.started), result, lastErr,
			seedTimePtr(t.completed), seedTime(t.created), seedTime(updated))
		if err != nil {
			return err
		}
	}
	return b.flush()
}

func (p *seedPlanned) writeInvoices(ctx context.Context, tx *seedTx) error {
	inv := newBatch(ctx, tx, "invoices", "id", "customer_id", "number", "currency", "amount_cents", "status",
		"issued_at", "due_at", "paid_at", "payer_email", "payer_name", "created_at", "updated_at")
	for _, in := range p.invoices {
		c := p.customers[in.customerID-1]
		status, payerEmail, payerName, updated := InvoiceOpen, "", "", in.issued
		if !in.paid.IsZero() {
			status, payerEmail, payerName, updated = InvoicePaid, c.email, c.first+" "+c.last, in.paid
		}
		err := inv.add(in.id, in.customerID, fmt.Sprintf("INV-%06d", in.id), seedCurrency, in.amount, status,
			seedTime(in.issued), seedTime(in.issued.Add(seedDueAfter)), seedTimePtr(in.paid), payerEmail, payerName,
			seedTime(in.issued), seedTime(updated))
		if err != nil {
			return err
		}
	}
	if err := inv.flush(); err != nil {
		return err
	}
	return p.writeInvoiceLines(ctx, tx)
}

func (p *seedPlanned) writeInvoiceLines(ctx context.Context, tx *seedTx) error {
	b := newBatch(ctx, tx, "invoice_lines", "id", "invoice_id", "task_id", "description", "amount_cents", "created_at")
	var id int64
	for _, in := range p.invoices {
		for _, t := range in.tasks {
			id++
			k := seedKinds[t.kind]
			if err := b.add(id, in.id, t.id, k.name+" for "+p.customers[t.customerID-1].company, k.cents, seedTime(in.issued)); err != nil {
				return err
			}
		}
	}
	return b.flush()
}

// writeCounter sets the invoice counter to the last number issued, so the
// billing cycle goes on without a gap.
func (p *seedPlanned) writeCounter(ctx context.Context, tx *seedTx) error {
	if len(p.invoices) == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, tx.sql(`INSERT INTO counters (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`), InvoiceCounter, len(p.invoices))
	return err
}
