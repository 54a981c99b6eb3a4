package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
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
		//
		// Two instances given the same delivery at once (Stripe retries
		// while the first answer is slow; a load balancer sends each to
		// another instance) apply it once. On SQLite the write lock puts
		// one after the other. On PostgreSQL the UNIQUE event_id makes the
		// second insert wait for the first transaction; once that commits,
		// SERIALIZABLE aborts the second (40001: the row is not in its
		// snapshot), and RunInTx runs it again: it sees the event recorded
		// and reports a duplicate. Two different events paying one invoice
		// meet the same way at the invoice's row (UPDATE … WHERE status =
		// 'open'): the one run again finds it paid.
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
	// One statement, but in RunInTx: on PostgreSQL a delivery of the same
	// event on another instance may be applying it now, and SERIALIZABLE
	// then aborts this one (40001); run again, it finds the event applied
	// (Duplicate) instead of failing.
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		ids = nil
		err := tx.NewRaw(`INSERT INTO stripe_events (event_id, type, session_id, payment_intent_id, charge_id, outcome, detail, received_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (event_id) DO UPDATE SET detail = excluded.detail, received_at = excluded.received_at
		WHERE stripe_events.outcome = excluded.outcome
		RETURNING id`,
			e.EventID, e.Type, e.SessionID, e.PaymentIntentID, e.ChargeID, OutcomeUnprocessable, detail, now.UTC()).Scan(ctx, &ids)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		return err
	})
	if err != nil {
		return PaymentOutcome{}, fmt.Errorf("store: unable to record Stripe event %s as unprocessable: %w", e.EventID, err)
	}
	if len(ids) == 0 {
		return PaymentOutcome{Duplicate: true}, nil
	}
	return PaymentOutcome{Outcome: OutcomeUnprocessable, Detail: detail}, nil
}
