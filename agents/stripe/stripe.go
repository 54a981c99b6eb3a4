// Package stripe is HossAgent's Stripe adapter, on stripe-go's narrow
// clients (prices, payment links, checkout sessions, webhooks): the
// agents.PaymentLinks that bill through Stripe, the sessions reconcile asks
// about, and the reader of Stripe's webhook events (webhook.go).
package stripe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	stripeapi "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/checkout/session"
	"github.com/stripe/stripe-go/v76/paymentlink"
	"github.com/stripe/stripe-go/v76/price"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

// Options configure the Stripe adapter.
type Options struct {
	APIKey string // STRIPE_API_KEY
	// APIBase replaces https://api.stripe.com (STRIPE_API_BASE): stripe-mock
	// in tests.
	APIBase    string
	HTTPClient *http.Client // default: a client with a 30 s timeout
	Logger     *slog.Logger // where stripe-go's own messages go; default: nowhere
	// InstallID names this installation in idempotency keys and metadata.
	// Invoice ids start at 1 in every database, so without it two installs
	// sharing a Stripe account (staging and production, or a wiped data
	// directory within Stripe's 24 h key window) would receive each other's
	// prices and links.
	InstallID string
}

// Payments is the payment provider when ENABLE_STRIPE is on: a Price and a
// Payment Link per invoice, through its own stripe-go clients and backend
// (never the package-level stripeapi.Key, so two instances, or a test beside
// production code, never share credentials or endpoints).
type Payments struct {
	prices   price.Client
	links    paymentlink.Client
	sessions session.Client
	install  string
}

// stripeTimeout bounds one HTTP exchange with Stripe; stripe-go retries a
// failed one twice, with the same idempotency key.
const stripeTimeout = 30 * time.Second

// New builds the adapter. Prices, payment links and checkout sessions are
// all on Stripe's API backend, which the three clients share.
func New(opts Options) *Payments {
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: stripeTimeout}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	cfg := &stripeapi.BackendConfig{HTTPClient: opts.HTTPClient, LeveledLogger: stripeLogger{opts.Logger}}
	if opts.APIBase != "" {
		cfg.URL = stripeapi.String(opts.APIBase)
	}
	backend := stripeapi.GetBackendWithConfig(stripeapi.APIBackend, cfg)
	return &Payments{
		prices:   price.Client{B: backend, Key: opts.APIKey},
		links:    paymentlink.Client{B: backend, Key: opts.APIKey},
		sessions: session.Client{B: backend, Key: opts.APIKey},
		install:  opts.InstallID,
	}
}

// Enabled is true: links are created.
func (p *Payments) Enabled() bool { return true }

// InstallID is this install's id as its links' metadata carry it
// (hossagent_install), which the payment ledger requires of a session not
// paid through an invoice's own link; "" for a nil adapter (Stripe off).
func (p *Payments) InstallID() string {
	if p == nil {
		return ""
	}
	return p.install
}

// CreateLink creates the invoice's Price ("Invoice INV-…", the invoice's
// amount and currency) and a Payment Link for one unit of it. Both carry
// metadata.invoice_id (Stripe copies a link's metadata onto the Checkout
// Sessions it creates, which is how the webhook finds the invoice), the link
// accepts one completed payment and then deactivates itself, and the payer
// is sent back to ReturnURL. Both calls use idempotency keys derived from the
// invoice id, so a retry within Stripe's 24 hours returns the same objects.
func (p *Payments) CreateLink(ctx context.Context, req agents.LinkRequest) (agents.Link, error) {
	if err := validate(req); err != nil {
		return agents.Link{}, fmt.Errorf("stripe: invoice %d: %w", req.InvoiceID, err)
	}
	invoiceID := strconv.FormatInt(req.InvoiceID, 10)
	metadata := map[string]string{"invoice_id": invoiceID, "invoice_number": req.Number}
	if p.install != "" {
		metadata[installKey] = p.install
	}

	priceParams := &stripeapi.PriceParams{
		Currency:    stripeapi.String(req.Currency),
		UnitAmount:  stripeapi.Int64(req.AmountCents),
		ProductData: &stripeapi.PriceProductDataParams{Name: stripeapi.String("Invoice " + req.Number)},
	}
	priceParams.Context = ctx
	priceParams.Metadata = metadata
	priceParams.SetIdempotencyKey(p.idempotencyKey(fmt.Sprintf("invoice-%d-price", req.InvoiceID)))
	price, err := p.prices.New(priceParams)
	if err != nil {
		return agents.Link{}, fmt.Errorf("stripe: unable to create the price of invoice %d: %w", req.InvoiceID, providerError(err))
	}

	linkParams := &stripeapi.PaymentLinkParams{
		LineItems: []*stripeapi.PaymentLinkLineItemParams{{Price: stripeapi.String(price.ID), Quantity: stripeapi.Int64(1)}},
		// One payment per invoice: Stripe deactivates the link after the
		// first completed session, even if our deactivation call fails.
		Restrictions: &stripeapi.PaymentLinkRestrictionsParams{
			CompletedSessions: &stripeapi.PaymentLinkRestrictionsCompletedSessionsParams{Limit: stripeapi.Int64(1)},
		},
		InactiveMessage:   stripeapi.String("Invoice " + req.Number + " has been paid or can no longer be paid online."),
		PaymentIntentData: &stripeapi.PaymentLinkPaymentIntentDataParams{Metadata: metadata},
	}
	linkParams.Context = ctx
	linkParams.Metadata = metadata
	if req.ReturnURL != "" {
		linkParams.AfterCompletion = &stripeapi.PaymentLinkAfterCompletionParams{
			Type:     stripeapi.String(string(stripeapi.PaymentLinkAfterCompletionTypeRedirect)),
			Redirect: &stripeapi.PaymentLinkAfterCompletionRedirectParams{URL: stripeapi.String(req.ReturnURL)},
		}
	}
	key := req.IdempotencyKey
	if key == "" {
		key = fmt.Sprintf("invoice-%d-link", req.InvoiceID)
	}
	linkParams.SetIdempotencyKey(p.idempotencyKey(key))
	link, err := p.links.New(linkParams)
	if err != nil {
		return agents.Link{}, fmt.Errorf("stripe: unable to create the payment link of invoice %d: %w", req.InvoiceID, providerError(err))
	}
	return agents.Link{PriceID: price.ID, PaymentLinkID: link.ID, URL: link.URL}, nil
}

// providerError turns Stripe's answer into an agents.ProviderError (its
// type, code and message, which the invoice then shows); any other error,
// Stripe unreachable, is returned as it is.
func providerError(err error) error {
	var se *stripeapi.Error
	if errors.As(err, &se) {
		msg := se.Msg
		if msg == "" {
			msg = fmt.Sprintf("HTTP %d", se.HTTPStatusCode)
		}
		return &agents.ProviderError{Type: string(se.Type), Code: string(se.Code), Message: msg, Err: err}
	}
	return err
}

// installKey is the metadata key naming the install that created a link;
// Stripe copies a link's metadata onto its Checkout Sessions.
const installKey = "hossagent_install"

// idempotencyKey scopes a key to this installation.
func (p *Payments) idempotencyKey(key string) string {
	if p.install == "" {
		return key
	}
	return p.install + "-" + key
}

func validate(req agents.LinkRequest) error {
	switch {
	case req.InvoiceID <= 0:
		return errors.New("no invoice id")
	case req.AmountCents <= 0:
		return fmt.Errorf("amount %d is not positive", req.AmountCents)
	case len(req.Currency) != 3:
		return fmt.Errorf("currency %q is not an ISO 4217 code", req.Currency)
	case req.Number == "":
		return errors.New("the invoice has no number")
	}
	return nil
}

// DeactivateLink turns a payment link off, so nobody can pay a settled
// invoice again. Deactivating an inactive link is harmless.
func (p *Payments) DeactivateLink(ctx context.Context, linkID string) error {
	params := &stripeapi.PaymentLinkParams{Active: stripeapi.Bool(false)}
	params.Context = ctx
	if _, err := p.links.Update(linkID, params); err != nil {
		return fmt.Errorf("stripe: unable to deactivate payment link %s: %w", linkID, err)
	}
	return nil
}

// maxSessionsPerLink bounds how many completed sessions reconcile reads for
// one link; a link accepts one completed payment, so more is already news.
const maxSessionsPerLink = 20

// CompletedSessions lists the complete Checkout Sessions of a payment link,
// newest first, as reconcile reads them.
func (p *Payments) CompletedSessions(ctx context.Context, linkID string) ([]agents.CheckoutSession, error) {
	params := &stripeapi.CheckoutSessionListParams{PaymentLink: stripeapi.String(linkID), Status: stripeapi.String(string(stripeapi.CheckoutSessionStatusComplete))}
	params.Context = ctx
	params.Limit = stripeapi.Int64(maxSessionsPerLink)
	var out []agents.CheckoutSession
	it := p.sessions.List(params)
	for len(out) < maxSessionsPerLink && it.Next() {
		cs := it.CheckoutSession()
		out = append(out, agents.CheckoutSession{
			ID:       cs.ID,
			Complete: cs.Status == stripeapi.CheckoutSessionStatusComplete,
			Paid:     cs.PaymentStatus == stripeapi.CheckoutSessionPaymentStatusPaid,
			Payment:  sessionFacts(cs),
		})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("stripe: unable to list the sessions of payment link %s: %w", linkID, err)
	}
	return out, nil
}

// PaymentEvent translates a verified Stripe event into what it means for an
// invoice. Types HossAgent does not act on become PaymentOther, which the
// store records and ignores.
func PaymentEvent(ev *stripeapi.Event) (db.PaymentEvent, error) {
	if ev.ID == "" {
		return db.PaymentEvent{}, errors.New("stripe: the event has no id")
	}
	var kind string
	switch ev.Type {
	case stripeapi.EventTypeCheckoutSessionCompleted:
		kind = "" // decided by the session's payment_status
	case stripeapi.EventTypeCheckoutSessionAsyncPaymentSucceeded:
		kind = db.PaymentSucceeded
	case stripeapi.EventTypeCheckoutSessionAsyncPaymentFailed:
		kind = db.PaymentFailed
	case stripeapi.EventTypeChargeRefunded:
		var ch stripeapi.Charge
		if err := decodeObject(ev, &ch); err != nil {
			return db.PaymentEvent{}, err
		}
		return refundEvent(ev.ID, &ch), nil
	default:
		return db.PaymentEvent{EventID: ev.ID, Type: string(ev.Type), Kind: db.PaymentOther}, nil
	}
	var cs stripeapi.CheckoutSession
	if err := decodeObject(ev, &cs); err != nil {
		return db.PaymentEvent{}, err
	}
	return sessionEvent(ev.ID, string(ev.Type), kind, &cs), nil
}

func decodeObject(ev *stripeapi.Event, into any) error {
	if ev.Data == nil || len(ev.Data.Raw) == 0 {
		return fmt.Errorf("stripe: event %s (%s) has no object", ev.ID, ev.Type)
	}
	if err := json.Unmarshal(ev.Data.Raw, into); err != nil {
		return fmt.Errorf("stripe: unable to read the object of event %s (%s): %w", ev.ID, ev.Type, err)
	}
	return nil
}

// sessionEvent reads a Checkout Session. An empty kind means: paid only
// when the session says payment_status "paid" (a complete session paid by
// a delayed method is "unpaid" until async_payment_succeeded).
func sessionEvent(eventID, eventType, kind string, cs *stripeapi.CheckoutSession) db.PaymentEvent {
	if kind == "" {
		kind = db.PaymentPending
		if cs.PaymentStatus == stripeapi.CheckoutSessionPaymentStatusPaid {
			kind = db.PaymentSucceeded
		}
	}
	e := sessionFacts(cs)
	e.EventID, e.Type, e.Kind = eventID, eventType, kind
	return e
}

// sessionFacts is what a Checkout Session says about its invoice: the
// invoice and install its metadata name, the amount, the link, the
// PaymentIntent and the payer. The event id, type and kind are the caller's.
func sessionFacts(cs *stripeapi.CheckoutSession) db.PaymentEvent {
	e := db.PaymentEvent{
		InvoiceID: metadataInvoiceID(cs.Metadata), Install: cs.Metadata[installKey],
		SessionID: cs.ID, AmountCents: cs.AmountTotal, Currency: string(cs.Currency),
	}
	if cs.PaymentLink != nil {
		e.PaymentLinkID = cs.PaymentLink.ID
	}
	if cs.PaymentIntent != nil {
		e.PaymentIntentID = cs.PaymentIntent.ID
	}
	if cs.CustomerDetails != nil {
		e.PayerEmail, e.PayerName = cs.CustomerDetails.Email, cs.CustomerDetails.Name
	}
	return e
}

// refundEvent reads a refunded charge. Its metadata is not read: anyone
// with the account can write a charge's metadata, so the store finds the
// invoice only by the PaymentIntent its paying event recorded.
func refundEvent(eventID string, ch *stripeapi.Charge) db.PaymentEvent {
	e := db.PaymentEvent{
		EventID: eventID, Type: string(stripeapi.EventTypeChargeRefunded), Kind: db.PaymentRefunded,
		ChargeID: ch.ID, Currency: string(ch.Currency), RefundedCents: ch.AmountRefunded, FullyRefunded: ch.Refunded,
	}
	if ch.PaymentIntent != nil {
		e.PaymentIntentID = ch.PaymentIntent.ID
	}
	return e
}

// metadataInvoiceID is metadata.invoice_id, or 0 when absent or not an id.
func metadataInvoiceID(md map[string]string) int64 {
	id, err := strconv.ParseInt(md["invoice_id"], 10, 64)
	if err != nil || id <= 0 {
		return 0
	}
	return id
}

// stripeLogger sends stripe-go's messages to slog. Its errors are returned
// to (and logged by) the caller too, so they are only warnings here.
type stripeLogger struct{ log *slog.Logger }

func (l stripeLogger) Debugf(format string, v ...any) { l.logf(slog.LevelDebug, format, v) }
func (l stripeLogger) Infof(format string, v ...any)  { l.logf(slog.LevelDebug, format, v) }
func (l stripeLogger) Warnf(format string, v ...any)  { l.logf(slog.LevelWarn, format, v) }
func (l stripeLogger) Errorf(format string, v ...any) { l.logf(slog.LevelWarn, format, v) }

func (l stripeLogger) logf(level slog.Level, format string, v []any) {
	l.log.Log(context.Background(), level, "stripe: "+fmt.Sprintf(format, v...))
}
