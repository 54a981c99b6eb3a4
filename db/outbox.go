package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// MaxSendAttempts bounds how often one outbox message is handed to the mail
// provider. After the last failed attempt the lead is marked failed.
const MaxSendAttempts = 3

// Setting keys of the outreach caps. They live in the database so that an
// admin can change them at run time and they survive restarts.
const (
	SettingEmailMaxPerCycle = "email.max_per_cycle"
	SettingEmailMaxPerHour  = "email.max_per_hour"
	SettingEmailMaxPerDay   = "email.max_per_day"
)

// EmailCaps are the outreach sending limits. Zero means "send nothing":
// pausing outreach is a legitimate operator choice.
type EmailCaps struct {
	PerCycle, PerHour, PerDay int
}

// SettingOrInit returns the stored value of key. When the key is unset it
// stores init's value first. Both happen in one transaction, so two callers
// racing on the first use agree on a single value (an install secret, a seed).
func (d *DB) SettingOrInit(ctx context.Context, key string, init func() (string, error)) (string, error) {
	var value string
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		v, ok, err := settingIn(ctx, tx, key)
		if err != nil || ok {
			value = v
			return err
		}
		if value, err = init(); err != nil {
			return err
		}
		return putSetting(ctx, tx, key, value, d.Now())
	})
	if err != nil {
		return "", fmt.Errorf("store: unable to initialise setting %s: %w", key, err)
	}
	return value, nil
}

func settingIn(ctx context.Context, idb bun.IDB, key string) (string, bool, error) {
	var value string
	err := idb.NewSelect().Model((*Setting)(nil)).Column("value").Where("key = ?", key).Scan(ctx, &value)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return value, err == nil, err
}

func putSetting(ctx context.Context, idb bun.IDB, key, value string, now time.Time) error {
	_, err := idb.NewInsert().Model(&Setting{Key: key, Value: value, UpdatedAt: now}).
		On("CONFLICT (key) DO UPDATE").
		Set("value = EXCLUDED.value, updated_at = EXCLUDED.updated_at").
		Exec(ctx)
	return err
}

// EmailCaps reads the persisted caps, first storing defaults for any that was
// never set (the configured values seed the table on the first start; from
// then on the table wins). A stored value that is not a whole number ≥ 0 is an
// error: sending under an unknown limit is worse than not sending.
func (d *DB) EmailCaps(ctx context.Context, defaults EmailCaps) (EmailCaps, error) {
	var caps EmailCaps
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		for _, f := range caps.fields(defaults) {
			v, ok, err := settingIn(ctx, tx, f.key)
			if err != nil {
				return err
			}
			if !ok {
				v = strconv.Itoa(max(f.def, 0))
				if err := putSetting(ctx, tx, f.key, v, d.Now()); err != nil {
					return err
				}
			}
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 0 {
				return fmt.Errorf("setting %s=%q is not a whole number ≥ 0", f.key, v)
			}
			*f.dst = n
		}
		return nil
	})
	if err != nil {
		return EmailCaps{}, fmt.Errorf("store: unable to read e-mail caps: %w", err)
	}
	return caps, nil
}

// SetEmailCaps stores new caps (the admin's run-time change).
func (d *DB) SetEmailCaps(ctx context.Context, caps EmailCaps) error {
	if caps.PerCycle < 0 || caps.PerHour < 0 || caps.PerDay < 0 {
		return fmt.Errorf("store: unable to save e-mail caps: caps must not be negative")
	}
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		for _, f := range caps.fields(caps) {
			if err := putSetting(ctx, tx, f.key, strconv.Itoa(f.def), d.Now()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: unable to save e-mail caps: %w", err)
	}
	return nil
}

type capField struct {
	key string
	def int
	dst *int
}

// fields pairs each cap of c with its setting key and its value in def.
func (c *EmailCaps) fields(def EmailCaps) []capField {
	return []capField{
		{SettingEmailMaxPerCycle, def.PerCycle, &c.PerCycle},
		{SettingEmailMaxPerHour, def.PerHour, &c.PerHour},
		{SettingEmailMaxPerDay, def.PerDay, &c.PerDay},
	}
}

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
	err = idb.NewRaw(sendsInWindowsSQL, now.Add(-time.Hour), now.Add(-24*time.Hour)).Scan(ctx, &hour, &day)
	return hour, day, err
}

// liveMessageSQL is true when lead l already has a message that is waiting,
// in flight, accepted by the provider, or failed with attempts left. Such a
// lead gets no second message. Dry-run and suppressed messages do not count:
// a dry-run lead put back to new must be queued again for real. It probes
// messages_lead (lead_id), a few rows per lead.
const liveMessageSQL = `EXISTS (SELECT 1 FROM messages AS m WHERE m.lead_id = l.id
	AND (m.status IN ('queued','sending','sent') OR (m.status = 'failed' AND m.attempts < ?)))`

// newLeadsToContactWhere selects the new leads BizDev can write to. Its first
// terms are the condition of the partial index leads_new_email (created_at,
// id), so the oldest are read in order from an index that holds only new
// leads with an address: the website-only leads, which stay new forever, are
// never stepped over.
const newLeadsToContactWhere = "l.status = 'new' AND l.email IS NOT NULL AND NOT " + liveMessageSQL

// newLeadsToContactQuery is NewLeadsToContact's query (the query-plan test
// explains it).
func newLeadsToContactQuery(idb bun.IDB, dst *[]Lead, limit int) *bun.SelectQuery {
	return idb.NewSelect().Model(dst).ModelTableExpr("leads AS l INDEXED BY leads_new_email").Where(newLeadsToContactWhere, MaxSendAttempts).
		OrderExpr("l.created_at, l.id").Limit(int64(limit))
}

// NewLeadsToContact returns up to limit new leads with an e-mail address and
// no live message, oldest first.
func (d *DB) NewLeadsToContact(ctx context.Context, limit int) ([]Lead, error) {
	var leads []Lead
	if limit <= 0 {
		return leads, nil
	}
	err := newLeadsToContactQuery(d.bun, &leads, limit).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: unable to select leads to contact: %w", err)
	}
	return leads, nil
}

// OutboxDraft is a rendered outreach e-mail.
type OutboxDraft struct {
	Template, Subject, Body string
}

// QueueMessage writes a queued outbox message for a lead that is still new,
// has an address and has no live message; it returns nil without error when
// the lead no longer qualifies (another run queued it first). compose renders
// the e-mail inside the transaction, knowing the message id (for the
// unsubscribe link); it must not touch the network.
func (d *DB) QueueMessage(ctx context.Context, leadID int64, compose func(l *Lead, messageID int64) (OutboxDraft, error)) (*Message, error) {
	var m *Message
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var l Lead
		err := tx.NewSelect().Model(&l).
			Where("l.id = ? AND l.status = ? AND l.email IS NOT NULL AND NOT "+liveMessageSQL, leadID, LeadNew, MaxSendAttempts).
			Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		now := d.Now()
		msg := &Message{LeadID: l.ID, ToAddr: l.EmailAddr(), Status: MessageQueued, CreatedAt: now, UpdatedAt: now}
		if _, err := tx.NewInsert().Model(msg).Exec(ctx); err != nil {
			return err
		}
		draft, err := compose(&l, msg.ID)
		if err != nil {
			return err
		}
		msg.Template, msg.Subject, msg.Body = draft.Template, draft.Subject, draft.Body
		if _, err := tx.NewUpdate().Model(msg).Column("template", "subject", "body").WherePK().Exec(ctx); err != nil {
			return err
		}
		m = msg
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: unable to queue message for lead %d: %w", leadID, err)
	}
	return m, nil
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
	err := d.bun.NewRaw(pendingOutboxSQL, MaxSendAttempts).Scan(ctx, &n)
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
	return idb.NewSelect().Model(dst).ModelTableExpr("messages AS m INDEXED BY messages_sendable").Where(sendableSQL, MaxSendAttempts).
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
	// ClaimPaused: outreach is paused after repeated provider errors; the
	// message stays as it was until an admin resumes outreach.
	ClaimPaused Claim = "paused"
)

// ClaimMessage decides, in one transaction, whether message id may be sent
// now, and if so marks it sending. The suppression list and the rolling hour
// and day caps are read in the same transaction as the claim, so concurrent
// cycles can neither overshoot a cap nor both send one message. A message to
// a suppressed address or domain is marked suppressed and its lead
// unsubscribed. While outreach is paused nothing is claimed.
func (d *DB) ClaimMessage(ctx context.Context, id int64, caps EmailCaps) (Claim, error) {
	claim := ClaimGone
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		// Read in the claim's transaction, so that no run sends after
		// another run's error paused outreach.
		if pausedAt, _, err := settingIn(ctx, tx, SettingOutreachPausedAt); err != nil || pausedAt != "" {
			if err == nil {
				claim = ClaimPaused
			}
			return err
		}
		var m Message
		err := tx.NewSelect().Model(&m).Where("m.id = ?", id).Scan(ctx)
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
		if l.Status != LeadNew {
			claim = ClaimSuppressed
			return setMessage(ctx, tx, id, now, "status = ?, error = ?", MessageSuppressed, "not sent: the lead is "+l.Status)
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
		if hour >= caps.PerHour || day >= caps.PerDay {
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

// setMessage updates message id with set (a SET list) and updated_at.
func setMessage(ctx context.Context, idb bun.IDB, id int64, now time.Time, set string, args ...any) error {
	_, err := idb.NewUpdate().Model((*Message)(nil)).Set(set, args...).Set("updated_at = ?", now).
		Where("id = ?", id).Exec(ctx)
	return err
}

// setLead updates lead id with set, only while the lead is still new: a lead
// that moved on (responded, converted, dead) is never pulled back.
func setLead(ctx context.Context, idb bun.IDB, id int64, now time.Time, set string, args ...any) error {
	_, err := idb.NewUpdate().Model((*Lead)(nil)).Set(set, args...).Set("updated_at = ?", now).
		Where("id = ? AND status = ?", id, LeadNew).Exec(ctx)
	return err
}

// suppressionForSQL finds the oldest suppression of an address (?0) or of
// any of a list of domains (?1). Each half is a search of the UNIQUE (kind,
// value) index and the few rows found are sorted; one OR over both halves,
// ordered by id with LIMIT 1, lets the planner walk the whole table in id
// order instead.
const suppressionForSQL = `SELECT reason FROM (
		SELECT id, reason FROM suppressions WHERE kind = 'address' AND value = ?0
		UNION ALL
		SELECT id, reason FROM suppressions WHERE kind = 'domain' AND value IN (?1))
	ORDER BY id LIMIT 1`

// suppressionFor finds a suppression of addr, of its domain or any parent
// domain (a suppressed acme.com covers mail.acme.com), or of the lead's
// domain key.
func suppressionFor(ctx context.Context, idb bun.IDB, addr string, domainKey *string) (string, bool, error) {
	addr = strings.ToLower(strings.TrimSpace(addr))
	var domains []string
	if at := strings.LastIndexByte(addr, '@'); at >= 0 {
		for d := addr[at+1:]; d != ""; {
			domains = append(domains, d)
			dot := strings.IndexByte(d, '.')
			if dot < 0 {
				break
			}
			d = d[dot+1:]
		}
	}
	if domainKey != nil && *domainKey != "" {
		domains = append(domains, *domainKey)
	}
	if len(domains) == 0 {
		domains = append(domains, "")
	}
	var reason string
	err := idb.NewRaw(suppressionForSQL, addr, bun.List(domains)).Scan(ctx, &reason)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return reason, err == nil, err
}

// IsSuppressed reports whether mail to addr is suppressed, by address or by
// its domain.
func (d *DB) IsSuppressed(ctx context.Context, addr string) (bool, error) {
	_, found, err := suppressionFor(ctx, d.bun, addr, nil)
	if err != nil {
		return false, fmt.Errorf("store: unable to check suppression of %s: %w", addr, err)
	}
	return found, nil
}

// AddSuppression stops mail to an address or a domain (kind "address" or
// "domain"). Adding one that exists changes nothing.
func (d *DB) AddSuppression(ctx context.Context, kind, value, reason, source string) error {
	s := &Suppression{Kind: kind, Value: strings.ToLower(strings.TrimSpace(value)), Reason: reason, Source: source, CreatedAt: d.Now()}
	if _, err := d.bun.NewInsert().Model(s).On("CONFLICT (kind, value) DO NOTHING").Exec(ctx); err != nil {
		return fmt.Errorf("store: unable to suppress %s %s: %w", kind, value, err)
	}
	return nil
}

// MarkSent records that the provider accepted message id (dryRun: that it was
// recorded without sending), marks its lead contacted and resets the count of
// consecutive provider errors, in one transaction.
func (d *DB) MarkSent(ctx context.Context, id int64, providerID string, dryRun bool) error {
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
		return setLead(ctx, tx, m.LeadID, now, "status = ?, contacted_at = ?, dry_run = ?", LeadContacted, now, dryRun)
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
	return idb.NewUpdate().Model((*Message)(nil)).ModelTableExpr("messages INDEXED BY messages_sending").
		Set("needs_review = TRUE").Set("updated_at = ?", now).
		Where("status = ? AND NOT needs_review AND sending_at <= ?", MessageSending, now.Add(-olderThan))
}

// RequeueDryRunLeads puts every lead contacted only in DRY_RUN back to new,
// so that BizDev sends to it for real; it returns how many.
func (d *DB) RequeueDryRunLeads(ctx context.Context) (int, error) {
	res, err := d.bun.NewUpdate().Model((*Lead)(nil)).
		Set("status = ?, dry_run = FALSE, contacted_at = NULL, updated_at = ?", LeadNew, d.Now()).
		Where("status = ? AND dry_run", LeadContacted).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: unable to requeue dry-run leads: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// ContactedWithoutReply returns up to limit leads with id above afterID that
// are contacted, were contacted at or before contactedBy, and have no reply,
// in id order (the caller pages with the last id).
func (d *DB) ContactedWithoutReply(ctx context.Context, contactedBy time.Time, afterID int64, limit int) ([]Lead, error) {
	var leads []Lead
	err := d.bun.NewSelect().Model(&leads).
		Where("l.status = ? AND l.contacted_at <= ? AND l.id > ?", LeadContacted, contactedBy.UTC(), afterID).
		Where("NOT EXISTS (SELECT 1 FROM replies AS r WHERE r.lead_id = l.id)").
		OrderExpr("l.id").Limit(int64(limit)).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: unable to select contacted leads: %w", err)
	}
	return leads, nil
}

// LeadCursor is a position in the order of contact, (contacted_at, id). The
// zero cursor is before every lead.
type LeadCursor struct {
	ContactedAt time.Time
	ID          int64
}

// contactedAfterWhere selects contacted leads after a cursor (?1, ?2) and
// contacted at or before ?0, without a reply. Its first term is the
// condition of the partial index leads_contacted (contacted_at, id), so the
// rows are a range of that index read in order from the cursor; each reply
// check is a probe of replies_lead.
const contactedAfterWhere = `l.status = 'contacted' AND l.contacted_at <= ?0
	AND (l.contacted_at, l.id) > (?1, ?2)
	AND NOT EXISTS (SELECT 1 FROM replies AS r WHERE r.lead_id = l.id)`

// contactedAfterQuery is ContactedAfter's query.
func contactedAfterQuery(idb bun.IDB, dst *[]Lead, contactedBy time.Time, after LeadCursor, limit int) *bun.SelectQuery {
	return idb.NewSelect().Model(dst).ModelTableExpr("leads AS l INDEXED BY leads_contacted").
		Where(contactedAfterWhere, contactedBy.UTC(), after.ContactedAt.UTC(), after.ID).
		OrderExpr("l.contacted_at, l.id").Limit(int64(limit))
}

// ContactedAfter returns up to limit leads after cursor in the order of
// contact that are contacted, were contacted at or before contactedBy, and
// have no reply. The caller pages with the last lead's (ContactedAt, ID); a
// caller that keeps its cursor between runs reads each lead once, as a lead
// contacted later is always after it.
func (d *DB) ContactedAfter(ctx context.Context, contactedBy time.Time, after LeadCursor, limit int) ([]Lead, error) {
	var leads []Lead
	if limit <= 0 {
		return leads, nil
	}
	if err := contactedAfterQuery(d.bun, &leads, contactedBy, after, limit).Scan(ctx); err != nil {
		return nil, fmt.Errorf("store: unable to select contacted leads: %w", err)
	}
	return leads, nil
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

// NewReply is an inbound answer to outreach.
type NewReply struct {
	LeadID                  int64
	FromAddr, Subject, Body string
	Simulated               bool
}

// RecordReply stores a reply and moves its lead from new or contacted to
// responded, in one transaction. A simulated reply is stored only for a lead
// that is contacted and has no reply yet, so the simulator never touches a
// lead twice nor one that moved on; it reports whether it stored the reply.
func (d *DB) RecordReply(ctx context.Context, in NewReply) (bool, error) {
	stored := false
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var l Lead
		if err := tx.NewSelect().Model(&l).Where("l.id = ?", in.LeadID).Scan(ctx); err != nil {
			return notFound(err)
		}
		if in.Simulated {
			n, err := tx.NewSelect().Model((*Reply)(nil)).Where("lead_id = ?", l.ID).Count(ctx)
			if err != nil || n > 0 || l.Status != LeadContacted {
				return err
			}
		}
		now := d.Now()
		r := &Reply{LeadID: l.ID, FromAddr: in.FromAddr, Subject: in.Subject, Body: in.Body, Simulated: in.Simulated, ReceivedAt: now}
		if _, err := tx.NewInsert().Model(r).Exec(ctx); err != nil {
			return err
		}
		stored = true
		_, err := tx.NewUpdate().Model((*Lead)(nil)).
			Set("status = ?, responded_at = ?, updated_at = ?", LeadResponded, now, now).
			Where("id = ? AND status IN (?)", l.ID, bun.List([]string{LeadNew, LeadContacted})).Exec(ctx)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: unable to record reply for lead %d: %w", in.LeadID, err)
	}
	return stored, nil
}

// Setting keys of the outreach circuit breaker: consecutive provider errors
// pause outreach until an admin resumes it. They live in settings so that a
// pause survives a restart.
const (
	// SettingOutreachErrors counts the provider errors since the last
	// message a provider accepted.
	SettingOutreachErrors = "outreach.consecutive_errors"
	// SettingOutreachPausedAt is when outreach was paused (RFC 3339), empty
	// or absent while it runs.
	SettingOutreachPausedAt = "outreach.paused_at"
	// SettingOutreachPausedAfter is the error count that tripped the pause.
	SettingOutreachPausedAfter = "outreach.paused_after"
)

// OutreachPause is the state of the outreach circuit breaker.
type OutreachPause struct {
	// Errors counts the consecutive provider errors, reset by every message
	// a provider accepts.
	Errors      int
	Paused      bool
	PausedAt    time.Time
	PausedAfter int // the consecutive errors that paused outreach
}

// SendFailure is what RecordSendError decided about a failed send.
type SendFailure struct {
	LeadFailed bool // the message used its last attempt; its lead is failed
	Paused     bool // this error paused outreach
	Errors     int  // consecutive provider errors, this one included
}

// OutreachPause reads the circuit breaker. It only reads, so page views may
// call it.
func (d *DB) OutreachPause(ctx context.Context) (OutreachPause, error) {
	p, err := outreachPauseIn(ctx, d.bun)
	if err != nil {
		return OutreachPause{}, fmt.Errorf("store: unable to read the outreach pause: %w", err)
	}
	return p, nil
}

func outreachPauseIn(ctx context.Context, idb bun.IDB) (OutreachPause, error) {
	var p OutreachPause
	var settings []Setting
	keys := []string{SettingOutreachErrors, SettingOutreachPausedAt, SettingOutreachPausedAfter}
	err := idb.NewSelect().Model(&settings).Where("key IN (?)", bun.List(keys)).Scan(ctx)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return p, err
	}
	for _, s := range settings {
		v := strings.TrimSpace(s.Value)
		if v == "" {
			continue
		}
		switch s.Key {
		case SettingOutreachErrors:
			p.Errors, err = strconv.Atoi(v)
		case SettingOutreachPausedAfter:
			p.PausedAfter, err = strconv.Atoi(v)
		case SettingOutreachPausedAt:
			p.Paused = true
			p.PausedAt, err = time.Parse(time.RFC3339Nano, v)
		}
		if err != nil {
			return OutreachPause{}, fmt.Errorf("setting %s=%q is malformed: %w", s.Key, v, err)
		}
	}
	return p, nil
}

// RecordSendError records a provider error for message id like MarkFailed
// and, in the same transaction, counts it: the pauseAfter-th consecutive
// error (0: never) pauses outreach.
func (d *DB) RecordSendError(ctx context.Context, id int64, reason string, pauseAfter int) (SendFailure, error) {
	var out SendFailure
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		now := d.Now()
		var err error
		if out.LeadFailed, err = markFailed(ctx, tx, id, reason, now); err != nil {
			return err
		}
		p, err := outreachPauseIn(ctx, tx)
		if err != nil {
			return err
		}
		out.Errors = p.Errors + 1
		if err := putSetting(ctx, tx, SettingOutreachErrors, strconv.Itoa(out.Errors), now); err != nil {
			return err
		}
		if p.Paused || pauseAfter <= 0 || out.Errors < pauseAfter {
			return nil
		}
		out.Paused = true
		if err := putSetting(ctx, tx, SettingOutreachPausedAfter, strconv.Itoa(out.Errors), now); err != nil {
			return err
		}
		return putSetting(ctx, tx, SettingOutreachPausedAt, now.Format(time.RFC3339Nano), now)
	})
	if err != nil {
		return SendFailure{}, fmt.Errorf("store: unable to record the send error of message %d: %w", id, err)
	}
	return out, nil
}

// resetProviderErrors zeroes the consecutive error count, writing only when
// it is not zero already. A pause stays until an admin resumes.
func resetProviderErrors(ctx context.Context, idb bun.IDB, now time.Time) error {
	_, err := idb.NewUpdate().Model((*Setting)(nil)).Set("value = '0', updated_at = ?", now).
		Where("key = ? AND value <> '0'", SettingOutreachErrors).Exec(ctx)
	return err
}

// ResumeOutreach lifts a pause and zeroes the error count, in one
// transaction. It returns the state it found, so the caller can tell whether
// outreach was paused at all.
func (d *DB) ResumeOutreach(ctx context.Context) (OutreachPause, error) {
	var was OutreachPause
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if was, err = outreachPauseIn(ctx, tx); err != nil || (!was.Paused && was.Errors == 0) {
			return err
		}
		now := d.Now()
		for key, value := range map[string]string{SettingOutreachErrors: "0", SettingOutreachPausedAt: "", SettingOutreachPausedAfter: ""} {
			if err := putSetting(ctx, tx, key, value, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return OutreachPause{}, fmt.Errorf("store: unable to resume outreach: %w", err)
	}
	return was, nil
}
