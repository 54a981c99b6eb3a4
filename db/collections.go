package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// Collections: the jobs the Collections agent works through (migration
// 0011's triggers add them) and the composing of each job's client e-mail
// into the clients' outbox (client_outbox.go).

// Client message kinds; a collection job's kind is one of the first four.
const (
	ClientWelcome    = "welcome"
	ClientInvoice    = "invoice"
	ClientReceipt    = "receipt"
	ClientReminder   = "reminder"
	ClientPortalLink = "portal_link"
)

// ClientKinds lists every client message kind in display order.
var ClientKinds = []string{ClientWelcome, ClientInvoice, ClientReceipt, ClientReminder, ClientPortalLink}

// CollectionJob is one client e-mail still to be written.
type CollectionJob struct {
	bun.BaseModel `bun:"table:collection_jobs,alias:j"`

	ID         int64     `bun:"id,pk,autoincrement"`
	Kind       string    `bun:"kind,notnull"`
	CustomerID int64     `bun:"customer_id,notnull"`
	InvoiceID  *int64    `bun:"invoice_id"`
	Step       string    `bun:"step,notnull"`
	RunAt      time.Time `bun:"run_at,notnull"`
	CreatedAt  time.Time `bun:"created_at,notnull"`
	Attempts   int       `bun:"attempts,notnull"`
	LastError  string    `bun:"last_error,notnull"`
}

// DueCollectionJobs returns up to limit jobs due at now, the earliest first:
// a range of collection_jobs_run, never the whole table.
func (d *DB) DueCollectionJobs(ctx context.Context, now time.Time, limit int) ([]CollectionJob, error) {
	var jobs []CollectionJob
	err := dueJobsQuery(d.bun, &jobs, now, limit).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: unable to read the due collection jobs: %w", err)
	}
	return jobs, nil
}

func dueJobsQuery(idb bun.IDB, dst *[]CollectionJob, now time.Time, limit int) *bun.SelectQuery {
	return idb.NewSelect().Model(dst).ModelTableExpr(pinned(idb, "collection_jobs AS j INDEXED BY collection_jobs_run")).
		Where("j.run_at <= ?", now.UTC()).OrderExpr("j.run_at, j.id").Limit(int64(limit))
}

// PendingCollectionJobs counts the jobs of invoice id (its reminders still
// to come, mostly); for the admin's invoice page and tests.
func (d *DB) PendingCollectionJobs(ctx context.Context, invoiceID int64) ([]CollectionJob, error) {
	var jobs []CollectionJob
	err := d.bun.NewSelect().Model(&jobs).Where("j.invoice_id = ?", invoiceID).OrderExpr("j.run_at, j.id").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: unable to read the collection jobs of invoice %d: %w", invoiceID, err)
	}
	return jobs, nil
}

// CollectionCase is what a job's e-mail is written from, read in the
// transaction that queues it.
type CollectionCase struct {
	Job      CollectionJob
	Customer Customer
	Invoice  *Invoice         // nil for a welcome
	Lines    []InvoiceLineRow // the invoice's lines with their tasks' kinds, in id order
	// Tasks are the customer's tasks (what the plan includes), for a
	// welcome only: at most 50, oldest first.
	Tasks []Task
}

// ClientDraft is a composed client e-mail. Its body holds no secret: where
// the portal link goes, the composer writes a placeholder the sender
// replaces with a fresh link when it sends.
type ClientDraft struct {
	Kind, DedupeKey     string
	Subject, Text, HTML string
	Attachments         []ClientAttachment // Filename, ContentType, Content
}

// NewCollectionJob is a job a composed job adds (an invoice's reminders).
type NewCollectionJob struct {
	Kind  string
	Step  string
	RunAt time.Time
}

// ErrSkipJob, returned by a composer, drops the job without a message (a
// reminder of an invoice that is paid or void by now).
var ErrSkipJob = errors.New("collection job needs no message")

// PostponeJob, returned by a composer, keeps the job for later (an invoice
// e-mail waiting a little for its payment link).
type PostponeJob struct{ Until time.Time }

func (p *PostponeJob) Error() string {
	return "collection job postponed to " + p.Until.UTC().Format(time.RFC3339)
}

// CollectionOutcome is what CompleteCollectionJob did.
type CollectionOutcome string

// Outcomes.
const (
	JobQueued  CollectionOutcome = "queued"  // the message is in the outbox
	JobSkipped CollectionOutcome = "skipped" // the composer said no message is needed
	JobDup     CollectionOutcome = "duplicate"
	JobGone    CollectionOutcome = "gone" // another run did the job first
	JobLater   CollectionOutcome = "postponed"
)

// CompleteCollectionJob does job id in one transaction: it reads the job's
// case, asks compose for the message and the jobs to add, queues the
// message (at most once per dedupe key, ever), adds the jobs and deletes
// this one. compose runs inside the transaction and must not touch the
// network; ErrSkipJob drops the job. compose may run more than once (on
// PostgreSQL a transaction aborted for a conflict runs again), so it must
// only compute.
//
// A job is done at most once, whichever instances take it. On SQLite the
// transaction holds the write lock. On PostgreSQL the job's row is read
// FOR UPDATE SKIP LOCKED: while another instance holds it, this one finds
// no job and reports JobGone at once, instead of composing the same e-mail
// only to be aborted; should the other roll back, the job is still due and
// a later run does it. A row the other changed and committed since this
// transaction began aborts it (40001); run again, it reads the job as the
// other left it (done: JobGone). Whatever gets past both, the outbox's
// UNIQUE dedupe key queues one message per key, ever (JobDup).
func (d *DB) CompleteCollectionJob(ctx context.Context, id int64, compose func(CollectionCase) (*ClientDraft, []NewCollectionJob, error)) (CollectionOutcome, *ClientMessage, error) {
	var (
		outcome CollectionOutcome
		msg     *ClientMessage
	)
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		outcome, msg = JobGone, nil
		var cs CollectionCase
		q := tx.NewSelect().Model(&cs.Job).Where("j.id = ?", id)
		if d.Postgres() {
			q = q.For("UPDATE SKIP LOCKED")
		}
		err := q.Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := readCollectionCase(ctx, tx, &cs); err != nil {
			return err
		}
		draft, jobs, err := compose(cs)
		var later *PostponeJob
		switch {
		case errors.As(err, &later):
			outcome = JobLater
			_, err := tx.NewUpdate().Model((*CollectionJob)(nil)).Set("run_at = ?", later.Until.UTC()).Where("id = ?", id).Exec(ctx)
			return err
		case errors.Is(err, ErrSkipJob):
			outcome = JobSkipped
			return deleteJob(ctx, tx, id)
		case err != nil:
			return err
		}
		now := d.Now()
		for _, j := range jobs {
			row := &CollectionJob{Kind: j.Kind, CustomerID: cs.Customer.ID, InvoiceID: cs.Job.InvoiceID, Step: j.Step, RunAt: j.RunAt.UTC(), CreatedAt: now}
			if _, err := tx.NewInsert().Model(row).On("CONFLICT DO NOTHING").Exec(ctx); err != nil {
				return err
			}
		}
		if draft != nil {
			m, err := insertClientMessage(ctx, tx, cs.Customer, cs.Job.InvoiceID, *draft, now)
			if err != nil {
				return err
			}
			outcome, msg = JobDup, m
			if m != nil {
				outcome = JobQueued
			}
		} else {
			outcome = JobSkipped
		}
		return deleteJob(ctx, tx, id)
	})
	if err != nil {
		return "", nil, fmt.Errorf("store: unable to complete collection job %d: %w", id, err)
	}
	return outcome, msg, nil
}

func deleteJob(ctx context.Context, tx bun.Tx, id int64) error {
	_, err := tx.NewDelete().Model((*CollectionJob)(nil)).Where("id = ?", id).Exec(ctx)
	return err
}

func readCollectionCase(ctx context.Context, tx bun.Tx, cs *CollectionCase) error {
	if err := tx.NewSelect().Model(&cs.Customer).Where("c.id = ?", cs.Job.CustomerID).Scan(ctx); err != nil {
		return err
	}
	if cs.Job.InvoiceID == nil {
		return tx.NewSelect().Model(&cs.Tasks).Where("t.customer_id = ?", cs.Customer.ID).
			OrderExpr("t.created_at, t.id").Limit(50).Scan(ctx)
	}
	cs.Invoice = new(Invoice)
	if err := tx.NewSelect().Model(cs.Invoice).Where("i.id = ?", *cs.Job.InvoiceID).Scan(ctx); err != nil {
		return err
	}
	return invoiceLinesQuery(tx, &cs.Lines, *cs.Job.InvoiceID).Scan(ctx)
}

// invoiceLinesQuery reads an invoice's lines with their tasks' kinds and
// statuses, in id order (invoice_lines_invoice).
func invoiceLinesQuery(idb bun.IDB, dst *[]InvoiceLineRow, invoiceID int64) *bun.SelectQuery {
	return idb.NewSelect().Model(dst).ModelTableExpr("invoice_lines AS il").
		ColumnExpr("il.*").
		ColumnExpr("t.kind AS task_kind, t.status AS task_status").
		Join("JOIN tasks AS t ON t.id = il.task_id").
		Where("il.invoice_id = ?", invoiceID).OrderExpr("il.id")
}

// InvoiceDocumentData reads what an invoice or receipt document is made
// of: the invoice, its customer and its lines (with their tasks' kinds).
func (d *DB) InvoiceDocumentData(ctx context.Context, invoiceID int64) (*Invoice, *Customer, []InvoiceLineRow, error) {
	inv, c := new(Invoice), new(Customer)
	if err := d.one(ctx, inv, "i.id = ?", invoiceID); err != nil {
		return nil, nil, nil, fmt.Errorf("store: unable to read invoice %d: %w", invoiceID, err)
	}
	if err := d.one(ctx, c, "c.id = ?", inv.CustomerID); err != nil {
		return nil, nil, nil, fmt.Errorf("store: unable to read the customer of invoice %d: %w", invoiceID, err)
	}
	var lines []InvoiceLineRow
	if err := invoiceLinesQuery(d.bun, &lines, invoiceID).Scan(ctx); err != nil {
		return nil, nil, nil, fmt.Errorf("store: unable to read the lines of invoice %d: %w", invoiceID, err)
	}
	return inv, c, lines, nil
}

// QueuePortalLinkMail queues a fresh portal link for the client whose
// contact address is email, at most one per customer per slot (the caller
// names the slot: a time window, so that asking again within it sends
// nothing more). An unknown address, a flagged one or a closed customer
// queues nothing and is no error: the sign-in page answers the same either
// way. compose writes the message for the customer.
func (d *DB) QueuePortalLinkMail(ctx context.Context, email, slot string, compose func(Customer) (ClientDraft, error)) (bool, error) {
	queued := false
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		queued = false
		var c Customer
		err := tx.NewSelect().Model(&c).Where("c.contact_email = ?", email).Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if c.MailFlag != "" || c.Status == CustomerClosed {
			return nil
		}
		draft, err := compose(c)
		if err != nil {
			return err
		}
		draft.Kind, draft.DedupeKey = ClientPortalLink, "link:"+itoa(c.ID)+":"+slot
		m, err := insertClientMessage(ctx, tx, c, nil, draft, d.Now())
		queued = m != nil
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: unable to queue a portal link: %w", err)
	}
	return queued, nil
}

// FlagCustomerMail flags the customer whose contact address is email (a
// hard bounce or a complaint on a client address): Collections writes to it
// no more until an operator clears the flag. It reports whether a customer
// has that address.
func (d *DB) FlagCustomerMail(ctx context.Context, email, reason string) (bool, error) {
	res, err := d.bun.NewUpdate().Model((*Customer)(nil)).
		Set("mail_flag = ?", truncate(reason, 200)).Set("mail_flagged_at = ?", d.Now()).
		Where("contact_email = ? AND mail_flag = ''", email).Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("store: unable to flag a client address: %w", err)
	}
	if affected(res) > 0 {
		return true, nil
	}
	var n int
	if err := d.bun.NewRaw("SELECT COUNT(*) FROM customers WHERE contact_email = ?", email).Scan(ctx, &n); err != nil {
		return false, fmt.Errorf("store: unable to flag a client address: %w", err)
	}
	return n > 0, nil
}

// ClearCustomerMailFlag lets Collections write to customer id again: the
// messages held back by the flag are queued again (each is checked once
// more when it is sent: a reminder of an invoice paid meanwhile is not).
func (d *DB) ClearCustomerMailFlag(ctx context.Context, id int64) error {
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		now := d.Now()
		res, err := tx.NewUpdate().Model((*Customer)(nil)).
			Set("mail_flag = ''").Set("mail_flagged_at = NULL").Where("id = ?", id).Exec(ctx)
		if err != nil {
			return err
		}
		if affected(res) != 1 {
			return ErrNotFound
		}
		_, err = tx.NewUpdate().Model((*ClientMessage)(nil)).ModelTableExpr(d.pin("client_messages INDEXED BY client_messages_customer")).
			Set("status = ?, error = '', attempts = 0, updated_at = ?", MessageQueued, now).
			Where("customer_id = ? AND status = ? AND error LIKE ?", id, MessageSuppressed, "not sent: "+flaggedAddress+"%").Exec(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: unable to clear the mail flag of customer %d: %w", id, err)
	}
	return nil
}

// PostponeFailedJob keeps job id for later after its e-mail could not be
// written: it runs again at until, with why.
func (d *DB) PostponeFailedJob(ctx context.Context, id int64, until time.Time, why string) error {
	_, err := d.bun.NewUpdate().Model((*CollectionJob)(nil)).
		Set("run_at = ?, attempts = attempts + 1, last_error = ?", until.UTC(), truncate(why, 1000)).Where("id = ?", id).Exec(ctx)
	if err != nil {
		return fmt.Errorf("store: unable to postpone collection job %d: %w", id, err)
	}
	return nil
}
