package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/uptrace/bun"
)

// What comes back from the outside after outreach: unsubscribe requests,
// replies (replies.go) and the mail provider's events. Each is one
// transaction, and each is idempotent: a prospect who clicks twice, or a
// provider that delivers an event twice, changes nothing the second time.

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
	// Suppressed: the suppression is new (or became a complaint). LeadMoved: the lead's status
	// changed. Both false: it had all happened before.
	Suppressed, LeadMoved bool
	// Paused: this event paused outreach (a complaint, or the bounce that
	// took the bounce rate over its threshold; see Guard).
	Paused bool
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
// outbox records what left, not what happened after. A complaint is applied
// by RecordComplaint (which also ends the lead's sequence). Applying an event
// twice changes nothing.
func (d *DB) ApplyMailEvent(ctx context.Context, addr, reason, source string) (MailChange, error) {
	addr = strings.ToLower(strings.TrimSpace(addr))
	var c MailChange
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if reason == SuppressComplaint {
			// Every complaint takes effect in one place (complaints.go).
			var err error
			c, err = d.RecordComplaint(ctx, tx, addr, source)
			return err
		}
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
// lead) to the status reason calls for. A new complaint suppression pauses
// outreach, and so does a new bounce that takes the bounce rate over the
// guard's threshold, in the same transaction.
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
	if !c.Suppressed && reason == SuppressComplaint {
		// A complaint about an address suppressed for another reason (it
		// unsubscribed, then marked a delivered message as spam) is still
		// a complaint: the suppression becomes one, and the guard hears
		// of it. A second report of the same complaint changes nothing.
		res, err := tx.NewUpdate().Model((*Suppression)(nil)).
			Set("reason = ?, source = ?", SuppressComplaint, source).
			Where("kind = ? AND value = ? AND reason <> ?", SuppressAddress, c.Address, SuppressComplaint).Exec(ctx)
		if err != nil {
			return c, err
		}
		n, _ := res.RowsAffected()
		c.Suppressed = n > 0
	}
	if c.Suppressed {
		if c.Paused, err = d.guardSuppression(ctx, tx, c.Address, reason, source, now); err != nil {
			return c, err
		}
	}
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
	if c.LeadMoved {
		// A draft waiting for review can no longer be approved.
		return c, withdrawDrafts(ctx, tx, leadID, "the lead is "+status, now)
	}
	return c, nil
}

// suppressionForSQL finds the oldest suppression of an address (?0) or of
// any of a list of domains (?1). Each half is a search of the UNIQUE (kind,
// value) index and the few rows found are sorted; one OR over both halves,
// ordered by id with LIMIT 1, lets the planner walk the whole table in id
// order instead.
const suppressionForSQL = `SELECT reason FROM (
		SELECT id, reason FROM suppressions WHERE kind = 'address' AND value = ?0
		UNION ALL
		SELECT id, reason FROM suppressions WHERE kind = 'domain' AND value IN (?1)) AS found
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
