package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// The clients' outbox: welcome, invoice, receipt, reminder and portal link
// e-mails. Its states and guarantees are the outreach outbox's (outbox.go):
// a message is claimed (sending) in the transaction that checks its caps, a
// lost provider answer leaves it sending and flagged for review, never sent
// again; but it has its own caps, and outreach's suppression list and pause
// do not apply (an unsubscribe from cold e-mail never stops an invoice). A
// flagged client address (hard bounce, complaint) stops every kind.

// ClientMessage is one e-mail to a client.
type ClientMessage struct {
	bun.BaseModel `bun:"table:client_messages,alias:cm"`

	ID          int64      `bun:"id,pk,autoincrement"`
	CustomerID  int64      `bun:"customer_id,notnull"`
	InvoiceID   *int64     `bun:"invoice_id"`
	Kind        string     `bun:"kind,notnull"`
	DedupeKey   string     `bun:"dedupe_key,notnull"`
	ToAddr      string     `bun:"to_addr,notnull"`
	Subject     string     `bun:"subject,notnull"`
	BodyText    string     `bun:"body_text,notnull"`
	BodyHTML    string     `bun:"body_html,notnull"`
	Status      string     `bun:"status,notnull"`
	ProviderID  string     `bun:"provider_id,notnull"`
	Error       string     `bun:"error,notnull"`
	Attempts    int        `bun:"attempts,notnull"`
	NeedsReview bool       `bun:"needs_review,notnull"`
	CreatedAt   time.Time  `bun:"created_at,notnull"`
	SendingAt   *time.Time `bun:"sending_at"`
	SentAt      *time.Time `bun:"sent_at"`
	UpdatedAt   time.Time  `bun:"updated_at,notnull"`
}

// ClientAttachment is a file sent with a client message, kept as sent.
type ClientAttachment struct {
	bun.BaseModel `bun:"table:client_attachments,alias:ca"`

	ID          int64  `bun:"id,pk,autoincrement"`
	MessageID   int64  `bun:"message_id,notnull"`
	Filename    string `bun:"filename,notnull"`
	ContentType string `bun:"content_type,notnull"`
	Content     []byte `bun:"content,notnull"`
}

// ClientCaps are the rolling limits on client e-mail: PerHour and PerDay
// on every kind but the portal links asked for on the sign-in page, which
// LinksPerHour and LinksPerDay bound on their own.
type ClientCaps struct {
	PerHour, PerDay           int
	LinksPerHour, LinksPerDay int
}

// insertClientMessage queues draft for customer c; nil when a message with
// its dedupe key exists already (it is never written twice).
func insertClientMessage(ctx context.Context, tx bun.Tx, c Customer, invoiceID *int64, draft ClientDraft, now time.Time) (*ClientMessage, error) {
	m := &ClientMessage{
		CustomerID: c.ID, InvoiceID: invoiceID, Kind: draft.Kind, DedupeKey: draft.DedupeKey,
		ToAddr: c.ContactEmail, Subject: draft.Subject, BodyText: draft.Text, BodyHTML: draft.HTML,
		Status: MessageQueued, CreatedAt: now, UpdatedAt: now,
	}
	res, err := tx.NewInsert().Model(m).On("CONFLICT (dedupe_key) DO NOTHING").Exec(ctx)
	if err != nil {
		return nil, err
	}
	if affected(res) == 0 {
		return nil, nil
	}
	for i := range draft.Attachments {
		a := draft.Attachments[i]
		a.ID, a.MessageID = 0, m.ID
		if _, err := tx.NewInsert().Model(&a).Exec(ctx); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// clientLeftSince counts the client messages that left, or may have left,
// after the time bound to arg (leftSince's twin, on client_messages' own
// partial indexes).
func clientLeftSince(arg string) string {
	return "(SELECT COUNT(*) FROM client_messages INDEXED BY client_messages_left WHERE status IN ('sent','dry_run') AND kind <> 'portal_link' AND sent_at > " + arg + ") + " +
		"(SELECT COUNT(*) FROM client_messages INDEXED BY client_messages_sending WHERE status = 'sending' AND kind <> 'portal_link' AND sending_at > " + arg + ")"
}

// linksLeftSince is clientLeftSince for the portal links asked for on the
// sign-in page, which have caps of their own.
func linksLeftSince(arg string) string {
	return "(SELECT COUNT(*) FROM client_messages INDEXED BY client_links_left WHERE status IN ('sent','dry_run') AND kind = 'portal_link' AND sent_at > " + arg + ") + " +
		"(SELECT COUNT(*) FROM client_messages INDEXED BY client_messages_sending WHERE status = 'sending' AND kind = 'portal_link' AND sending_at > " + arg + ")"
}

var (
	clientSendsSQL = "SELECT " + clientLeftSince("?0") + " AS hour, " + clientLeftSince("?1") + " AS day"
	linkSendsSQL   = "SELECT " + linksLeftSince("?0") + " AS hour, " + linksLeftSince("?1") + " AS day"
	// allSendsSQL is both, for the admin's figures: every client e-mail.
	allSendsSQL = "SELECT " + clientLeftSince("?0") + " + " + linksLeftSince("?0") + " AS hour, " +
		clientLeftSince("?1") + " + " + linksLeftSince("?1") + " AS day"
)

// ClientSends counts the client e-mail of every kind that left in the last
// hour and day.
func (d *DB) ClientSends(ctx context.Context) (hour, day int, err error) {
	now := d.Now()
	err = d.bun.NewRaw(d.pin(allSendsSQL), now.Add(-time.Hour), now.Add(-24*time.Hour)).Scan(ctx, &hour, &day)
	if err != nil {
		return 0, 0, fmt.Errorf("store: unable to count client e-mail: %w", err)
	}
	return hour, day, nil
}

// clientSendableSQL is client_messages_sendable's condition, term for term.
const clientSendableSQL = "(cm.status = 'queued' OR (cm.status = 'failed' AND cm.attempts < ?))"

// SendableClientMessages returns up to limit client messages to send,
// oldest first (a range of client_messages_sendable).
func (d *DB) SendableClientMessages(ctx context.Context, limit int) ([]ClientMessage, error) {
	var msgs []ClientMessage
	if limit <= 0 {
		return msgs, nil
	}
	err := sendableClientQuery(d.bun, &msgs, limit).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: unable to select client messages to send: %w", err)
	}
	return msgs, nil
}

func sendableClientQuery(idb bun.IDB, dst *[]ClientMessage, limit int) *bun.SelectQuery {
	return idb.NewSelect().Model(dst).ModelTableExpr(pinned(idb, "client_messages AS cm INDEXED BY client_messages_sendable")).
		Where(clientSendableSQL, MaxSendAttempts).OrderExpr("cm.created_at, cm.id").Limit(int64(limit))
}

// PendingClientOutbox counts the client messages still to send.
func (d *DB) PendingClientOutbox(ctx context.Context) (int, error) {
	var n int
	err := d.bun.NewRaw(d.pin("SELECT COUNT(*) FROM client_messages AS cm INDEXED BY client_messages_sendable WHERE "+clientSendableSQL), MaxSendAttempts).Scan(ctx, &n)
	if err != nil {
		return 0, fmt.Errorf("store: unable to count pending client messages: %w", err)
	}
	return n, nil
}

// PortalLinkGrant is the portal link a message carries: the hash of its
// token (the token is in the e-mail alone) and when it stops working.
type PortalLinkGrant struct {
	TokenHash string
	ExpiresAt time.Time
}

// flaggedAddress starts the error of a message not sent to a flagged
// address; clearing the flag queues those messages again.
const flaggedAddress = "the address is flagged"

// ClaimClientMessage decides, in one transaction, whether client message id
// may be sent now and if so marks it sending, and stores link (when not
// nil) as the portal link the message carries. A message to a flagged
// address, a reminder of an invoice that is no longer open, and any message
// of a closed customer is marked suppressed. The caps are read in the
// claim's transaction, as outreach's are.
//
// Across instances on PostgreSQL it is correct as ClaimMessage is: the
// client outbox's claims take turns (runClaim, on a key of their own, as
// their caps are), and the message row is locked. A portal link is
// inserted in the claim's transaction, so a claim run again stores it once.
func (d *DB) ClaimClientMessage(ctx context.Context, id int64, caps ClientCaps, link *PortalLinkGrant) (Claim, error) {
	var claim Claim
	err := d.runClaim(ctx, lockClientOutboxClaims, func(ctx context.Context, tx bun.Tx) error {
		// The transaction may run again (PostgreSQL retries a deadlock): a
		// claim decided by an attempt that was rolled back must not stand.
		claim = ClaimGone
		var m ClientMessage
		q := tx.NewSelect().Model(&m).Where("cm.id = ?", id)
		if d.Postgres() {
			// Its latest version, locked until the claim commits.
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
		var c Customer
		if err := tx.NewSelect().Model(&c).Where("c.id = ?", m.CustomerID).Scan(ctx); err != nil {
			return err
		}
		now := d.Now()
		why := ""
		switch {
		case c.MailFlag != "":
			why = flaggedAddress + " (" + c.MailFlag + ")"
		case c.Status == CustomerClosed:
			why = "the customer is closed"
		case m.Kind == ClientReminder || m.Kind == ClientInvoice:
			var inv struct {
				Status string `bun:"status"`
				Flag   string `bun:"flag"`
			}
			if err := tx.NewRaw("SELECT status, flag FROM invoices WHERE id = ?", m.InvoiceID).Scan(ctx, &inv); err != nil {
				return err
			}
			switch {
			case inv.Status != InvoiceOpen:
				why = "the invoice is " + inv.Status
			case m.Kind == ClientReminder && strings.Contains(inv.Flag, "Stripe session"):
				// Money came in for it and waits for the operator (an
				// amount or currency mismatch, a second payment): no
				// reminder to a client who paid.
				why = "a payment for the invoice waits for the operator"
			}
		}
		if why != "" {
			claim = ClaimSuppressed
			return setClientMessage(ctx, tx, id, now, "status = ?, error = ?", MessageSuppressed, "not sent: "+why)
		}
		query, perHour, perDay := clientSendsSQL, caps.PerHour, caps.PerDay
		if m.Kind == ClientPortalLink {
			query, perHour, perDay = linkSendsSQL, caps.LinksPerHour, caps.LinksPerDay
		}
		var hour, day int
		if err := tx.NewRaw(d.pin(query), now.Add(-time.Hour), now.Add(-24*time.Hour)).Scan(ctx, &hour, &day); err != nil {
			return err
		}
		if hour >= perHour || day >= perDay {
			claim = ClaimCapped
			return nil
		}
		if link != nil {
			if _, err := tx.NewRaw("INSERT INTO portal_links (token_hash, customer_id, message_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
				link.TokenHash, c.ID, id, now, link.ExpiresAt.UTC()).Exec(ctx); err != nil {
				return err
			}
		}
		claim = ClaimOK
		return setClientMessage(ctx, tx, id, now, "status = ?, sending_at = ?", MessageSending, now)
	})
	if err != nil {
		return "", fmt.Errorf("store: unable to claim client message %d: %w", id, err)
	}
	return claim, nil
}

func setClientMessage(ctx context.Context, idb bun.IDB, id int64, now time.Time, set string, args ...any) error {
	_, err := idb.NewUpdate().Model((*ClientMessage)(nil)).Set(set, args...).Set("updated_at = ?", now).
		Where("id = ?", id).Exec(ctx)
	return err
}

// MarkClientSent records that the provider accepted client message id
// (dryRun: that it was recorded without sending).
func (d *DB) MarkClientSent(ctx context.Context, id int64, providerID string, dryRun bool) error {
	status := MessageSent
	if dryRun {
		status = MessageDryRun
	}
	now := d.Now()
	res, err := d.bun.NewUpdate().Model((*ClientMessage)(nil)).
		Set("status = ?, provider_id = ?, error = '', attempts = attempts + 1, sent_at = ?, needs_review = FALSE, updated_at = ?", status, providerID, now, now).
		Where("id = ? AND status = ?", id, MessageSending).Exec(ctx)
	if err == nil && affected(res) != 1 {
		err = fmt.Errorf("message %d is not sending", id)
	}
	if err != nil {
		return fmt.Errorf("store: unable to mark client message %d sent: %w", id, err)
	}
	return nil
}

// MarkClientFailed records a provider error for client message id; it is
// tried again until MaxSendAttempts, then stays failed for the operator.
// A link the failed attempt carried is revoked: it never reached anyone.
func (d *DB) MarkClientFailed(ctx context.Context, id int64, reason string) error {
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		now := d.Now()
		res, err := tx.NewUpdate().Model((*ClientMessage)(nil)).
			Set("status = ?, error = ?, attempts = attempts + 1, needs_review = FALSE, updated_at = ?", MessageFailed, truncate(reason, 1000), now).
			Where("id = ? AND status = ?", id, MessageSending).Exec(ctx)
		if err != nil {
			return err
		}
		if affected(res) != 1 {
			return fmt.Errorf("message %d is not sending", id)
		}
		_, err = tx.NewRaw("UPDATE portal_links SET revoked_at = ? WHERE message_id = ? AND revoked_at IS NULL", now, id).Exec(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: unable to mark client message %d failed: %w", id, err)
	}
	return nil
}

// FlagClientForReview leaves client message id sending and flags it: the
// provider's answer was lost. It is never sent again automatically.
func (d *DB) FlagClientForReview(ctx context.Context, id int64, reason string) error {
	_, err := d.bun.NewUpdate().Model((*ClientMessage)(nil)).
		Set("needs_review = TRUE, error = ?, updated_at = ?", truncate(reason, 1000), d.Now()).
		Where("id = ? AND status = ?", id, MessageSending).Exec(ctx)
	if err != nil {
		return fmt.Errorf("store: unable to flag client message %d for review: %w", id, err)
	}
	return nil
}

// FlagStaleClientSending flags for review the client messages sending for
// longer than olderThan (their cycle died with the outcome unknown); it
// returns how many it flagged now.
func (d *DB) FlagStaleClientSending(ctx context.Context, olderThan time.Duration) (int, error) {
	now := d.Now()
	res, err := d.bun.NewUpdate().Model((*ClientMessage)(nil)).ModelTableExpr(d.pin("client_messages INDEXED BY client_messages_sending")).
		Set("needs_review = TRUE, updated_at = ?", now).
		Where("status = ? AND NOT needs_review AND sending_at <= ?", MessageSending, now.Add(-olderThan)).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: unable to flag stale client messages: %w", err)
	}
	return affected(res), nil
}

// ClientMessageByID reads one client message; unknown is ErrNotFound.
func (d *DB) ClientMessageByID(ctx context.Context, id int64) (*ClientMessage, error) {
	m := new(ClientMessage)
	if err := d.one(ctx, m, "cm.id = ?", id); err != nil {
		return nil, fmt.Errorf("store: unable to read client message %d: %w", id, err)
	}
	return m, nil
}

// ClientAttachments reads the files of client message id, in order.
func (d *DB) ClientAttachments(ctx context.Context, messageID int64) ([]ClientAttachment, error) {
	var out []ClientAttachment
	err := d.bun.NewSelect().Model(&out).Where("ca.message_id = ?", messageID).OrderExpr("ca.id").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: unable to read the attachments of client message %d: %w", messageID, err)
	}
	return out, nil
}

// ClientAttachment reads file id of client message messageID; ErrNotFound
// when the message has no such file.
func (d *DB) ClientAttachment(ctx context.Context, messageID, id int64) (*ClientAttachment, error) {
	a := new(ClientAttachment)
	if err := d.one(ctx, a, "ca.id = ? AND ca.message_id = ?", id, messageID); err != nil {
		return nil, fmt.Errorf("store: unable to read attachment %d: %w", id, err)
	}
	return a, nil
}

// ClientMessagesBefore returns up to limit client messages, newest first,
// older than the cursor (beforeID 0: the newest), optionally of one
// customer or one invoice: a keyset page of client_messages' own indexes.
func (d *DB) ClientMessagesBefore(ctx context.Context, beforeID int64, customerID, invoiceID int64, limit int) ([]ClientMessage, error) {
	var out []ClientMessage
	q := d.bun.NewSelect().Model(&out).ExcludeColumn("body_text", "body_html")
	switch {
	case invoiceID > 0:
		q = q.Where("cm.invoice_id = ?", invoiceID)
	case customerID > 0:
		q = q.Where("cm.customer_id = ?", customerID)
	}
	if beforeID > 0 {
		q = q.Where("cm.id < ?", beforeID)
	}
	if err := q.OrderExpr("cm.id DESC").Limit(int64(limit)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("store: unable to list client messages: %w", err)
	}
	return out, nil
}

// ClientAttachmentCounts counts the files of each of the client messages
// ids (a page of the admin's list) in one query over
// client_attachments_message, reading no file's content.
func (d *DB) ClientAttachmentCounts(ctx context.Context, ids []int64) (map[int64]int, error) {
	out := make(map[int64]int, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var rows []struct {
		MessageID int64 `bun:"message_id"`
		N         int   `bun:"n"`
	}
	err := d.bun.NewRaw("SELECT message_id, COUNT(*) AS n FROM client_attachments WHERE message_id IN (?) GROUP BY message_id", bun.List(ids)).Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("store: unable to count client attachments: %w", err)
	}
	for _, r := range rows {
		out[r.MessageID] = r.N
	}
	return out, nil
}
