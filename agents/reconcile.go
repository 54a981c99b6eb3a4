package agents

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hossagent/hossagent/db"
)

// LinkDeactivator turns payment links off (*stripe.Payments).
type LinkDeactivator interface {
	DeactivateLink(ctx context.Context, linkID string) error
}

// PaymentLedger applies payment events, from the Stripe webhook and from
// reconcile alike: the store records the event and its effect in one
// transaction (so each event id counts once), then, outside it, the paid
// invoice's link is deactivated and the live views are told.
type PaymentLedger struct {
	Store *db.DB
	// InstallID is this install's id ("hoss-…", stripe.Payments.InstallID):
	// a session not paid through an invoice's own link applies only when
	// its metadata names it. "" (ENABLE_STRIPE off, so no id was drawn)
	// applies only sessions of an invoice's own link; the others are
	// recorded as install_unverified, visible in the Stripe panel.
	InstallID string
	// Links deactivates the link of a paid invoice; nil leaves it to the
	// link's own one-payment restriction.
	Links  LinkDeactivator
	Events Publisher // nil: nobody is told
	Logger *slog.Logger
	Now    func() time.Time // default time.Now
}

// deactivateTimeout bounds the deactivation call after a payment; it runs
// even if the request that brought the payment has gone.
const deactivateTimeout = 10 * time.Second

// Apply applies e. An error is transient (db.IsTransient): nothing was
// recorded and the event must be delivered again (the webhook answers 500,
// and Stripe retries). An event that can never apply (another install's,
// none proven ours, or one whose application fails for good) is recorded
// as set aside, and its outcome says so: retrying would not change it. A
// failed deactivation is logged, not returned: the payment stands, and the
// link refuses a second payment by itself.
func (l *PaymentLedger) Apply(ctx context.Context, e db.PaymentEvent) (db.PaymentOutcome, error) {
	out, err := l.Store.ApplyPaymentEvent(ctx, e, l.InstallID, l.now())
	if err != nil {
		return out, err
	}
	return l.report(ctx, e, out), nil
}

// Unreadable records a signed event whose object cannot be read as
// unprocessable, so that it is acknowledged and shown to the operator rather
// than refused on every retry. An error is transient, as for Apply.
func (l *PaymentLedger) Unreadable(ctx context.Context, eventID, eventType string, reason error) (db.PaymentOutcome, error) {
	e := db.PaymentEvent{EventID: eventID, Type: eventType, Kind: db.PaymentOther}
	out, err := l.Store.RecordUnprocessablePaymentEvent(ctx, e, reason.Error(), l.now())
	if err != nil {
		return out, err
	}
	return l.report(ctx, e, out), nil
}

func (l *PaymentLedger) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// report logs what the event did and tells whoever must know.
func (l *PaymentLedger) report(ctx context.Context, e db.PaymentEvent, out db.PaymentOutcome) db.PaymentOutcome {
	log := l.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch {
	case out.Duplicate:
		log.Info("stripe event already applied", "event", e.EventID, "type", e.Type)
		return out
	case out.Outcome == db.OutcomeUnprocessable:
		log.Error("stripe event cannot be applied: recorded as unprocessable and acknowledged; fix the cause, then resend the event from the Stripe dashboard",
			"event", e.EventID, "type", e.Type, "reason", out.Detail)
		return out
	case out.Outcome == db.OutcomeForeignInstall:
		// Another install sharing the Stripe account: its every session
		// arrives here too, so this is routine.
		log.Info("stripe event of another install set aside", "event", e.EventID, "type", e.Type, "reason", out.Detail)
		return out
	case out.SetAside():
		log.Warn("stripe event set aside: nothing ties it to this install", "event", e.EventID, "type", e.Type,
			"outcome", out.Outcome, "reason", out.Detail)
		return out
	}
	log.Info("stripe event applied", "event", e.EventID, "type", e.Type, "outcome", out.Outcome,
		"invoice", out.Number, "invoice_id", out.InvoiceID)
	if out.Paid && out.PaymentLinkID != "" && l.Links != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deactivateTimeout)
		if err := l.Links.DeactivateLink(dctx, out.PaymentLinkID); err != nil {
			log.Warn("paid invoice's payment link not deactivated", "invoice", out.Number, "link", out.PaymentLinkID, "err", err)
		}
		cancel()
	}
	if out.Changed && l.Events != nil {
		l.Events.Publish(Event{
			Kind: EventMoneyChanged, Agent: Billing, At: l.now(), Subject: fmt.Sprintf("invoice %d", out.InvoiceID),
			Message: fmt.Sprintf("%s: %s", out.Number, out.Outcome),
		})
	}
	return out
}

// PaymentSessions is what reconcile asks of the payment provider
// (*stripe.Payments).
type PaymentSessions interface {
	LinkDeactivator
	// CompletedSessions lists the complete checkout sessions of a payment
	// link, newest first.
	CompletedSessions(ctx context.Context, paymentLinkID string) ([]CheckoutSession, error)
}

// CheckoutSession is one checkout session of a payment link, as reconcile
// reads it.
type CheckoutSession struct {
	ID string
	// Complete is a session whose checkout is over (Stripe's status
	// "complete"); Paid is one whose payment has cleared (payment_status
	// "paid").
	Complete, Paid bool
	// Payment is what the session says about its invoice: the invoice and
	// install its metadata name, the payment link, the PaymentIntent, the
	// amount and the payer. EventID, Type and Kind are reconcile's to set.
	Payment db.PaymentEvent
}

// reconcileEventType is the event type a session applied by reconcile is
// recorded under: the one its lost webhook would have had.
const reconcileEventType = "checkout.session.completed"

// ReconcileReport is what a reconcile run found.
type ReconcileReport struct {
	Checked int      // open invoices with a payment link asked about
	Paid    int      // invoices a lost payment was applied to
	Flagged int      // sessions that flagged an invoice instead of paying it (amount or currency mismatch …)
	Pending int      // complete sessions whose payment has not cleared yet
	Errors  []string // one line per invoice Stripe could not be asked about or that could not be updated
}

// String is the report as the reconcile command prints it.
func (r ReconcileReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "reconcile: %d open invoices checked, %d paid, %d flagged, %d awaiting payment, %d errors",
		r.Checked, r.Paid, r.Flagged, r.Pending, len(r.Errors))
	for _, e := range r.Errors {
		b.WriteString("\n  error: " + e)
	}
	return b.String()
}

// reconcilePage is how many open invoices reconcile reads at a time.
const reconcilePage = 100

// Reconcile asks Stripe about the payment link of every open invoice and
// applies a paid Checkout Session whose webhook never arrived (or never got
// through), through the same ledger as the webhook. Each session is recorded
// as the event "reconcile:<session id>", so running reconcile again, or the
// webhook arriving late, changes nothing more. A complete session whose
// payment has not cleared is left for its async_payment_succeeded event. The
// error is for a store that cannot be read; Stripe's failures are per
// invoice, in the report.
func Reconcile(ctx context.Context, ledger *PaymentLedger, sessions PaymentSessions) (ReconcileReport, error) {
	var r ReconcileReport
	var after int64
	for {
		invoices, err := ledger.Store.OpenInvoicesWithPaymentLink(ctx, after, reconcilePage)
		if err != nil {
			return r, fmt.Errorf("reconcile: %w", err)
		}
		for _, inv := range invoices {
			if err := ctx.Err(); err != nil {
				return r, fmt.Errorf("reconcile: %w", err)
			}
			r.Checked++
			if err := reconcileInvoice(ctx, ledger, sessions, inv, &r); err != nil {
				r.Errors = append(r.Errors, fmt.Sprintf("%s (invoice %d): %v", inv.Number, inv.InvoiceID, err))
			}
		}
		if len(invoices) < reconcilePage {
			return r, nil
		}
		after = invoices[len(invoices)-1].InvoiceID
	}
}

func reconcileInvoice(ctx context.Context, ledger *PaymentLedger, sessions PaymentSessions, inv db.LinkedInvoice, r *ReconcileReport) error {
	found, err := sessions.CompletedSessions(ctx, inv.PaymentLinkID)
	if err != nil {
		return err
	}
	for _, cs := range found {
		if !cs.Complete {
			continue
		}
		if !cs.Paid {
			r.Pending++
			continue
		}
		e := cs.Payment
		e.EventID, e.Type, e.Kind = "reconcile:"+cs.ID, reconcileEventType, db.PaymentSucceeded
		// The link was asked about for this invoice: a session without
		// metadata or link id still belongs to it.
		if e.InvoiceID == 0 {
			e.InvoiceID = inv.InvoiceID
		}
		if e.PaymentLinkID == "" {
			e.PaymentLinkID = inv.PaymentLinkID
		}
		out, err := ledger.Apply(ctx, e)
		switch {
		case err != nil:
			return err
		case out.Outcome == db.OutcomeUnprocessable:
			// Recorded; the next run tries it again.
			r.Errors = append(r.Errors, fmt.Sprintf("%s (invoice %d): session %s cannot be applied: %s", inv.Number, inv.InvoiceID, cs.ID, out.Detail))
		case out.Paid:
			r.Paid++
		case out.Changed:
			r.Flagged++
		}
	}
	return nil
}
