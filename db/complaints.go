package db

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/uptrace/bun"
)

// Complaints: a recipient marked our e-mail as spam. They arrive two ways —
// a feedback-loop report (ARF, RFC 5965) in the replies mailbox or through
// Inbound Parse (agents.ParseInbound reads it, ApplyReply stores it), and
// SendGrid's spamreport event (ApplyMailEvent) — and both are applied by
// RecordComplaint, in the transaction of the report or event that brought
// them. RecordComplaint is the one place a complaint takes effect: anything
// else a complaint must do (the deliverability guard pausing outreach) is
// called from it, in the same transaction, so it happens exactly when the
// suppression does and is rolled back with it.

// ComplaintSourceMax bounds a complaint's source ("arf:abuse",
// "sendgrid:spamreport").
const ComplaintSourceMax = 100

// RecordComplaint applies a complaint about addr from source inside tx: the
// address is suppressed with reason SuppressComplaint, the lead with that
// e-mail (if any) moves to unsubscribed (a converted lead stays converted)
// and its sequence ends, its queued follow-ups withdrawn. Applying the same
// complaint again changes nothing (MailChange says so). The caller owns tx:
// everything is committed or rolled back together with the report or event
// that carried the complaint. The deliverability guard pauses outreach in
// the same tx (suppressAndMove), on the first complaint about the address.
func (d *DB) RecordComplaint(ctx context.Context, tx bun.Tx, addr, source string) (MailChange, error) {
	addr = strings.ToLower(strings.TrimSpace(addr))
	if addr == "" {
		return MailChange{}, errors.New("store: a complaint names no address")
	}
	leadID, err := leadIDByEmail(ctx, tx, addr)
	if err != nil {
		return MailChange{}, fmt.Errorf("store: unable to look up the lead of %s: %w", addr, err)
	}
	c, err := d.suppressAndMove(ctx, tx, addr, SuppressComplaint, truncate(source, ComplaintSourceMax), leadID)
	if err != nil {
		return c, fmt.Errorf("store: unable to record the complaint about %s: %w", addr, err)
	}
	if leadID != 0 {
		if err := stopSequence(ctx, tx, leadID, "spam complaint", d.Now()); err != nil {
			return c, fmt.Errorf("store: unable to end the sequence of lead %d: %w", leadID, err)
		}
	}
	return c, nil
}
