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

// setAside is why an event is recorded without being applied.
type setAside struct{ outcome, detail string }

const invoiceCols = `SELECT id, COALESCE(number, '') AS number, status, currency, amount_cents, stripe_payment_link_id, flag
	FROM invoices `

// The webhook's lookups. Each repeats the "<> ”" of its partial index
// (invoices_payment_link, stripe_events_payment_intent): SQLite uses a
// partial index only when the query's WHERE implies the index's, and it does
// not infer "<> ”" from "= ?". Without it each lookup reads every invoice or
// every Stripe event ever received (db/queryplan_test.go checks the plans).
const (
	invoiceByLinkWhere          = "WHERE stripe_payment_link_id = ? AND stripe_payment_link_id <> '' ORDER BY id DESC LIMIT 1"
	invoiceByPaymentIntentWhere = `WHERE id = (SELECT invoice_id FROM stripe_events
		WHERE payment_intent_id = ? AND payment_intent_id <> '' AND invoice_id IS NOT NULL AND outcome IN (?) ORDER BY id DESC LIMIT 1)`
	earlyRefundsSQL = `SELECT COUNT(*) FROM stripe_events WHERE payment_intent_id = ? AND payment_intent_id <> '' AND outcome = ?`
)

// invoiceWhere reads the invoice the condition picks, or nil.
func invoiceWhere(ctx context.Context, tx bun.Tx, where string, args ...any) (*paymentInvoice, error) {
	var inv paymentInvoice
	err := tx.NewRaw(invoiceCols+where, args...).Scan(ctx, &inv)
	switch {
	case err == nil:
		return &inv, nil
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	}
	return nil, err
}

// paymentInvoiceFor finds the invoice an event provably belongs to, or says
// why it sets the event aside. Other event kinds need no invoice.
func paymentInvoiceFor(ctx context.Context, tx bun.Tx, e PaymentEvent, install string) (*paymentInvoice, setAside, error) {
	switch e.Kind {
	case PaymentSucceeded, PaymentPending, PaymentFailed:
		return sessionInvoice(ctx, tx, e, install)
	case PaymentRefunded:
		return refundInvoice(ctx, tx, e)
	}
	return nil, setAside{}, nil
}

// sessionInvoice ties a Checkout Session to an invoice: through the
// invoice's own payment link (a link id only this install stored), or
// through metadata naming this install and the invoice. Metadata alone
// without our install id proves nothing: every install writes invoice_id,
// and invoice ids start at 1 in every database.
func sessionInvoice(ctx context.Context, tx bun.Tx, e PaymentEvent, install string) (*paymentInvoice, setAside, error) {
	if e.PaymentLinkID != "" {
		inv, err := invoiceWhere(ctx, tx, invoiceByLinkWhere, e.PaymentLinkID)
		if err != nil || inv != nil {
			return inv, setAside{}, err
		}
	}
	via := "no payment link"
	if e.PaymentLinkID != "" {
		via = "payment link " + e.PaymentLinkID + ", no invoice's link here,"
	}
	switch {
	case e.Install == "":
		return nil, setAside{OutcomeNoInstallMetadata, fmt.Sprintf("session %s (%s) carries no hossagent_install metadata", e.SessionID, via)}, nil
	case install == "":
		return nil, setAside{OutcomeInstallUnverified, fmt.Sprintf("session %s (%s) names install %s; this install's id is not known while ENABLE_STRIPE is off, so only a session of an invoice's own link applies", e.SessionID, via, clip(e.Install, 80))}, nil
	case e.Install != install:
		return nil, setAside{OutcomeForeignInstall, fmt.Sprintf("session %s (%s) belongs to install %s, not this one (%s)", e.SessionID, via, clip(e.Install, 80), install)}, nil
	case e.InvoiceID <= 0:
		return nil, setAside{OutcomeUnknownInvoice, fmt.Sprintf("session %s names this install but no invoice_id", e.SessionID)}, nil
	}
	inv, err := invoiceWhere(ctx, tx, "WHERE id = ?", e.InvoiceID)
	switch {
	case err != nil:
		return nil, setAside{}, err
	case inv == nil:
		return nil, setAside{OutcomeUnknownInvoice, fmt.Sprintf("session %s names invoice %d, which this database does not hold", e.SessionID, e.InvoiceID)}, nil
	case inv.LinkID != "" && e.PaymentLinkID != "" && inv.LinkID != e.PaymentLinkID:
		// Paid through a link that is not the invoice's own: not a
		// payment of this invoice as it was issued.
		return nil, setAside{OutcomeLinkMismatch, fmt.Sprintf("session %s names invoice %s but was paid through payment link %s; the invoice's own link is %s",
			e.SessionID, inv.Number, e.PaymentLinkID, inv.LinkID)}, nil
	}
	return inv, setAside{}, nil
}

// refundInvoice ties a refunded charge to the invoice whose paying event
// recorded the charge's PaymentIntent. Metadata on a charge never selects an
// invoice: any install (or anyone with the account) can write it.
func refundInvoice(ctx context.Context, tx bun.Tx, e PaymentEvent) (*paymentInvoice, setAside, error) {
	if e.PaymentIntentID == "" {
		return nil, setAside{OutcomeUnknownPayment, fmt.Sprintf("refunded charge %s names no PaymentIntent", e.ChargeID)}, nil
	}
	inv, err := invoiceWhere(ctx, tx, invoiceByPaymentIntentWhere,
		e.PaymentIntentID, bun.List(paidOutcomes))
	switch {
	case err != nil || inv != nil:
		return inv, setAside{}, err
	case e.FullyRefunded:
		// Perhaps the payment's own event has not arrived yet: the
		// PaymentIntent recorded with this row finds it then.
		return nil, setAside{OutcomeRefundBeforePayment, fmt.Sprintf("refunded charge %s: kept until a payment of this install with PaymentIntent %s arrives",
			e.ChargeID, e.PaymentIntentID)}, nil
	}
	return nil, setAside{OutcomeUnknownPayment, fmt.Sprintf("refunded charge %s: no payment of this install recorded PaymentIntent %s", e.ChargeID, e.PaymentIntentID)}, nil
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
		return PaymentOutcome{}, fmt.Errorf("no invoice for a %q event", e.Kind)
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
		err := tx.NewRaw(earlyRefundsSQL,
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
		status, now, e.PayerEmail, e.PayerName, now, inv.ID)
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
