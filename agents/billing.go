package agents

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hossagent/hossagent/db"
)

// BillingOptions configure the billing cycle. Zero values take the defaults.
type BillingOptions struct {
	// Currency is the currency the amount limits are stated in
	// (STRIPE_DEFAULT_CURRENCY, default "usd"). Work in another currency is
	// invoiced in its own currency under the same limits, in its own minor
	// units.
	Currency       string
	MinAmountCents int64 // smaller totals stay unbilled until they grow; default 100
	MaxAmountCents int64 // larger totals are issued flagged, without a link; default 50000
	DueAfter       time.Duration
	// BaseURL is the app's public URL; a payer lands on BaseURL + PaidReturnPath
	// after paying. (The portal link cannot be used: only its token's hash
	// is stored.)
	BaseURL          string
	MaxLinksPerCycle int // payment links created per cycle; default 20
}

func (o BillingOptions) withDefaults() BillingOptions {
	if o.Currency == "" {
		o.Currency = "usd"
	}
	if o.MinAmountCents <= 0 {
		o.MinAmountCents = 100
	}
	if o.MaxAmountCents <= 0 {
		o.MaxAmountCents = 50000
	}
	if o.DueAfter <= 0 {
		o.DueAfter = 14 * 24 * time.Hour
	}
	if o.MaxLinksPerCycle <= 0 {
		o.MaxLinksPerCycle = 20
	}
	o.BaseURL = strings.TrimRight(o.BaseURL, "/")
	return o
}

// billingPage is how many customers billing reads at a time; it pages
// through all of them (the prototype billed only the first 100).
const billingPage = 100

// BillingCycle bills finished work exactly once: one invoice per customer
// (and currency) with a line per task, then payment links for the open
// invoices that lack one.
type BillingCycle struct {
	store    *db.DB
	env      Env
	payments PaymentLinks
	opts     BillingOptions
}

// NewBillingCycle builds the billing cycle. payments may be nil, meaning
// online payment is disabled.
func NewBillingCycle(store *db.DB, env Env, payments PaymentLinks, opts BillingOptions) *BillingCycle {
	if payments == nil {
		payments = DisabledPayments{}
	}
	return &BillingCycle{store: store, env: env, payments: payments, opts: opts.withDefaults()}
}

// Run invoices every customer's unbilled done work, each customer in one
// transaction, then creates missing payment links. A task is billed at most
// once whatever runs concurrently: the unique task of invoice_lines refuses
// a second line, and the invoice that tried is rolled back ("raced").
func (c *BillingCycle) Run(ctx context.Context) (Counts, error) {
	counts := Counts{"invoiced": 0, "lines": 0, "below_minimum": 0, "flagged": 0, "raced": 0, "links": 0, "link_failed": 0}
	errBilling := c.billAll(ctx, counts)
	var errLinks error
	if c.payments.Enabled() && ctx.Err() == nil {
		errLinks = c.createLinks(ctx, counts)
	}
	announceChanges(c.env, Billing, counts, counts["invoiced"]+counts["links"] > 0, counts["invoiced"] > 0)
	if err := errors.Join(errBilling, errLinks); err != nil {
		return counts, fmt.Errorf("billing: %w", err)
	}
	return counts, nil
}

func (c *BillingCycle) billAll(ctx context.Context, counts Counts) error {
	rules := db.BillingRules{MinAmountCents: c.opts.MinAmountCents, MaxAmountCents: c.opts.MaxAmountCents, DueAfter: c.opts.DueAfter}
	var errs []error
	var after int64
	for {
		ids, err := c.store.CustomersWithUnbilledWork(ctx, after, billingPage)
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		for _, id := range ids {
			if ctx.Err() != nil {
				return errors.Join(append(errs, ctx.Err())...)
			}
			b, err := c.store.BillCustomer(ctx, id, c.env.Now(), rules)
			switch {
			case errors.Is(err, db.ErrAlreadyBilled):
				counts["raced"]++
			case err != nil:
				errs = append(errs, err)
			default:
				counts["invoiced"] += len(b.Invoices)
				counts["lines"] += b.Lines
				counts["below_minimum"] += b.BelowMinimum
				counts["flagged"] += b.Flagged
			}
		}
		if len(ids) < billingPage {
			return errors.Join(errs...)
		}
		after = ids[len(ids)-1]
	}
}

// createLinks asks the payment provider for the links open invoices lack,
// oldest first and at most MaxLinksPerCycle. The call is made outside any
// transaction (it is network I/O) with a key derived from the invoice id, so
// a retry after a crash or a concurrent run gets the same link back, and the
// link is stored only if the invoice still has none. A failure leaves the
// invoice for a later cycle, with its error kept on it (the invoice page
// and the Stripe panel show it), and makes the cycle fail: a cycle that
// left invoices without a way to pay is not OK.
func (c *BillingCycle) createLinks(ctx context.Context, counts Counts) (err error) {
	invoices, err := c.store.InvoicesNeedingPaymentLink(ctx, c.opts.MaxLinksPerCycle)
	if err != nil {
		return err
	}
	var last LinkFailure
	var lastNumber string
	defer func() {
		if counts["link_failed"] > 0 && err == nil {
			err = fmt.Errorf("%d of %d payment links failed; the last, for %s: %s", counts["link_failed"], len(invoices), lastNumber, last.Text())
		}
	}()
	for _, inv := range invoices {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		link, err := c.payments.CreateLink(ctx, LinkRequest{
			InvoiceID: inv.InvoiceID, Number: inv.Number, AmountCents: inv.AmountCents,
			Currency: inv.Currency, CustomerEmail: inv.CustomerEmail,
			IdempotencyKey: fmt.Sprintf("invoice-%d-link", inv.InvoiceID),
			ReturnURL:      c.opts.BaseURL + PaidReturnPath,
		})
		if err == nil && link.URL == "" {
			err = errors.New("provider returned a link without a URL")
		}
		if err != nil {
			counts["link_failed"]++
			last, lastNumber = LinkFailureOf(err), inv.Number
			if err := c.store.RecordLinkError(ctx, inv.InvoiceID, last.Kind, last.Code, last.Message); err != nil {
				return err
			}
			continue
		}
		saved, err := c.store.SetInvoicePaymentLink(ctx, inv.InvoiceID, link.PriceID, link.PaymentLinkID, link.URL, c.env.Now())
		if err != nil {
			return err
		}
		if saved {
			counts["links"]++
		}
	}
	return nil
}

// PaidReturnPath is where a payment link sends the payer back: Stripe puts
// the Checkout Session's id in place of {CHECKOUT_SESSION_ID}, so the page
// can say which invoice was paid.
const PaidReturnPath = "/paid?session_id={CHECKOUT_SESSION_ID}"
