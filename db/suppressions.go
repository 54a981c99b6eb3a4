package db

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/uptrace/bun"
)

// What comes back from the outside after outreach: unsubscribe requests,
// replies and the mail provider's events. Each is one transaction, and each
// is idempotent: a prospect who clicks twice, or a provider that delivers an
// event twice, changes nothing the second time.

// Suppression reasons (the suppressions.reason column).
const (
	SuppressUnsubscribed = "unsubscribed"
	SuppressBounced      = "bounced"
	SuppressComplaint    = "complaint"
	SuppressManual       = "manual"
)

// SuppressAddress is the suppression kind of one e-mail address (the other
// kind, "domain", stops a whole domain).
const SuppressAddress = "address"

// unsubscribable are the lead statuses an unsubscribe or complaint moves
// to unsubscribed. A converted lead is a customer (its status is about the
// business, not the mail), and a bounced one already receives nothing.
var unsubscribable = []string{LeadNew, LeadContacted, LeadResponded, LeadFailed, LeadDead}

// bounceable are the lead statuses a hard bounce moves to bounced. A lead
// that responded, converted or unsubscribed keeps what it says.
var bounceable = []string{LeadNew, LeadContacted, LeadFailed}

// UnsubscribeTarget is the recipient of one outbox message, as the
// unsubscribe page shows it.
type UnsubscribeTarget struct {
	MessageID int64
	LeadID    int64
	Address   string
	// Suppressed: mail to the address is already stopped (by address or
	// by domain).
	Suppressed bool
}

// UnsubscribeTarget reads whom message id was written to, and whether that
// address is already suppressed. It changes nothing: the page a GET shows
// must be safe for a mail scanner to fetch. ErrNotFound for no such message.
func (d *DB) UnsubscribeTarget(ctx context.Context, messageID int64) (*UnsubscribeTarget, error) {
	var m Message
	if err := d.bun.NewSelect().Model(&m).Column("id", "lead_id", "to_addr").Where("m.id = ?", messageID).Scan(ctx); err != nil {
		return nil, fmt.Errorf("store: unable to read message %d: %w", messageID, notFound(err))
	}
	_, found, err := suppressionFor(ctx, d.bun, m.ToAddr, nil)
	if err != nil {
		return nil, fmt.Errorf("store: unable to check suppression of message %d: %w", messageID, err)
	}
	return &UnsubscribeTarget{MessageID: m.ID, LeadID: m.LeadID, Address: m.ToAddr, Suppressed: found}, nil
}

// MailChange says what an unsubscribe or a provider event changed.
type MailChange struct {
	Address string
	// LeadID is the lead of the address, 0 when no lead has it.
	LeadID int64
	// Suppressed: the suppression is new. LeadMoved: the lead's status
	// changed. Both false: it had all happened before.
	Suppressed, LeadMoved bool
}

// Changed reports whether anything changed.
func (c MailChange) Changed() bool { return c.Suppressed || c.LeadMoved }

// UnsubscribeMessage acts on an unsubscribe request for message id: it
// suppresses the message's address (reason unsubscribed, source as given)
// and marks its lead unsubscribed, in one transaction. Asking again changes
// nothing. ErrNotFound for no such message.
func (d *DB) UnsubscribeMessage(ctx context.Context, messageID int64, source string) (MailChange, error) {
	var c MailChange
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var m Message
		if err := tx.NewSelect().Model(&m).Column("id", "lead_id", "to_addr").Where("m.id = ?", messageID).Scan(ctx); err != nil {
			return notFound(err)
		}
		var err error
		c, err = d.suppressAndMove(ctx, tx, m.ToAddr, SuppressUnsubscribed, source, m.LeadID)
		return err
	})
	if err != nil {
		return MailChange{}, fmt.Errorf("store: unable to unsubscribe message %d: %w", messageID, err)
	}
	return c, nil
}

// ApplyMailEvent acts on a mail provider's event about addr: it suppresses
// the address with reason (SuppressBounced, SuppressComplaint or
// SuppressUnsubscribed) and moves the lead with that e-mail, if any, to
// bounced or unsubscribed, in one transaction. Sent messages stay sent: the
// outbox records what left, not what happened after. Applying an event twice
// changes nothing.
func (d *DB) ApplyMailEvent(ctx context.Context, addr, reason, source string) (MailChange, error) {
	addr = strings.ToLower(strings.TrimSpace(addr))
	var c MailChange
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		leadID, err := leadIDByEmail(ctx, tx, addr)
		if err != nil {
			return err
		}
		c, err = d.suppressAndMove(ctx, tx, addr, reason, source, leadID)
		return err
	})
	if err != nil {
		return MailChange{}, fmt.Errorf("store: unable to apply the mail event for %s: %w", addr, err)
	}
	return c, nil
}

// suppressAndMove adds the address suppression and moves lead leadID (0: no
// lead) to the status reason calls for.
func (d *DB) suppressAndMove(ctx context.Context, tx bun.Tx, addr, reason, source string, leadID int64) (MailChange, error) {
	c := MailChange{Address: strings.ToLower(strings.TrimSpace(addr)), LeadID: leadID}
	if c.Address == "" {
		return c, errors.New("no address to suppress")
	}
	now := d.Now()
	s := &Suppression{Kind: SuppressAddress, Value: c.Address, Reason: reason, Source: source, CreatedAt: now}
	res, err := tx.NewInsert().Model(s).On("CONFLICT (kind, value) DO NOTHING").Exec(ctx)
	if err != nil {
		return c, err
	}
	n, _ := res.RowsAffected()
	c.Suppressed = n > 0
	if leadID == 0 {
		return c, nil
	}
	status, from := LeadUnsubscribed, unsubscribable
	if reason == SuppressBounced {
		status, from = LeadBounced, bounceable
	}
	res, err = tx.NewUpdate().Model((*Lead)(nil)).
		Set("status = ?, updated_at = ?", status, now).
		Where("id = ? AND status IN (?)", leadID, bun.List(from)).Exec(ctx)
	if err != nil {
		return c, err
	}
	n, _ = res.RowsAffected()
	c.LeadMoved = n > 0
	return c, nil
}

// LeadIDByEmail is the id of the lead with e-mail addr (lower-cased by the
// caller), or 0: one search of the UNIQUE index on leads.email. The lead
// source asks it to name a duplicate.
func (d *DB) LeadIDByEmail(ctx context.Context, addr string) (int64, error) {
	id, err := leadIDByEmail(ctx, d.bun, addr)
	if err != nil {
		return 0, fmt.Errorf("store: unable to look up lead %s: %w", addr, err)
	}
	return id, nil
}

// leadIDByEmailQuery is leadIDByEmail's query.
func leadIDByEmailQuery(idb bun.IDB, addr string) *bun.SelectQuery {
	return idb.NewSelect().Model((*Lead)(nil)).Column("id").Where("email = ?", addr)
}

// leadIDByEmail is the id of the lead with e-mail addr (lower-cased), or 0.
func leadIDByEmail(ctx context.Context, idb bun.IDB, addr string) (int64, error) {
	var id int64
	err := leadIDByEmailQuery(idb, addr).Scan(ctx, &id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return id, err
}

// InboundReply is an e-mail that arrived at the inbound endpoint.
type InboundReply struct {
	FromAddr, Subject, Body string
	// MessageID is the message's Message-ID header ("" when it has none):
	// a second delivery of the same message is stored once.
	MessageID string
}

// InboundResult says what an inbound reply did.
type InboundResult struct {
	// LeadID is the lead the sender is, 0 when no lead has the address
	// (then nothing was stored).
	LeadID int64
	// Responded: the lead moved to responded with this reply.
	Responded bool
	// Duplicate: this message was stored before (the same Message-ID, or
	// without one the same sender, subject and text); nothing changed.
	Duplicate bool
}

// replyDedupeKey names the message a reply comes from: its Message-ID
// (without the angle brackets and spaces around it), or, when it has none,
// its sender, subject and text. Hashed, so the key is short whatever the
// header or the text holds.
func replyDedupeKey(addr string, in InboundReply) string {
	id := strings.Trim(strings.TrimSpace(in.MessageID), "<> \t")
	if id != "" {
		sum := sha256.Sum256([]byte(id))
		return "mid:" + hex.EncodeToString(sum[:])
	}
	h := sha256.New()
	for _, part := range []string{addr, in.Subject, in.Body} {
		// Each part's length first: no two different triples hash alike.
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(part))))
		h.Write([]byte(part))
	}
	return "sum:" + hex.EncodeToString(h.Sum(nil))
}

// RecordInboundReply stores a real (not simulated) reply from the lead whose
// e-mail is the sender's, and moves that lead from new or contacted to
// responded, in one transaction. A sender who is no lead is not stored: mail
// from strangers never creates leads. A message stored before (see
// replyDedupeKey) is not stored again and changes nothing: Duplicate.
func (d *DB) RecordInboundReply(ctx context.Context, in InboundReply) (InboundResult, error) {
	addr := strings.ToLower(strings.TrimSpace(in.FromAddr))
	key := replyDedupeKey(addr, in)
	var out InboundResult
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		id, err := leadIDByEmail(ctx, tx, addr)
		if err != nil || id == 0 {
			return err
		}
		out.LeadID = id
		now := d.Now()
		r := &Reply{LeadID: id, FromAddr: addr, Subject: in.Subject, Body: in.Body, ReceivedAt: now, DedupeKey: &key}
		res, err := tx.NewInsert().Model(r).On("CONFLICT (lead_id, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING").Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			out.Duplicate = true
			return nil
		}
		res, err = tx.NewUpdate().Model((*Lead)(nil)).
			Set("status = ?, responded_at = ?, updated_at = ?", LeadResponded, now, now).
			Where("id = ? AND status IN (?)", id, bun.List([]string{LeadNew, LeadContacted})).Exec(ctx)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		out.Responded = n > 0
		return nil
	})
	if err != nil {
		return InboundResult{}, fmt.Errorf("store: unable to record the reply from %s: %w", addr, err)
	}
	return out, nil
}
