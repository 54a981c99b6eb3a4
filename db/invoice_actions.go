package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// Invoice actions an admin takes by hand (SPEC §5.3): mark an open invoice
// paid (money that arrived outside Stripe), void it (the work is written
// off), and give one invoice the payment link billing could not create.
// Only an open invoice can be closed: a paid or refunded one never moves
// back (invariant 7, also enforced by a trigger), and a void one stays void.
// Closing an invoice never touches its lines, so its tasks stay billed
// exactly once and no later billing cycle picks them up again.

// Audit actions of the invoice controls; the target is "invoice <number>".
const (
	AuditInvoiceMarkedPaid   = "invoice marked paid by hand"
	AuditInvoiceVoided       = "invoice voided"
	AuditInvoiceLinkCreated  = "invoice payment link created"
	AuditPaymentLinksCreated = "missing payment links created"
)

// Why an invoice action was refused; an *InvoiceStateError wraps one.
var (
	ErrInvoiceNotOpen = errors.New("the invoice is not open")
	ErrInvoiceHasLink = errors.New("the invoice already has a payment link")
	ErrInvoiceFlagged = errors.New("the invoice is flagged")
)

// InvoiceStateError is an action refused because of the state the invoice
// is in. errors.Is matches its Reason.
type InvoiceStateError struct {
	InvoiceID int64
	Number    string
	Status    string
	Flag      string
	Reason    error // ErrInvoiceNotOpen, ErrInvoiceHasLink or ErrInvoiceFlagged
}

func (e *InvoiceStateError) Error() string {
	return fmt.Sprintf("invoice %d (%s, %s): %v", e.InvoiceID, e.Number, e.Status, e.Reason)
}

// Unwrap lets errors.Is see the reason.
func (e *InvoiceStateError) Unwrap() error { return e.Reason }

// ClosedInvoice is an invoice an admin just marked paid or voided.
type ClosedInvoice struct {
	InvoiceID int64
	Number    string
	Amount    Money
	// PaymentLinkID is the invoice's Stripe payment link, "" when it had
	// none: the caller deactivates it, outside the transaction, so nobody
	// pays a closed invoice.
	PaymentLinkID string
}

// MarkInvoicePaidByHand marks open invoice id paid at now, for money that
// reached the business outside Stripe. The payer is recorded as "marked paid
// by <admin>" and the admin's reason is appended to the invoice's flag text,
// so the record itself says why it is paid without a Stripe event.
func (d *DB) MarkInvoicePaidByHand(ctx context.Context, id int64, admin, reason string, now time.Time) (ClosedInvoice, error) {
	now = now.UTC()
	out, err := d.closeInvoice(ctx, id, func(ctx context.Context, tx bun.Tx, inv *paymentInvoice) (sql.Result, error) {
		return tx.ExecContext(ctx, `UPDATE invoices SET status = ?, paid_at = ?, payer_name = ?, flag = ?, updated_at = ?
			WHERE id = ? AND status = 'open'`,
			InvoicePaid, now, clip("marked paid by "+admin, 200), appendFlag(inv.Flag, "marked paid by hand by "+admin+": "+reason), now, id)
	})
	if err != nil {
		return out, fmt.Errorf("store: unable to mark invoice %d paid: %w", id, err)
	}
	return out, nil
}

// VoidInvoice voids open invoice id: nobody owes it any more. Its lines
// stay, so its tasks are never billed again — the work is written off. The
// admin's reason is appended to the invoice's flag text.
func (d *DB) VoidInvoice(ctx context.Context, id int64, admin, reason string, now time.Time) (ClosedInvoice, error) {
	now = now.UTC()
	out, err := d.closeInvoice(ctx, id, func(ctx context.Context, tx bun.Tx, inv *paymentInvoice) (sql.Result, error) {
		return tx.ExecContext(ctx, `UPDATE invoices SET status = ?, flag = ?, updated_at = ? WHERE id = ? AND status = 'open'`,
			InvoiceVoid, appendFlag(inv.Flag, "voided by "+admin+": "+reason), now, id)
	})
	if err != nil {
		return out, fmt.Errorf("store: unable to void invoice %d: %w", id, err)
	}
	return out, nil
}

// closeInvoice reads invoice id and applies update to it in one
// transaction, only while it is open.
func (d *DB) closeInvoice(ctx context.Context, id int64, update func(context.Context, bun.Tx, *paymentInvoice) (sql.Result, error)) (ClosedInvoice, error) {
	var out ClosedInvoice
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		inv, err := actionInvoice(ctx, tx, id)
		if err != nil {
			return err
		}
		out = ClosedInvoice{InvoiceID: inv.ID, Number: inv.Number, Amount: inv.amount(), PaymentLinkID: inv.LinkID}
		if inv.Status != InvoiceOpen {
			return &InvoiceStateError{InvoiceID: inv.ID, Number: inv.Number, Status: inv.Status, Flag: inv.Flag, Reason: ErrInvoiceNotOpen}
		}
		res, err := update(ctx, tx, inv)
		if err != nil {
			return err
		}
		if affected(res) != 1 {
			return fmt.Errorf("invoice %d changed while it was being closed", id)
		}
		return nil
	})
	return out, err
}

// actionInvoice reads the invoice an action is about.
func actionInvoice(ctx context.Context, db bun.IDB, id int64) (*paymentInvoice, error) {
	var inv paymentInvoice
	err := db.NewRaw(`SELECT id, COALESCE(number, '') AS number, status, currency, amount_cents, stripe_payment_link_id, flag
		FROM invoices WHERE id = ?`, id).Scan(ctx, &inv)
	if err != nil {
		return nil, notFound(err)
	}
	return &inv, nil
}

// appendFlag adds note to an invoice's flag text, keeping what it says.
func appendFlag(flag, note string) string {
	if flag != "" {
		note = flag + "; " + note
	}
	return clip(note, 2000)
}

// PaymentLinkCandidateFor reads invoice id as billing would ask for its
// payment link: only an open, unflagged invoice without a link is one. A
// flag means an operator must look first (over the Stripe maximum, money
// that did not match), so no link is made for it by hand either.
func (d *DB) PaymentLinkCandidateFor(ctx context.Context, id int64) (PaymentLinkCandidate, error) {
	var row struct {
		PaymentLinkCandidate
		Status     string `bun:"status"`
		Flag       string `bun:"flag"`
		PaymentURL string `bun:"payment_url"`
	}
	err := d.bun.NewRaw(`SELECT i.id, COALESCE(i.number, '') AS number, i.amount_cents, i.currency, c.contact_email,
			i.status, i.flag, i.payment_url
		FROM invoices AS i JOIN customers AS c ON c.id = i.customer_id WHERE i.id = ?`, id).Scan(ctx, &row)
	if err != nil {
		return PaymentLinkCandidate{}, fmt.Errorf("store: unable to read invoice %d for a payment link: %w", id, notFound(err))
	}
	refuse := func(reason error) error {
		return fmt.Errorf("store: no payment link for invoice %d: %w", id, &InvoiceStateError{
			InvoiceID: id, Number: row.Number, Status: row.Status, Flag: row.Flag, Reason: reason,
		})
	}
	switch {
	case row.Status != InvoiceOpen:
		return row.PaymentLinkCandidate, refuse(ErrInvoiceNotOpen)
	case row.PaymentURL != "":
		return row.PaymentLinkCandidate, refuse(ErrInvoiceHasLink)
	case row.Flag != "":
		return row.PaymentLinkCandidate, refuse(ErrInvoiceFlagged)
	}
	return row.PaymentLinkCandidate, nil
}

// Invoice reads invoice id alone.
func (d *DB) Invoice(ctx context.Context, id int64) (*Invoice, error) {
	inv := new(Invoice)
	if err := d.one(ctx, inv, "i.id = ?", id); err != nil {
		return nil, fmt.Errorf("store: unable to read invoice %d: %w", id, err)
	}
	return inv, nil
}
