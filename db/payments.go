package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/uptrace/bun"
)

// Payment event kinds: what a Stripe event means for an invoice, whatever
// its Stripe type. The webhook and reconcile translate Stripe's objects into
// a PaymentEvent; the store alone decides what it does to the invoice.
const (
	PaymentSucceeded = "succeeded" // a Checkout Session was paid
	PaymentPending   = "pending"   // a session completed, its (async) payment has not cleared yet
	PaymentFailed    = "failed"    // an async payment failed
	PaymentRefunded  = "refunded"  // a charge was refunded, in full or in part
	PaymentOther     = "other"     // a type HossAgent does not act on
)

// Outcomes recorded on stripe_events: what applying the event did.
const (
	OutcomePaid                = "paid"
	OutcomePaidRefundedEarlier = "paid_refunded_earlier" // paid, and a refund that arrived first applied at once
	OutcomeAwaitingPayment     = "awaiting_payment"
	OutcomePaymentFailed       = "payment_failed"
	OutcomeAmountMismatch      = "amount_mismatch"
	OutcomeCurrencyMismatch    = "currency_mismatch"
	OutcomeAlreadyPaid         = "already_paid" // a late or repeated report of the payment already applied
	OutcomePaidTwice           = "paid_twice"   // another session paid an invoice already paid
	OutcomeNotOpen             = "not_open"     // the invoice is draft or void
	OutcomeRefunded            = "refunded"
	OutcomePartialRefund       = "partial_refund"
	OutcomeAlreadyRefunded     = "already_refunded"
	OutcomeRefundBeforePayment = "refund_before_payment" // kept until the payment it undoes arrives
	OutcomeUnknownInvoice      = "unknown_invoice"
	OutcomeIgnored             = "ignored" // an event type HossAgent does not act on
)

// PaymentEvent is one Stripe event as the store understands it.
type PaymentEvent struct {
	EventID string // Stripe's event id, or "reconcile:<session id>" for a payment reconcile found
	Type    string // Stripe's event type, recorded as is
	Kind    string // PaymentSucceeded, PaymentPending, …

	// How the invoice is found, in this order: metadata.invoice_id, the
	// payment link, the PaymentIntent.
	InvoiceID       int64
	PaymentLinkID   string
	PaymentIntentID string
	SessionID       string

	AmountCents int64  // the session's amount_total (payments)
	Currency    string // the session's or charge's currency
	PayerEmail  string
	PayerName   string

	FullyRefunded bool  // the charge is refunded in full (refunds)
	RefundedCents int64 // how much of the charge is refunded so far (refunds)
}

// PaymentOutcome is what applying a PaymentEvent did.
type PaymentOutcome struct {
	// Duplicate: the event id was applied before; nothing changed now.
	Duplicate bool
	Outcome   string
	InvoiceID int64  // 0 when no invoice matched
	Number    string // the invoice's number, when one matched
	// Changed: the invoice's status or flag changed, so live views should
	// re-render.
	Changed bool
	// Paid: this event marked the invoice paid; its payment link should be
	// deactivated (PaymentLinkID).
	Paid          bool
	PaymentLinkID string
}

// paymentInvoice is the part of an invoice the payment rules read.
type paymentInvoice struct {
	ID          int64  `bun:"id"`
	Number      string `bun:"number"`
	Status      string `bun:"status"`
	Currency    string `bun:"currency"`
	AmountCents int64  `bun:"amount_cents"`
	LinkID      string `bun:"stripe_payment_link_id"`
	Flag        string `bun:"flag"`
}

func (i *paymentInvoice) amount() Money { return Money{Cents: i.AmountCents, Currency: i.Currency} }

// paidOutcomes are the outcomes of the event that paid an invoice; its row
// names the paying session and PaymentIntent.
var paidOutcomes = []string{OutcomePaid, OutcomePaidRefundedEarlier}

// ApplyPaymentEvent applies one Stripe event exactly once. The event id is
// recorded in stripe_events in the same transaction as its effect on the
// invoice, so a crash leaves either both or neither, and a repeated delivery
// of the same event id changes nothing. The rules:
//   - a payment marks an open invoice paid (with the payer and the session)
//     only when currency and amount match; otherwise the invoice stays open
//     and is flagged for the admin;
//   - a paid or refunded invoice never goes back: late, repeated or
//     out-of-order events are recorded and change nothing (a second session
//     paying the same invoice is flagged);
//   - a failed async payment leaves the invoice open, flagged;
//   - a full refund turns a paid invoice refunded; a partial one flags it; a
//     refund that arrives before its payment is kept, and applied when the
//     payment lands.
func (d *DB) ApplyPaymentEvent(ctx context.Context, e PaymentEvent, now time.Time) (PaymentOutcome, error) {
	if e.EventID == "" {
		return PaymentOutcome{}, errors.New("store: unable to apply a Stripe event without an id")
	}
	now = now.UTC()
	e.Currency = strings.ToLower(e.Currency)
	var out PaymentOutcome
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		out = PaymentOutcome{}
		var ids []int64
		err := tx.NewRaw(`INSERT INTO stripe_events (event_id, type, session_id, payment_intent_id, outcome, received_at)
			VALUES (?, ?, ?, ?, '', ?) ON CONFLICT (event_id) DO NOTHING RETURNING id`,
			e.EventID, clip(e.Type, 100), clip(e.SessionID, 255), clip(e.PaymentIntentID, 255), now).Scan(ctx, &ids)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if len(ids) == 0 {
			out.Duplicate = true
			return nil
		}
		inv, err := paymentInvoiceFor(ctx, tx, e)
		if err != nil {
			return err
		}
		if out, err = applyPayment(ctx, tx, e, inv, now); err != nil {
			return err
		}
		var invoiceID *int64
		if inv != nil {
			invoiceID = &inv.ID
		}
		_, err = tx.ExecContext(ctx, "UPDATE stripe_events SET outcome = ?, invoice_id = ? WHERE id = ?", out.Outcome, invoiceID, ids[0])
		return err
	})
	if err != nil {
		return PaymentOutcome{}, fmt.Errorf("store: unable to apply Stripe event %s: %w", e.EventID, err)
	}
	return out, nil
}

// paymentInvoiceFor finds the invoice an event is about, or nil: by
// metadata.invoice_id, else by payment link, else by the PaymentIntent that
// paid it.
func paymentInvoiceFor(ctx context.Context, tx bun.Tx, e PaymentEvent) (*paymentInvoice, error) {
	const cols = `SELECT id, COALESCE(number, '') AS number, status, currency, amount_cents, stripe_payment_link_id, flag
		FROM invoices `
	lookups := []struct {
		ok    bool
		where string
		args  []any
	}{
		{e.InvoiceID > 0, "WHERE id = ?", []any{e.InvoiceID}},
		{e.PaymentLinkID != "", "WHERE stripe_payment_link_id = ? ORDER BY id DESC LIMIT 1", []any{e.PaymentLinkID}},
		{e.PaymentIntentID != "", `WHERE id = (SELECT invoice_id FROM stripe_events
			WHERE payment_intent_id = ? AND invoice_id IS NOT NULL AND outcome IN (?) ORDER BY id DESC LIMIT 1)`,
			[]any{e.PaymentIntentID, bun.List(paidOutcomes)}},
	}
	for _, l := range lookups {
		if !l.ok {
			continue
		}
		var inv paymentInvoice
		err := tx.NewRaw(cols+l.where, l.args...).Scan(ctx, &inv)
		switch {
		case err == nil && inv.LinkID != "" && e.PaymentLinkID != "" && inv.LinkID != e.PaymentLinkID:
			// metadata.invoice_id names an invoice whose own link is not the
			// one that was paid: the session belongs to another install (or
			// another invoice), never to this one.
			continue
		case err == nil:
			return &inv, nil
		case !errors.Is(err, sql.ErrNoRows):
			return nil, err
		}
	}
	return nil, nil
}

// payingSession is the Checkout Session that paid the invoice, or "" when it
// was not paid through Stripe.
func payingSession(ctx context.Context, tx bun.Tx, invoiceID int64) (string, error) {
	var ids []string
	err := tx.NewRaw(`SELECT session_id FROM stripe_events WHERE invoice_id = ? AND outcome IN (?) ORDER BY id LIMIT 1`,
		invoiceID, bun.List(paidOutcomes)).Scan(ctx, &ids)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	if len(ids) == 0 {
		return "", nil
	}
	return ids[0], nil
}

func applyPayment(ctx context.Context, tx bun.Tx, e PaymentEvent, inv *paymentInvoice, now time.Time) (PaymentOutcome, error) {
	if e.Kind == PaymentOther {
		return PaymentOutcome{Outcome: OutcomeIgnored}, nil
	}
	if inv == nil {
		if e.Kind == PaymentRefunded && e.FullyRefunded && e.PaymentIntentID != "" {
			// Perhaps the payment's own event has not arrived yet: the
			// PaymentIntent recorded with this row finds it then.
			return PaymentOutcome{Outcome: OutcomeRefundBeforePayment}, nil
		}
		return PaymentOutcome{Outcome: OutcomeUnknownInvoice}, nil
	}
	out := PaymentOutcome{InvoiceID: inv.ID, Number: inv.Number}
	var err error
	switch e.Kind {
	case PaymentSucceeded:
		err = applySucceeded(ctx, tx, e, inv, now, &out)
	case PaymentPending:
		out.Outcome = OutcomeAwaitingPayment
		if inv.Status != InvoiceOpen {
			out.Outcome = settledOutcome(inv)
		}
	case PaymentFailed:
		err = applyFailed(ctx, tx, e, inv, now, &out)
	case PaymentRefunded:
		err = applyRefund(ctx, tx, e, inv, now, &out)
	default:
		return out, fmt.Errorf("unknown payment event kind %q", e.Kind)
	}
	return out, err
}

// settledOutcome is what a late payment report on a settled invoice is.
func settledOutcome(inv *paymentInvoice) string {
	switch inv.Status {
	case InvoicePaid, InvoiceRefunded:
		return OutcomeAlreadyPaid
	default:
		return OutcomeNotOpen
	}
}

func applySucceeded(ctx context.Context, tx bun.Tx, e PaymentEvent, inv *paymentInvoice, now time.Time, out *PaymentOutcome) error {
	paid := Money{Cents: e.AmountCents, Currency: e.Currency}
	switch {
	case inv.Status == InvoicePaid || inv.Status == InvoiceRefunded:
		out.Outcome = OutcomeAlreadyPaid
		// The same session reported again (by a late event or by
		// reconcile) is no news; another one, or one paying an invoice
		// marked paid by hand, is money received twice.
		session, err := payingSession(ctx, tx, inv.ID)
		if err != nil || e.SessionID == "" || e.SessionID == session {
			return err
		}
		out.Outcome = OutcomePaidTwice
		return flagInvoice(ctx, tx, inv, fmt.Sprintf("paid twice: Stripe session %s also paid %s; refund one payment", e.SessionID, paid), now, out)
	case inv.Status != InvoiceOpen:
		out.Outcome = OutcomeNotOpen
		return flagInvoice(ctx, tx, inv, fmt.Sprintf("payment of %s received on a %s invoice (Stripe session %s)", paid, inv.Status, e.SessionID), now, out)
	case e.Currency != inv.Currency:
		out.Outcome = OutcomeCurrencyMismatch
		return flagInvoice(ctx, tx, inv, fmt.Sprintf("payment currency mismatch: Stripe session %s paid %s, the invoice is %s", e.SessionID, paid, inv.amount()), now, out)
	case e.AmountCents != inv.AmountCents:
		out.Outcome = OutcomeAmountMismatch
		return flagInvoice(ctx, tx, inv, fmt.Sprintf("payment amount mismatch: Stripe session %s paid %s, the invoice is %s", e.SessionID, paid, inv.amount()), now, out)
	}
	status := InvoicePaid
	out.Outcome = OutcomePaid
	if e.PaymentIntentID != "" {
		var early int
		err := tx.NewRaw(`SELECT COUNT(*) FROM stripe_events WHERE payment_intent_id = ? AND outcome = ?`,
			e.PaymentIntentID, OutcomeRefundBeforePayment).Scan(ctx, &early)
		if err != nil {
			return err
		}
		if early > 0 {
			status, out.Outcome = InvoiceRefunded, OutcomePaidRefundedEarlier
		}
	}
	res, err := tx.ExecContext(ctx, `UPDATE invoices SET status = ?, paid_at = ?, payer_email = ?, payer_name = ?, updated_at = ?
		WHERE id = ? AND status = 'open'`,
		status, now, clip(e.PayerEmail, 320), clip(e.PayerName, 200), now, inv.ID)
	if err != nil {
		return err
	}
	if affected(res) != 1 {
		return fmt.Errorf("invoice %d changed while it was being paid", inv.ID)
	}
	out.Changed, out.Paid, out.PaymentLinkID = true, true, inv.LinkID
	return nil
}

func applyFailed(ctx context.Context, tx bun.Tx, e PaymentEvent, inv *paymentInvoice, now time.Time, out *PaymentOutcome) error {
	if inv.Status != InvoiceOpen {
		// A failure reported after the payment landed (or on a void
		// invoice) changes nothing.
		out.Outcome = settledOutcome(inv)
		return nil
	}
	out.Outcome = OutcomePaymentFailed
	return flagInvoice(ctx, tx, inv, fmt.Sprintf("payment failed (Stripe session %s): the link may need regenerating", e.SessionID), now, out)
}

func applyRefund(ctx context.Context, tx bun.Tx, e PaymentEvent, inv *paymentInvoice, now time.Time, out *PaymentOutcome) error {
	refunded := Money{Cents: e.RefundedCents, Currency: e.Currency}
	switch {
	case inv.Status == InvoiceRefunded:
		out.Outcome = OutcomeAlreadyRefunded
		return nil
	case inv.Status == InvoiceOpen && e.FullyRefunded && e.PaymentIntentID != "":
		out.Outcome = OutcomeRefundBeforePayment
		return nil
	case inv.Status != InvoicePaid:
		out.Outcome = OutcomeNotOpen
		return flagInvoice(ctx, tx, inv, fmt.Sprintf("refund of %s reported on a %s invoice", refunded, inv.Status), now, out)
	case !e.FullyRefunded:
		out.Outcome = OutcomePartialRefund
		return flagInvoice(ctx, tx, inv, fmt.Sprintf("partially refunded: %s of %s", refunded, inv.amount()), now, out)
	}
	_, err := tx.ExecContext(ctx, "UPDATE invoices SET status = ?, updated_at = ? WHERE id = ? AND status = 'paid'",
		InvoiceRefunded, now, inv.ID)
	if err != nil {
		return err
	}
	out.Outcome, out.Changed = OutcomeRefunded, true
	return nil
}

// flagInvoice adds a reason for the admin to look at the invoice, keeping
// any reason it already has.
func flagInvoice(ctx context.Context, tx bun.Tx, inv *paymentInvoice, reason string, now time.Time, out *PaymentOutcome) error {
	flag := reason
	switch {
	case strings.Contains(inv.Flag, reason):
		return nil
	case inv.Flag != "":
		flag = inv.Flag + "; " + reason
	}
	if _, err := tx.ExecContext(ctx, "UPDATE invoices SET flag = ?, updated_at = ? WHERE id = ?", clip(flag, 2000), now, inv.ID); err != nil {
		return err
	}
	out.Changed = true
	return nil
}

// clip shortens s to at most n bytes without splitting a character.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// LinkedInvoice is an open invoice with a payment link, as reconcile asks
// Stripe about it.
type LinkedInvoice struct {
	InvoiceID     int64  `bun:"id"`
	Number        string `bun:"number"`
	PaymentLinkID string `bun:"stripe_payment_link_id"`
	AmountCents   int64  `bun:"amount_cents"`
	Currency      string `bun:"currency"`
}

// OpenInvoicesWithPaymentLink returns up to limit open invoices with a
// payment link and an id above afterID, by id. Callers page through all of
// them by passing the last id they got.
func (d *DB) OpenInvoicesWithPaymentLink(ctx context.Context, afterID int64, limit int) ([]LinkedInvoice, error) {
	var out []LinkedInvoice
	err := d.bun.NewRaw(`SELECT id, COALESCE(number, '') AS number, stripe_payment_link_id, amount_cents, currency
		FROM invoices WHERE status = 'open' AND stripe_payment_link_id <> '' AND id > ?
		ORDER BY id LIMIT ?`, afterID, limit).Scan(ctx, &out)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: unable to list open invoices with a payment link: %w", err)
	}
	return out, nil
}
