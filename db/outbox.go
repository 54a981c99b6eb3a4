package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// MaxSendAttempts bounds how often one outbox message is handed to the mail
// provider. After the last failed attempt the lead is marked failed.
const MaxSendAttempts = 3

// leftSince counts the messages that left, or may have left, the outbox
// after the time bound to arg: sent and dry-run ones by sent_at, and
// in-flight ones by sending_at. Counting in-flight messages keeps two
// concurrent cycles from both taking the last place under a cap, and counts
// a message whose fate is unknown after a crash as sent.
//
// It is the sum of two counts over disjoint statuses, each a range scan of
// its own covering partial index (messages_left on sent_at, messages_sending
// on sending_at, migration 0005), so it reads only the messages of the
// window, never the whole outbox history. (One OR over both conditions
// cannot use either index and visits every message ever sent.) INDEXED BY
// pins the plan: without ANALYZE statistics, which the app never gathers,
// SQLite would rather search an index on status, i.e. every sent message.
// The same holds for the other INDEXED BY in this package; a query whose
// index cannot serve it fails to prepare instead of quietly scanning.
func leftSince(arg string) string {
	return "(SELECT COUNT(*) FROM messages INDEXED BY messages_left WHERE status IN ('sent','dry_run') AND sent_at > " + arg + ") + " +
		"(SELECT COUNT(*) FROM messages INDEXED BY messages_sending WHERE status = 'sending' AND sending_at > " + arg + ")"
}

// sendsInWindowsSQL is leftSince for the hour (?0) and the day (?1) at
// once: both caps of a claim, and the e-mail panel's figures.
var sendsInWindowsSQL = "SELECT " + leftSince("?0") + " AS hour, " + leftSince("?1") + " AS day"

// sendsInWindows counts what left the outbox after now-1h and after
// now-24h, in one query.
func sendsInWindows(ctx context.Context, idb bun.IDB, now time.Time) (hour, day int, err error) {
	now = now.UTC()
	err = idb.NewRaw(pinned(idb, sendsInWindowsSQL), now.Add(-time.Hour), now.Add(-24*time.Hour)).Scan(ctx, &hour, &day)
	return hour, day, err
}

// liveMessageSQL is true when lead l already has a message that is waiting,
// in flight, accepted by the provider, or failed with attempts left. Such a
// lead gets no second message. Dry-run and suppressed messages do not count:
// a dry-run lead put back to new must be queued again for real. It probes
// messages_lead (lead_id), a few rows per lead.
const liveMessageSQL = `EXISTS (SELECT 1 FROM messages AS m WHERE m.lead_id = l.id
	AND (m.status IN ('queued','sending','sent') OR (m.status = 'failed' AND m.attempts < ?)))`

// OutboxDraft is a rendered outreach e-mail.
type OutboxDraft struct {
	Template, Subject, Body string
}

// QueueMessage writes a queued outbox message for a lead that is still new,
// has an address and has no live message nor a draft waiting for review; it returns nil without error when
// the lead no longer qualifies (another run queued it first). compose renders
// the e-mail inside the transaction, knowing the message id (for the
// unsubscribe link); it must not touch the network, and may be called
// again when PostgreSQL has the transaction retried.
//
// Across instances on PostgreSQL, a lead gets one first message: the lead
// row is read FOR UPDATE SKIP LOCKED, so an instance finding another one
// queueing (or sending to) the same lead passes it over (nil, as when it
// was queued first), and the NOT EXISTS of a live message is read under
// SERIALIZABLE, which aborts one of two transactions that each inserted a
// message the other's check did not see (RunInTx runs it again; it then
// sees the message and queues nothing).
func (d *DB) QueueMessage(ctx context.Context, leadID int64, compose func(l *Lead, messageID int64) (OutboxDraft, error)) (*Message, error) {
	var m *Message
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		// RunInTx may run this again (PostgreSQL retries a conflict): start
		// from nothing.
		m = nil
		var l Lead
		q := tx.NewSelect().Model(&l).
			Where("l.id = ? AND l.status = ? AND l.email IS NOT NULL AND NOT "+liveMessageSQL+" AND NOT "+waitingDraftSQL, leadID, LeadNew, MaxSendAttempts)
		if d.Postgres() {
			q = q.For("UPDATE OF l SKIP LOCKED")
		}
		err := q.Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		m, err = insertComposed(ctx, tx, &l, 1, d.Now(), compose)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: unable to queue message for lead %d: %w", leadID, err)
	}
	return m, nil
}

// insertComposed queues step of lead l's sequence: the row first, so that
// compose knows its id (for the unsubscribe link), then its text.
func insertComposed(ctx context.Context, tx bun.Tx, l *Lead, step int, now time.Time, compose func(l *Lead, messageID int64) (OutboxDraft, error)) (*Message, error) {
	msg := &Message{LeadID: l.ID, ToAddr: l.EmailAddr(), Status: MessageQueued, Step: step, CreatedAt: now, UpdatedAt: now}
	if _, err := tx.NewInsert().Model(msg).Exec(ctx); err != nil {
		return nil, err
	}
	draft, err := compose(l, msg.ID)
	if err != nil {
		return nil, err
	}
	msg.Template, msg.Subject, msg.Body = draft.Template, draft.Subject, draft.Body
	if _, err := tx.NewUpdate().Model(msg).Column("template", "subject", "body").WherePK().Exec(ctx); err != nil {
		return nil, err
	}
	return msg, nil
}

// sendableSQL is true for an outbox message still to be sent: queued, or
// failed with attempts left. It is, term for term, the condition of the
// partial index messages_sendable (created_at, id) of migration 0005 (which
// spells MaxSendAttempts as 3), so the queries below read that index: the
// outbox still to send, never the history of sent and exhausted messages.
const sendableSQL = "(m.status = 'queued' OR (m.status = 'failed' AND m.attempts < ?))"

// pendingOutboxSQL counts the outbox still to send: a scan of the covering
// partial index messages_sendable, as long as the outbox itself.
const pendingOutboxSQL = "SELECT COUNT(*) FROM messages AS m INDEXED BY messages_sendable WHERE " + sendableSQL

// PendingOutbox counts the messages still to be sent: queued ones and failed
// ones with attempts left.
func (d *DB) PendingOutbox(ctx context.Context) (int, error) {
	var n int
	err := d.bun.NewRaw(d.pin(pendingOutboxSQL), MaxSendAttempts).Scan(ctx, &n)
	if err != nil {
		return 0, fmt.Errorf("store: unable to count pending messages: %w", err)
	}
	return n, nil
}

// SendableMessages returns up to limit queued messages and failed ones with
// attempts left, oldest first.
func (d *DB) SendableMessages(ctx context.Context, limit int) ([]Message, error) {
	var msgs []Message
	if limit <= 0 {
		return msgs, nil
	}
	err := sendableMessagesQuery(d.bun, &msgs, limit).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: unable to select messages to send: %w", err)
	}
	return msgs, nil
}

// sendableMessagesQuery is SendableMessages' query: the oldest of the
// partial index messages_sendable, read in its order and stopped at limit.
func sendableMessagesQuery(idb bun.IDB, dst *[]Message, limit int) *bun.SelectQuery {
	return idb.NewSelect().Model(dst).ModelTableExpr(pinned(idb, "messages AS m INDEXED BY messages_sendable")).Where(sendableSQL, MaxSendAttempts).
		OrderExpr("m.created_at, m.id").Limit(int64(limit))
}

// Claim is what ClaimMessage decided about one outbox message.
type Claim string

// Claims.
const (
	// ClaimOK: the message is now sending; hand it to the provider.
	ClaimOK Claim = "claimed"
	// ClaimCapped: a rolling cap is full; the message stays as it was.
	ClaimCapped Claim = "capped"
	// ClaimSuppressed: the message will never be sent (suppressed address or
	// domain, or the lead is no longer new) and is marked suppressed.
	ClaimSuppressed Claim = "suppressed"
	// ClaimGone: the message is no longer sendable (another run took it).
	ClaimGone Claim = "gone"
	// ClaimPaused: outreach is paused (provider errors, bounces or a
	// complaint); the message stays as it was until an admin resumes it.
	ClaimPaused Claim = "paused"
)

// ClaimMessage decides, in one transaction, whether message id may be sent
// now, and if so marks it sending. The suppression list and the rolling hour
// and day caps are read in the same transaction as the claim, so concurrent
// cycles can neither overshoot a cap nor both send one message; the daily
// cap is the warm-up ramp's of the day when one is on. A message to
// a suppressed address or domain is marked suppressed and its lead
// unsubscribed. While outreach is paused nothing is claimed.
//
// Across instances on PostgreSQL it is as correct, by runClaim (see
// there): the claims of the outbox take turns, each counting every claim
// committed before it, and the message row is locked, so no message is
// claimed twice and the claims together never pass a cap.
func (d *DB) ClaimMessage(ctx context.Context, id int64, caps EmailCaps) (Claim, error) {
	var claim Claim
	err := d.runClaim(ctx, lockOutboxClaims, func(ctx context.Context, tx bun.Tx) error {
		// The transaction may run again (PostgreSQL retries a deadlock): a
		// claim decided by an attempt that was rolled back must not stand.
		claim = ClaimGone
		// Read in the claim's transaction, so that no run sends after
		// another run's error paused outreach.
		if pausedAt, _, err := settingIn(ctx, tx, SettingOutreachPausedAt); err != nil || pausedAt != "" {
			if err == nil {
				claim = ClaimPaused
			}
			return err
		}
		var m Message
		q := tx.NewSelect().Model(&m).Where("m.id = ?", id)
		if d.Postgres() {
			// The latest version of the row, locked until the claim
			// commits (runClaim).
			q = q.For("UPDATE")
		}
		err := q.Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if m.Status != MessageQueued && (m.Status != MessageFailed || m.Attempts >= MaxSendAttempts) {
			return nil
		}
		var l Lead
		if err := tx.NewSelect().Model(&l).Where("l.id = ?", m.LeadID).Scan(ctx); err != nil {
			return err
		}
		now := d.Now()
		// The first step goes to a new lead, a follow-up to a contacted
		// one whose sequence still runs.
		want := LeadNew
		if m.Step > 1 {
			want = LeadContacted
		}
		switch {
		case l.Status != want:
			claim = ClaimSuppressed
			return setMessage(ctx, tx, id, now, "status = ?, error = ?", MessageSuppressed, "not sent: the lead is "+l.Status)
		case m.Step > 1 && l.SequenceStop != "":
			claim = ClaimSuppressed
			return setMessage(ctx, tx, id, now, "status = ?, error = ?", MessageSuppressed, "not sent: "+l.SequenceStop)
		}
		reason, found, err := suppressionFor(ctx, tx, m.ToAddr, l.DomainKey)
		if err != nil {
			return err
		}
		if found {
			claim = ClaimSuppressed
			if err := setMessage(ctx, tx, id, now, "status = ?, error = ?", MessageSuppressed, "not sent: suppressed ("+reason+")"); err != nil {
				return err
			}
			return setLead(ctx, tx, l.ID, now, "status = ?", LeadUnsubscribed)
		}
		// Both rolling windows in one query (two index range scans).
		hour, day, err := sendsInWindows(ctx, tx, now)
		if err != nil {
			return err
		}
		// The warm-up ramp, when on, lowers the daily cap.
		warmup, err := d.warmupIn(ctx, tx, caps.PerDay, now)
		if err != nil {
			return err
		}
		if hour >= caps.PerHour || day >= warmup.Cap {
			claim = ClaimCapped
			return nil
		}
		claim = ClaimOK
		return setMessage(ctx, tx, id, now, "status = ?, sending_at = ?", MessageSending, now)
	})
	if err != nil {
		return "", fmt.Errorf("store: unable to claim message %d: %w", id, err)
	}
	return claim, nil
}

// runClaim runs fn, a claim of an outbox with caps (ClaimMessage,
// ClaimClientMessage), in a transaction.
//
// On SQLite it is RunInTx: the write lock taken at BEGIN
// (_txlock=immediate) orders the claims of every process.
//
// On PostgreSQL, several instances claim from one outbox at once, and a
// cap is a count over every message of its window: two claims of
// different messages must not both count the window without the other.
// SERIALIZABLE alone (the store's default) would abort one of them, and
// with a few instances walking one outbox page most claims conflict, so
// retries pile up until RunInTx gives up (measured: with 8 instances on
// 60 messages, over a hundred aborts and a claim failing after its 10
// attempts). So the claims of one outbox take turns instead: fn runs in
// READ COMMITTED after pg_advisory_xact_lock on the outbox's key, held to
// the commit. Each statement of READ COMMITTED reads what was committed
// when it starts, so the count of the window, read after the lock, holds
// every claim committed before. Only a claim puts a message in the window;
// MarkSent and MarkFailed move on one claimed before, which on SQLite too
// may land before or after a claim, so a claim never passes a cap that
// SQLite's order would keep. The message row itself is read FOR
// UPDATE: its latest version, which no other writer (MarkSent, a retry, a
// stopped sequence) changes until the claim commits, so it is claimed once.
// The other reads (the pause, the lead, the suppressions) are of the latest
// committed state, as SQLite's are; a writer that changes one of them after
// it was read (a pause, an unsubscribe) reads nothing the claim writes, so
// the claim simply comes first in their order, as with SQLite's lock. A
// claim holds its turn for a few statements; a deadlock (40P01) is run
// again as in RunInTx.
func (d *DB) runClaim(ctx context.Context, key int32, fn func(ctx context.Context, tx bun.Tx) error) error {
	if !d.Postgres() {
		return d.RunInTx(ctx, fn)
	}
	return d.runInTxPostgres(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted}, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?, ?)", lockSpace, key); err != nil {
			return err
		}
		return fn(ctx, tx)
	})
}

// setMessage updates message id with set (a SET list) and updated_at.
func setMessage(ctx context.Context, idb bun.IDB, id int64, now time.Time, set string, args ...any) error {
	_, err := idb.NewUpdate().Model((*Message)(nil)).Set(set, args...).Set("updated_at = ?", now).
		Where("id = ?", id).Exec(ctx)
	return err
}

// MarkSent records that the provider accepted message id (dryRun: that it was
// recorded without sending), marks its lead contacted and resets the count of
// consecutive provider errors, in one transaction. The lead's sequence ends
// with this step: MarkSentStep schedules a next one.
func (d *DB) MarkSent(ctx context.Context, id int64, providerID string, dryRun bool) error {
	return d.MarkSentStep(ctx, id, providerID, dryRun, nil)
}

// MarkSentStep is MarkSent that also records the message's step on its
// lead and when the next step is due (nil: the sequence ends here).
func (d *DB) MarkSentStep(ctx context.Context, id int64, providerID string, dryRun bool, nextStepAt *time.Time) error {
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		m, err := sendingMessage(ctx, tx, id)
		if err != nil {
			return err
		}
		now, status := d.Now(), MessageSent
		if dryRun {
			status = MessageDryRun
		}
		err = setMessage(ctx, tx, id, now, "status = ?, provider_id = ?, error = '', attempts = attempts + 1, sent_at = ?, needs_review = FALSE",
			status, providerID, now)
		if err != nil {
			return err
		}
		if err := resetProviderErrors(ctx, tx, now); err != nil {
			return err
		}
		if !dryRun {
			if err := d.startWarmupIn(ctx, tx, now); err != nil {
				return err
			}
		}
		var next any
		if nextStepAt != nil {
			next = nextStepAt.UTC()
		}
		if m.Step > 1 {
			// A follow-up: the lead is contacted already; only its place in
			// the sequence moves, while the sequence still runs.
			_, err := tx.NewUpdate().Model((*Lead)(nil)).
				Set("sequence_step = ?, next_step_at = ?, contacted_at = ?, updated_at = ?", m.Step, next, now, now).
				Where("id = ? AND status = ? AND sequence_stop = ''", m.LeadID, LeadContacted).Exec(ctx)
			return err
		}
		return setLead(ctx, tx, m.LeadID, now, "status = ?, contacted_at = ?, dry_run = ?, sequence_step = 1, next_step_at = ?, sequence_stop = ''",
			LeadContacted, now, dryRun, next)
	})
	if err != nil {
		return fmt.Errorf("store: unable to mark message %d sent: %w", id, err)
	}
	return nil
}

// MarkFailed records a provider error for message id. After MaxSendAttempts
// failed attempts its lead is marked failed; it reports whether that
// happened.
func (d *DB) MarkFailed(ctx context.Context, id int64, reason string) (leadFailed bool, err error) {
	err = d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		leadFailed, err = markFailed(ctx, tx, id, reason, d.Now())
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: unable to mark message %d failed: %w", id, err)
	}
	return leadFailed, nil
}

func markFailed(ctx context.Context, tx bun.Tx, id int64, reason string, now time.Time) (bool, error) {
	m, err := sendingMessage(ctx, tx, id)
	if err != nil {
		return false, err
	}
	err = setMessage(ctx, tx, id, now, "status = ?, error = ?, attempts = attempts + 1, needs_review = FALSE",
		MessageFailed, truncate(reason, 1000))
	if err != nil || m.Attempts+1 < MaxSendAttempts {
		return false, err
	}
	return true, setLead(ctx, tx, m.LeadID, now, "status = ?", LeadFailed)
}

func sendingMessage(ctx context.Context, idb bun.IDB, id int64) (*Message, error) {
	var m Message
	if err := idb.NewSelect().Model(&m).Where("m.id = ?", id).Scan(ctx); err != nil {
		return nil, notFound(err)
	}
	if m.Status != MessageSending {
		return nil, fmt.Errorf("message %d is %s, not sending", id, m.Status)
	}
	return &m, nil
}

// FlagForReview leaves a message "sending" and flags it for the admin: the
// provider's answer was lost, so nobody knows whether it left. It is never
// sent again automatically.
func (d *DB) FlagForReview(ctx context.Context, messageID int64, reason string) error {
	_, err := d.bun.NewUpdate().Model((*Message)(nil)).
		Set("needs_review = TRUE").Set("error = ?", reason).Set("updated_at = ?", d.Now()).
		Where("id = ? AND status = ?", messageID, MessageSending).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("store: unable to flag message %d for review: %w", messageID, err)
	}
	return nil
}

// FlagStaleSending marks for review the messages that have been sending for
// longer than olderThan: their cycle died between claiming and recording the
// provider's answer, so nobody knows whether they left. They are never sent
// again automatically; it returns how many it flagged now.
func (d *DB) FlagStaleSending(ctx context.Context, olderThan time.Duration) (int, error) {
	now := d.Now()
	res, err := flagStaleSendingQuery(d.bun, now, olderThan).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: unable to flag stale messages: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// flagStaleSendingQuery is FlagStaleSending's update: a range of the
// partial index messages_sending, the messages in flight or waiting for
// review, never the sent history.
func flagStaleSendingQuery(idb bun.IDB, now time.Time, olderThan time.Duration) *bun.UpdateQuery {
	return idb.NewUpdate().Model((*Message)(nil)).ModelTableExpr(pinned(idb, "messages INDEXED BY messages_sending")).
		Set("needs_review = TRUE").Set("updated_at = ?", now).
		Where("status = ? AND NOT needs_review AND sending_at <= ?", MessageSending, now.Add(-olderThan))
}

// RequeueDryRunLeads puts every lead contacted only in DRY_RUN back to new,
// so that BizDev sends to it for real; it returns how many.
func (d *DB) RequeueDryRunLeads(ctx context.Context) (int, error) {
	res, err := d.bun.NewUpdate().Model((*Lead)(nil)).
		Set("status = ?, dry_run = FALSE, contacted_at = NULL, sequence_step = 0, next_step_at = NULL, sequence_stop = '', updated_at = ?", LeadNew, d.Now()).
		Where("status = ? AND dry_run", LeadContacted).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: unable to requeue dry-run leads: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// LastSubject is the subject of the latest message sent (or dry-run) to a
// lead, or "" when there is none.
func (d *DB) LastSubject(ctx context.Context, leadID int64) (string, error) {
	var subject string
	err := d.bun.NewSelect().Model((*Message)(nil)).Column("subject").
		Where("lead_id = ? AND status IN (?)", leadID, bun.List([]string{MessageSent, MessageDryRun})).
		OrderExpr("id DESC").Limit(1).Scan(ctx, &subject)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("store: unable to read last subject for lead %d: %w", leadID, err)
	}
	return subject, nil
}
