package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// Fixing data by hand (issue 13): an operator marks leads responded or
// dead, adds and removes suppressions, retries failed tasks and failed
// outbox messages, and edits a customer. Each method is one transaction
// that writes its audit entries with the change, so an action is either
// done and audited or neither; asking again for what is already so changes
// nothing and writes no entry.

// Audit actions of the data fixes.
const (
	AuditLeadMarked         = "lead marked"
	AuditSuppressionAdded   = "suppression added"
	AuditSuppressionRemoved = "suppression removed"
	AuditTaskRetried        = "task retried"
	AuditMessageRetried     = "message retried"
	AuditCustomerEdited     = "customer edited"
)

// MaxBulk bounds the rows one bulk action may name.
const MaxBulk = 200

// LeadMarkFrom is, for each status an operator may mark a lead with, the
// statuses it may come from. They are the operator's moves of reply sorting
// (outreach_steps.go: an operator's "interested" opens a dead lead again,
// "not interested" closes a responded one), and a lead whose mail failed
// may be closed or marked responded too (it answered by phone). A converted
// lead is a customer and never moves back; a bounced or unsubscribed one
// keeps the status that says why mail to it stopped.
var LeadMarkFrom = map[string][]string{
	LeadResponded: {LeadNew, LeadContacted, LeadFailed, LeadDead},
	LeadDead:      {LeadNew, LeadContacted, LeadResponded, LeadFailed},
}

// LeadMark is what marking did to one lead.
type LeadMark struct {
	ID      int64
	Company string
	From    string // its status before; "" when there is no such lead
	// Moved: the lead now has the status asked for. Already: it had it
	// before (nothing changed). Otherwise Refused says why not.
	Moved, Already bool
	Refused        string
}

// MarkLeads moves the leads ids (at most MaxBulk, each once) to status
// (LeadResponded or LeadDead), in one transaction, and records one audit
// entry per lead moved, from the template audit (its Target is set per
// lead; note, when given, is appended to its Detail). A lead that may not
// move (LeadMarkFrom) is left as it is and named with the reason. A lead
// marked either way has its sequence stopped: its waiting drafts are
// withdrawn and its queued follow-ups are not sent; a queued first e-mail
// is not sent either, as its lead is no longer new (ClaimMessage). Marking
// responded sets responded_at, so Onboarding converts the lead next.
func (d *DB) MarkLeads(ctx context.Context, ids []int64, status, note string, audit AuditEntry) ([]LeadMark, error) {
	from, ok := LeadMarkFrom[status]
	if !ok {
		return nil, fmt.Errorf("store: a lead cannot be marked %q by hand", status)
	}
	ids = uniqueIDs(ids)
	if len(ids) == 0 || len(ids) > MaxBulk {
		return nil, fmt.Errorf("store: mark from 1 to %d leads, not %d", MaxBulk, len(ids))
	}
	var out []LeadMark
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		out = make([]LeadMark, 0, len(ids))
		var leads []Lead
		if err := tx.NewSelect().Model(&leads).Column("id", "company", "status").Where("l.id IN (?)", bun.List(ids)).Scan(ctx); err != nil {
			return err
		}
		byID := make(map[int64]Lead, len(leads))
		for _, l := range leads {
			byID[l.ID] = l
		}
		now := d.Now()
		for _, id := range ids {
			l, found := byID[id]
			m := LeadMark{ID: id, Company: l.Company, From: l.Status}
			switch {
			case !found:
				m.Refused = "there is no such lead"
			case l.Status == status:
				m.Already = true
			case l.Status == LeadConverted:
				m.Refused = "it is converted: a customer's lead cannot be marked " + status
			case !slices.Contains(from, l.Status):
				m.Refused = "it is " + l.Status + ": only a lead that is " + orList(from) + " can be marked " + status
			default:
				q := tx.NewUpdate().Model((*Lead)(nil)).Set("status = ?, updated_at = ?", status, now).
					Where("id = ? AND status = ?", id, l.Status)
				if status == LeadResponded {
					q = q.Set("responded_at = ?", now)
				}
				if _, err := q.Exec(ctx); err != nil {
					return err
				}
				if err := stopSequence(ctx, tx, id, "marked "+status+" by an operator", now); err != nil {
					return err
				}
				e := audit
				e.Target = "lead " + strconv.FormatInt(id, 10)
				e.Detail = l.Status + " → " + status
				if note != "" {
					e.Detail += "; note: " + note
				}
				if err := recordAuditIn(ctx, tx, e, now); err != nil {
					return err
				}
				m.Moved = true
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: unable to mark leads %s: %w", status, err)
	}
	return out, nil
}

// orList is "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// uniqueIDs is ids without repeats or non-positive ids, in their order.
func uniqueIDs(ids []int64) []int64 {
	seen := make(map[int64]bool, len(ids))
	out := make([]int64, 0, len(ids))
	for _, id := range ids {
		if id > 0 && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// recordAuditIn writes an audit entry in tx, stamped now when it has no time.
func recordAuditIn(ctx context.Context, tx bun.Tx, e AuditEntry, now time.Time) error {
	e.ID = 0
	if e.CreatedAt.IsZero() {
		e.CreatedAt = now
	}
	e.CreatedAt = e.CreatedAt.UTC()
	_, err := tx.NewInsert().Model(&e).Exec(ctx)
	return err
}

// SuppressionByOperator is the source of a suppression an operator added;
// its reason is SuppressManual (the reasons a suppression may have are
// fixed by the schema).
const SuppressionByOperator = "operator"

// AddOperatorSuppression stops mail to an address or a domain (kind
// SuppressAddress or "domain", value checked by the caller) with reason
// SuppressManual and source "operator", and audits it, in one transaction.
// It returns the suppression and whether it is new: one that exists (for
// any reason) is returned unchanged and nothing is audited.
func (d *DB) AddOperatorSuppression(ctx context.Context, kind, value string, audit AuditEntry) (Suppression, bool, error) {
	value = strings.ToLower(strings.TrimSpace(value))
	var s Suppression
	var added bool
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		now := d.Now()
		s = Suppression{Kind: kind, Value: value, Reason: SuppressManual, Source: SuppressionByOperator, CreatedAt: now}
		res, err := tx.NewInsert().Model(&s).On("CONFLICT (kind, value) DO NOTHING").Exec(ctx)
		if err != nil {
			return err
		}
		if added = affected(res) == 1; !added {
			return tx.NewSelect().Model(&s).Where("kind = ? AND value = ?", kind, value).Scan(ctx)
		}
		audit.Target = kind + " " + value
		audit.Detail = "reason " + SuppressManual
		return recordAuditIn(ctx, tx, audit, now)
	})
	if err != nil {
		return Suppression{}, false, fmt.Errorf("store: unable to suppress %s %s: %w", kind, value, err)
	}
	return s, added, nil
}

// RemoveSuppression deletes suppression id and audits it, in one
// transaction, and returns what it removed. Mail to the address or domain
// is allowed again from now on, but nothing is sent because of it: a
// message marked suppressed stays so, and a lead moved to unsubscribed or
// bounced keeps that status. ErrNotFound when there is no such suppression
// (removing twice removes nothing the second time).
func (d *DB) RemoveSuppression(ctx context.Context, id int64, audit AuditEntry) (Suppression, error) {
	var s Suppression
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := tx.NewSelect().Model(&s).Where("id = ?", id).Scan(ctx); err != nil {
			return notFound(err)
		}
		if _, err := tx.NewDelete().Model((*Suppression)(nil)).Where("id = ?", id).Exec(ctx); err != nil {
			return err
		}
		audit.Target = s.Kind + " " + s.Value
		audit.Detail = "was " + s.Reason
		if s.Source != "" {
			audit.Detail += " (" + s.Source + ")"
		}
		return recordAuditIn(ctx, tx, audit, d.Now())
	})
	if err != nil {
		return Suppression{}, fmt.Errorf("store: unable to remove suppression %d: %w", id, err)
	}
	return s, nil
}

// suppressionsListQuery is the select of ListSuppressions before its
// filter, order and cursor: without a search the page is read in order from
// suppressions_created (created_at, id); a search, a prefix of the value,
// reads its range of suppressions_value and sorts the matches.
func suppressionsListQuery(idb bun.IDB, dst *[]Suppression, search string) *bun.SelectQuery {
	q := idb.NewSelect().Model(dst)
	if search == "" {
		return q.ModelTableExpr(pinned(idb, "suppressions AS suppression INDEXED BY suppressions_created"))
	}
	return q.ModelTableExpr(pinned(idb, "suppressions AS suppression INDEXED BY suppressions_value"))
}

// prefixRange is the range of strings that start with prefix (lower-cased,
// as every value is): [prefix, prefix with its last byte raised).
func prefixRange(prefix string) (lo, hi string) {
	lo = strings.ToLower(prefix)
	b := []byte(lo)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return lo, string(b[:i+1])
		}
	}
	return lo, "\U0010ffff\U0010ffff"
}

// ListSuppressions returns a page of suppressions, newest first; a search
// keeps those whose value (address or domain) starts with it.
func (d *DB) ListSuppressions(ctx context.Context, q ListQuery) ([]Suppression, Page, error) {
	q = q.normal()
	var rows []Suppression
	l := list[Suppression]{table: "suppressions", alias: "suppression", sortCol: "created_at",
		query:  func() *bun.SelectQuery { return suppressionsListQuery(d.bun, &rows, q.Search) },
		filter: func(sq *bun.SelectQuery) *bun.SelectQuery { return sq },
		count:  d.kept("suppressions", nil),
		id:     func(s *Suppression) int64 { return s.ID },
	}
	if q.Search != "" {
		lo, hi := prefixRange(q.Search)
		l.filter = func(sq *bun.SelectQuery) *bun.SelectQuery {
			return sq.Where("suppression.value >= ? AND suppression.value < ?", lo, hi)
		}
	}
	pg, err := l.fetch(ctx, d, q, &rows)
	return rows, pg, err
}

// TaskRetry is what retrying did to one task.
type TaskRetry struct {
	ID      int64
	From    string // its status before; "" when there is no such task
	Retried bool
	Refused string
}

// RetryTasks puts the failed tasks ids (at most MaxBulk) back to pending,
// in one transaction, with one audit entry per task from the template
// audit. A retried task starts over: its attempts go back to 0, so it gets
// the full number of attempts again (the failures were the outage's, not
// the task's), while what the failed attempts cost stays in its cost. Its
// last error is kept in the audit entry and cleared on the task. A task
// that is not failed is left alone (a pending or running one is being
// worked on, a done one is finished), and so is one that is billed: an
// invoice line holds it, and retrying must never bill it twice.
func (d *DB) RetryTasks(ctx context.Context, ids []int64, audit AuditEntry) ([]TaskRetry, error) {
	ids = uniqueIDs(ids)
	if len(ids) == 0 || len(ids) > MaxBulk {
		return nil, fmt.Errorf("store: retry from 1 to %d tasks, not %d", MaxBulk, len(ids))
	}
	var out []TaskRetry
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		out = make([]TaskRetry, 0, len(ids))
		var tasks []struct {
			ID        int64  `bun:"id"`
			Status    string `bun:"status"`
			Attempts  int    `bun:"attempts"`
			LastError string `bun:"last_error"`
			Billed    bool   `bun:"billed"`
		}
		err := tx.NewSelect().TableExpr("tasks AS t").ColumnExpr("t.id, t.status, t.attempts, t.last_error").
			ColumnExpr("EXISTS (SELECT 1 FROM invoice_lines AS il WHERE il.task_id = t.id) AS billed").
			Where("t.id IN (?)", bun.List(ids)).Scan(ctx, &tasks)
		if err != nil {
			return err
		}
		byID := make(map[int64]int, len(tasks))
		for i, t := range tasks {
			byID[t.ID] = i
		}
		now := d.Now()
		for _, id := range ids {
			r := TaskRetry{ID: id}
			i, found := byID[id]
			switch {
			case !found:
				r.Refused = "there is no such task"
			case tasks[i].Status != TaskFailed:
				r.From, r.Refused = tasks[i].Status, "it is "+tasks[i].Status+": only a failed task is retried"
			case tasks[i].Billed:
				r.From, r.Refused = tasks[i].Status, "it is billed already: retrying it could bill it twice"
			default:
				t := tasks[i]
				r.From = t.Status
				res, err := tx.NewUpdate().Model((*Task)(nil)).
					Set("status = ?, attempts = 0, last_error = '', started_at = NULL, lease_expires_at = NULL, completed_at = NULL, updated_at = ?", TaskPending, now).
					Where("id = ? AND status = ?", id, TaskFailed).
					Where("NOT EXISTS (SELECT 1 FROM invoice_lines AS il WHERE il.task_id = ?)", id).Exec(ctx)
				if err != nil {
					return err
				}
				if affected(res) != 1 {
					return fmt.Errorf("task %d changed during its retry", id)
				}
				e := audit
				e.Target = "task " + strconv.FormatInt(id, 10)
				e.Detail = fmt.Sprintf("failed after %d %s → pending", t.Attempts, pluralWord(t.Attempts, "attempt", "attempts"))
				if t.LastError != "" {
					e.Detail += "; last error: " + truncate(t.LastError, 300)
				}
				if err := recordAuditIn(ctx, tx, e, now); err != nil {
					return err
				}
				r.Retried = true
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: unable to retry tasks: %w", err)
	}
	return out, nil
}

// Refusals of RetryMessage; each is wrapped with the message's id.
var (
	// ErrMessageNotRetryable: the message is neither failed for good nor
	// waiting for review.
	ErrMessageNotRetryable = errors.New("the message cannot be retried")
	// ErrMessageNeedsConfirm: nobody knows whether the message left; it is
	// retried only when the operator confirms it was not sent.
	ErrMessageNeedsConfirm = errors.New("the message may have been sent")
)

// MessageRetry is what RetryMessage did.
type MessageRetry struct {
	MessageID, LeadID int64
	From              string // the message's status before
	Review            bool   // it was waiting for review (fate unknown)
	LeadFrom          string // the lead's status before, when it moved back
}

// RetryMessage queues outbox message id again, in one transaction with its
// audit entry: a failed message with no attempts left (its attempts start
// over; a first e-mail's lead, marked failed with it, is new again), or a
// message whose fate is unknown (sending, flagged for review) when
// notSent says the operator checked that it was not sent. The message then
// goes out like any queued one, through the suppression list, the lead's
// status and the caps at send time (ClaimMessage). Anything else is refused
// with ErrMessageNotRetryable or ErrMessageNeedsConfirm (a *RetryRefusal
// saying why) and nothing changes; ErrNotFound for no such message. The
// MessageRetry names the message's lead even with a refusal.
func (d *DB) RetryMessage(ctx context.Context, id int64, notSent bool, audit AuditEntry) (MessageRetry, error) {
	var out MessageRetry
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var m Message
		if err := tx.NewSelect().Model(&m).Where("m.id = ?", id).Scan(ctx); err != nil {
			return notFound(err)
		}
		var l Lead
		if err := tx.NewSelect().Model(&l).Column("id", "status", "sequence_stop").Where("l.id = ?", m.LeadID).Scan(ctx); err != nil {
			return err
		}
		out = MessageRetry{MessageID: id, LeadID: m.LeadID, From: m.Status, Review: m.Status == MessageSending && m.NeedsReview}
		refuse := func(why error, text string) error { return &RetryRefusal{Err: why, Text: text} }
		switch {
		case m.Status == MessageFailed && m.Attempts < MaxSendAttempts:
			return refuse(ErrMessageNotRetryable, fmt.Sprintf("it failed %d of %d attempts: it is retried by itself on the next cycle", m.Attempts, MaxSendAttempts))
		case m.Status == MessageSending && !m.NeedsReview:
			return refuse(ErrMessageNotRetryable, "it is being sent right now")
		case out.Review && !notSent:
			return refuse(ErrMessageNeedsConfirm, "nobody knows whether it left: retry it only once you have checked it was not sent, and say so")
		case m.Status != MessageFailed && !out.Review:
			return refuse(ErrMessageNotRetryable, "it is "+m.Status+": only a failed message, or one waiting for review, is retried")
		}
		// The lead must still be one the message may go to.
		want, back := LeadNew, []string{LeadNew, LeadFailed}
		if m.Step > 1 {
			want, back = LeadContacted, []string{LeadContacted}
		}
		if !slices.Contains(back, l.Status) {
			return refuse(ErrMessageNotRetryable, "its lead is "+l.Status+": it would not be sent")
		}
		if m.Step > 1 && l.SequenceStop != "" {
			return refuse(ErrMessageNotRetryable, "its lead's sequence ended ("+l.SequenceStop+")")
		}
		var live int
		err := tx.NewSelect().Model((*Message)(nil)).ColumnExpr("COUNT(*)").
			Where("lead_id = ? AND id <> ? AND step = ?", m.LeadID, id, m.Step).
			Where("(status IN ('queued','sending','sent') OR (status = 'failed' AND attempts < ?))", MaxSendAttempts).Scan(ctx, &live)
		if err != nil {
			return err
		}
		if live > 0 {
			return refuse(ErrMessageNotRetryable, "its lead has another message for this step waiting, in flight or sent")
		}
		now := d.Now()
		set := "status = ?, error = '', needs_review = FALSE, sending_at = NULL"
		if m.Status == MessageFailed {
			set += ", attempts = 0"
		}
		if err := setMessage(ctx, tx, id, now, set, MessageQueued); err != nil {
			return err
		}
		if l.Status != want {
			out.LeadFrom = l.Status
			if _, err := tx.NewUpdate().Model((*Lead)(nil)).Set("status = ?, updated_at = ?", want, now).
				Where("id = ? AND status = ?", l.ID, l.Status).Exec(ctx); err != nil {
				return err
			}
		}
		audit.Target = "message " + strconv.FormatInt(id, 10)
		audit.Detail = "to " + m.ToAddr + ": " + m.Status
		if out.Review {
			audit.Detail += " (fate unknown; the operator confirmed it was not sent)"
		}
		audit.Detail += " → queued"
		if m.Error != "" {
			audit.Detail += "; last error: " + truncate(m.Error, 300)
		}
		if out.LeadFrom != "" {
			audit.Detail += "; lead " + strconv.FormatInt(l.ID, 10) + " " + out.LeadFrom + " → " + want
		}
		return recordAuditIn(ctx, tx, audit, now)
	})
	if err != nil {
		// out names the message's lead once it was read, even on a refusal.
		return out, fmt.Errorf("store: unable to retry message %d: %w", id, err)
	}
	return out, nil
}

// RetryRefusal says why a message was not retried.
type RetryRefusal struct {
	Err  error
	Text string
}

func (e *RetryRefusal) Error() string { return e.Text }
func (e *RetryRefusal) Unwrap() error { return e.Err }

// CustomerEdit is what an operator may change about a customer.
type CustomerEdit struct {
	Company, ContactName, ContactEmail string
}

// ErrEmailTaken: another customer has the contact address.
var ErrEmailTaken = errors.New("another customer has this contact e-mail")

// EditCustomer stores a customer's company, contact name and contact
// e-mail (lower-cased; checked by the caller) and audits what changed, in
// one transaction; it returns the customer before and after. Saving what is
// stored changes nothing and writes no entry. ErrNotFound for no such
// customer, ErrEmailTaken when another customer has the address.
func (d *DB) EditCustomer(ctx context.Context, id int64, in CustomerEdit, audit AuditEntry) (before, after Customer, err error) {
	in.ContactEmail = strings.ToLower(strings.TrimSpace(in.ContactEmail))
	err = d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := tx.NewSelect().Model(&before).Where("c.id = ?", id).Scan(ctx); err != nil {
			return notFound(err)
		}
		after = before
		after.Company, after.ContactName, after.ContactEmail = in.Company, in.ContactName, in.ContactEmail
		var changes []string
		note := func(field, was, now string) {
			if was != now {
				changes = append(changes, fmt.Sprintf("%s %q → %q", field, was, now))
			}
		}
		note("company", before.Company, after.Company)
		note("contact name", before.ContactName, after.ContactName)
		note("contact e-mail", before.ContactEmail, after.ContactEmail)
		if len(changes) == 0 {
			return nil
		}
		if after.ContactEmail != before.ContactEmail {
			var other int64
			err := tx.NewSelect().Model((*Customer)(nil)).Column("id").Where("contact_email = ? AND id <> ?", after.ContactEmail, id).Scan(ctx, &other)
			switch {
			case err == nil:
				return ErrEmailTaken
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
		}
		if _, err := tx.NewUpdate().Model(&after).Column("company", "contact_name", "contact_email").WherePK().Exec(ctx); err != nil {
			if IsUniqueViolation(err) {
				return ErrEmailTaken
			}
			return err
		}
		audit.Target = "customer " + strconv.FormatInt(id, 10)
		audit.Detail = strings.Join(changes, "; ")
		return recordAuditIn(ctx, tx, audit, d.Now())
	})
	if err != nil {
		return Customer{}, Customer{}, fmt.Errorf("store: unable to edit customer %d: %w", id, err)
	}
	return before, after, nil
}
