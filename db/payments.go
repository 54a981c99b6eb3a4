package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

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
	OutcomeIgnored             = "ignored"               // an event type HossAgent does not act on

	// Set aside: the event was recorded (so a redelivery changes nothing)
	// but not applied, because nothing proves it is this install's. The
	// row's detail says why; the Stripe health panel shows them.
	OutcomeForeignInstall    = "foreign_install"     // a session whose metadata names another install
	OutcomeNoInstallMetadata = "no_install_metadata" // a session that names no install and was not paid through one of our links
	OutcomeInstallUnverified = "install_unverified"  // a session naming an install, where this install's id is unknown (ENABLE_STRIPE off)
	OutcomeLinkMismatch      = "link_mismatch"       // a session of ours for an invoice whose own link is another one
	OutcomeUnknownInvoice    = "unknown_invoice"     // a session of ours naming no invoice of this database
	OutcomeUnknownPayment    = "unknown_payment"     // a refund of a PaymentIntent none of our payments recorded
	// Unprocessable: applying the event failed in a way retrying cannot
	// mend (the same event fails the same way every time). It is answered
	// 2xx, so Stripe stops retrying; the operator sees it in the health
	// panel, and a delivery of the same event id after the cause is fixed
	// (Stripe's "Resend") applies it then.
	OutcomeUnprocessable = "unprocessable"
)

// setAsideOutcomes are the outcomes of events recorded without being
// applied, in the order of the partial index stripe_events_set_aside
// (migration 0006), whose WHERE clause the queries must spell the same way.
var setAsideOutcomes = []string{OutcomeForeignInstall, OutcomeNoInstallMetadata, OutcomeInstallUnverified, OutcomeLinkMismatch,
	OutcomeUnknownInvoice, OutcomeUnknownPayment, OutcomeUnprocessable}

// PaymentEvent is one Stripe event as the store understands it.
type PaymentEvent struct {
	EventID string // Stripe's event id, or "reconcile:<session id>" for a payment reconcile found
	Type    string // Stripe's event type, recorded as is
	Kind    string // PaymentSucceeded, PaymentPending, …

	// What ties a session to an invoice: the payment link it was paid
	// through when that is the invoice's own link, else metadata naming
	// this install (hossagent_install) and the invoice (invoice_id). A
	// refund is tied only by its PaymentIntent, to the invoice whose paying
	// event recorded it.
	InvoiceID       int64
	Install         string // metadata.hossagent_install
	PaymentLinkID   string
	PaymentIntentID string
	SessionID       string
	ChargeID        string // the refunded charge (refunds)

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
	// Detail says why an event was set aside (another install's id, the
	// error that made it unprocessable); "" when it was applied.
	Detail    string
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

// SetAside reports whether the event was recorded without being applied
// because nothing tied it to this install, or because it was unprocessable.
func (o PaymentOutcome) SetAside() bool { return slices.Contains(setAsideOutcomes, o.Outcome) }

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

// ApplyPaymentEvent applies one Stripe event exactly once, for the install
// whose id is install ("hoss-…", the metadata.hossagent_install of the links
// it creates; "" when unknown, and then only a session paid through an
// invoice's own link applies). The event id is recorded in stripe_events in
// the same transaction as its effect on the invoice, so a crash leaves either
// both or neither, and a repeated delivery of the same event id changes
// nothing. The rules:
//   - a session applies to an invoice only when it was paid through the
//     invoice's own payment link, or when its metadata names this install
//     and the invoice; any other is recorded as set aside, with the reason
//     (another install's, none named, …): Stripe signs every event of an
//     account, and several installs may share one;
//   - a payment marks an open invoice paid (with the payer and the session)
//     only when currency and amount match; otherwise the invoice stays open
//     and is flagged for the admin;
//   - a paid or refunded invoice never goes back: late, repeated or
//     out-of-order events are recorded and change nothing (a second session
//     paying the same invoice is flagged);
//   - a failed async payment leaves the invoice open, flagged;
//   - a refund applies only to the invoice whose paying event recorded the
//     charge's PaymentIntent (never by metadata): a full refund turns it
//     refunded, a partial one flags it; a full refund of a PaymentIntent not
//     seen yet is kept, and applied when the payment lands.
//
// Text from the event is cleaned first (NUL bytes and invalid UTF-8 never
// reach SQLite). An error applying the event that retrying cannot mend (see
// IsTransient) is not returned: the event is recorded as unprocessable, with
// the error as its detail, and the outcome says so. The error returned is a
// transient one (the database busy or gone, ctx cancelled): nothing was
// recorded, and the same event may be applied later.
func (d *DB) ApplyPaymentEvent(ctx context.Context, e PaymentEvent, install string, now time.Time) (PaymentOutcome, error) {
	if e.EventID == "" {
		return PaymentOutcome{}, errors.New("store: unable to apply a Stripe event without an id")
	}
	now = now.UTC()
	e = e.cleaned()
	install = cleanID(install)
	out, err := d.applyPaymentEvent(ctx, e, install, now)
	if err == nil {
		return out, nil
	}
	if IsTransient(err) || ctx.Err() != nil {
		return PaymentOutcome{}, fmt.Errorf("store: unable to apply Stripe event %s: %w", e.EventID, err)
	}
	out, rerr := d.RecordUnprocessablePaymentEvent(ctx, e, err.Error(), now)
	if rerr != nil {
		return PaymentOutcome{}, fmt.Errorf("store: unable to apply Stripe event %s: %w (nor to record it as unprocessable: %w)", e.EventID, err, rerr)
	}
	return out, nil
}

func (d *DB) applyPaymentEvent(ctx context.Context, e PaymentEvent, install string, now time.Time) (PaymentOutcome, error) {
	var out PaymentOutcome
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		out = PaymentOutcome{}
		// A new event id is inserted; one recorded as unprocessable is
		// tried again; any other is a duplicate and changes nothing.
		var ids []int64
		err := tx.NewRaw(`INSERT INTO stripe_events (event_id, type, session_id, payment_intent_id, charge_id, outcome, detail, received_at)
			VALUES (?, ?, ?, ?, ?, '', '', ?)
			ON CONFLICT (event_id) DO UPDATE SET type = excluded.type, session_id = excluded.session_id,
				payment_intent_id = excluded.payment_intent_id, charge_id = excluded.charge_id, outcome = '', detail = '',
				received_at = excluded.received_at
			WHERE stripe_events.outcome = ?
			RETURNING id`,
			e.EventID, e.Type, e.SessionID, e.PaymentIntentID, e.ChargeID, now, OutcomeUnprocessable).Scan(ctx, &ids)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if len(ids) == 0 {
			out.Duplicate = true
			return nil
		}
		inv, aside, err := paymentInvoiceFor(ctx, tx, e, install)
		switch {
		case err != nil:
			return err
		case aside.outcome != "":
			out = PaymentOutcome{Outcome: aside.outcome, Detail: aside.detail}
		default:
			if out, err = applyPayment(ctx, tx, e, inv, now); err != nil {
				return err
			}
		}
		var invoiceID *int64
		if inv != nil {
			invoiceID = &inv.ID
		}
		_, err = tx.ExecContext(ctx, "UPDATE stripe_events SET outcome = ?, detail = ?, invoice_id = ? WHERE id = ?",
			out.Outcome, clip(out.Detail, maxDetail), invoiceID, ids[0])
		return err
	})
	return out, err
}

// maxDetail bounds the stored reason of a set-aside event.
const maxDetail = 500

// RecordUnprocessablePaymentEvent records an event that cannot be applied
// (one the webhook cannot read, or whose application failed for good) as
// unprocessable, with reason as its detail, so that it is answered 2xx and
// shown to the operator instead of retried for days. An event id already
// applied is left alone (Duplicate); one already unprocessable gets the new
// reason.
func (d *DB) RecordUnprocessablePaymentEvent(ctx context.Context, e PaymentEvent, reason string, now time.Time) (PaymentOutcome, error) {
	if e.EventID == "" {
		return PaymentOutcome{}, errors.New("store: unable to record a Stripe event without an id")
	}
	e = e.cleaned()
	detail := cleanText(reason, maxDetail)
	var ids []int64
	err := d.bun.NewRaw(`INSERT INTO stripe_events (event_id, type, session_id, payment_intent_id, charge_id, outcome, detail, received_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (event_id) DO UPDATE SET detail = excluded.detail, received_at = excluded.received_at
		WHERE stripe_events.outcome = excluded.outcome
		RETURNING id`,
		e.EventID, e.Type, e.SessionID, e.PaymentIntentID, e.ChargeID, OutcomeUnprocessable, detail, now.UTC()).Scan(ctx, &ids)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return PaymentOutcome{}, fmt.Errorf("store: unable to record Stripe event %s as unprocessable: %w", e.EventID, err)
	}
	if len(ids) == 0 {
		return PaymentOutcome{Duplicate: true}, nil
	}
	return PaymentOutcome{Outcome: OutcomeUnprocessable, Detail: detail}, nil
}

// setAside is why an event is recorded without being applied.
type setAside struct{ outcome, detail string }

const invoiceCols = `SELECT id, COALESCE(number, '') AS number, status, currency, amount_cents, stripe_payment_link_id, flag
	FROM invoices `

// invoiceWhere reads the invoice the condition picks, or nil.
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
