package agents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/hossagent/hossagent/db"
)

// StripeOptions configure the Stripe adapter.
type StripeOptions struct {
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

// StripePayments is the payment provider when ENABLE_STRIPE is on: a Price
// and a Payment Link per invoice, through its own stripe-go client (never
// the package-level stripe.Key, so two instances, or a test beside
// production code, never share credentials or endpoints).
type StripePayments struct {
	api     *client.API
	install string
}

// stripeTimeout bounds one HTTP exchange with Stripe; stripe-go retries a
// failed one twice, with the same idempotency key.
const stripeTimeout = 30 * time.Second

// NewStripePayments builds the adapter.
func NewStripePayments(opts StripeOptions) *StripePayments {
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: stripeTimeout}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	// GetBackendWithConfig fills in the config it is given, so each
	// backend gets its own.
	backend := func(kind stripe.SupportedBackend) stripe.Backend {
		cfg := &stripe.BackendConfig{HTTPClient: opts.HTTPClient, LeveledLogger: stripeLogger{opts.Logger}}
		if opts.APIBase != "" {
			cfg.URL = stripe.String(opts.APIBase)
		}
		return stripe.GetBackendWithConfig(kind, cfg)
	}
	backends := &stripe.Backends{
		API: backend(stripe.APIBackend), Connect: backend(stripe.ConnectBackend), Uploads: backend(stripe.UploadsBackend),
	}
	return &StripePayments{api: client.New(opts.APIKey, backends), install: opts.InstallID}
}

// Enabled is true: links are created.
func (p *StripePayments) Enabled() bool { return true }

// InstallID is this install's id as its links' metadata carry it
// (hossagent_install), which the payment ledger requires of a session not
// paid through an invoice's own link; "" for a nil adapter (Stripe off).
func (p *StripePayments) InstallID() string {
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
func (p *StripePayments) CreateLink(ctx context.Context, req LinkRequest) (Link, error) {
	if err := req.validate(); err != nil {
		return Link{}, fmt.Errorf("stripe: invoice %d: %w", req.InvoiceID, err)
	}
	invoiceID := strconv.FormatInt(req.InvoiceID, 10)
	metadata := map[string]string{"invoice_id": invoiceID, "invoice_number": req.Number}
	if p.install != "" {
		metadata[installKey] = p.install
	}

	priceParams := &stripe.PriceParams{
		Currency:    stripe.String(req.Currency),
		UnitAmount:  stripe.Int64(req.AmountCents),
		ProductData: &stripe.PriceProductDataParams{Name: stripe.String("Invoice " + req.Number)},
	}
	priceParams.Context = ctx
	priceParams.Metadata = metadata
	priceParams.SetIdempotencyKey(p.idempotencyKey(fmt.Sprintf("invoice-%d-price", req.InvoiceID)))
	price, err := p.api.Prices.New(priceParams)
	if err != nil {
		return Link{}, fmt.Errorf("stripe: unable to create the price of invoice %d: %w", req.InvoiceID, err)
	}

	linkParams := &stripe.PaymentLinkParams{
		LineItems: []*stripe.PaymentLinkLineItemParams{{Price: stripe.String(price.ID), Quantity: stripe.Int64(1)}},
		// One payment per invoice: Stripe deactivates the link after the
		// first completed session, even if our deactivation call fails.
		Restrictions: &stripe.PaymentLinkRestrictionsParams{
			CompletedSessions: &stripe.PaymentLinkRestrictionsCompletedSessionsParams{Limit: stripe.Int64(1)},
		},
		InactiveMessage:   stripe.String("Invoice " + req.Number + " has been paid or can no longer be paid online."),
		PaymentIntentData: &stripe.PaymentLinkPaymentIntentDataParams{Metadata: metadata},
	}
	linkParams.Context = ctx
	linkParams.Metadata = metadata
	if req.ReturnURL != "" {
		linkParams.AfterCompletion = &stripe.PaymentLinkAfterCompletionParams{
			Type:     stripe.String(string(stripe.PaymentLinkAfterCompletionTypeRedirect)),
			Redirect: &stripe.PaymentLinkAfterCompletionRedirectParams{URL: stripe.String(req.ReturnURL)},
		}
	}
	key := req.IdempotencyKey
	if key == "" {
		key = fmt.Sprintf("invoice-%d-link", req.InvoiceID)
	}
	linkParams.SetIdempotencyKey(p.idempotencyKey(key))
	link, err := p.api.PaymentLinks.New(linkParams)
	if err != nil {
		return Link{}, fmt.Errorf("stripe: unable to create the payment link of invoice %d: %w", req.InvoiceID, err)
	}
	return Link{PriceID: price.ID, PaymentLinkID: link.ID, URL: link.URL}, nil
}

// installKey is the metadata key naming the install that created a link;
// Stripe copies a link's metadata onto its Checkout Sessions.
const installKey = "hossagent_install"

// idempotencyKey scopes a key to this installation.
func (p *StripePayments) idempotencyKey(key string) string {
	if p.install == "" {
		return key
	}
	return p.install + "-" + key
}

func (req LinkRequest) validate() error {
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
func (p *StripePayments) DeactivateLink(ctx context.Context, linkID string) error {
	params := &stripe.PaymentLinkParams{Active: stripe.Bool(false)}
	params.Context = ctx
	if _, err := p.api.PaymentLinks.Update(linkID, params); err != nil {
		return fmt.Errorf("stripe: unable to deactivate payment link %s: %w", linkID, err)
	}
	return nil
}

// maxSessionsPerLink bounds how many completed sessions reconcile reads for
// one link; a link accepts one completed payment, so more is already news.
const maxSessionsPerLink = 20

// CompletedSessions lists the complete Checkout Sessions of a payment link,
// newest first.
func (p *StripePayments) CompletedSessions(ctx context.Context, linkID string) ([]*stripe.CheckoutSession, error) {
	params := &stripe.CheckoutSessionListParams{PaymentLink: stripe.String(linkID), Status: stripe.String(string(stripe.CheckoutSessionStatusComplete))}
	params.Context = ctx
	params.Limit = stripe.Int64(maxSessionsPerLink)
	var out []*stripe.CheckoutSession
	it := p.api.CheckoutSessions.List(params)
	for len(out) < maxSessionsPerLink && it.Next() {
		out = append(out, it.CheckoutSession())
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("stripe: unable to list the sessions of payment link %s: %w", linkID, err)
	}
	return out, nil
}

// PaymentEventFromStripe translates a verified Stripe event into what it
// means for an invoice. Types HossAgent does not act on become PaymentOther,
// which the store records and ignores.
func PaymentEventFromStripe(ev *stripe.Event) (db.PaymentEvent, error) {
	if ev.ID == "" {
		return db.PaymentEvent{}, errors.New("stripe: the event has no id")
	}
	var kind string
	switch ev.Type {
	case stripe.EventTypeCheckoutSessionCompleted:
		kind = "" // decided by the session's payment_status
	case stripe.EventTypeCheckoutSessionAsyncPaymentSucceeded:
		kind = db.PaymentSucceeded
	case stripe.EventTypeCheckoutSessionAsyncPaymentFailed:
		kind = db.PaymentFailed
	case stripe.EventTypeChargeRefunded:
		var ch stripe.Charge
		if err := decodeObject(ev, &ch); err != nil {
			return db.PaymentEvent{}, err
		}
		return refundEvent(ev.ID, &ch), nil
	default:
		return db.PaymentEvent{EventID: ev.ID, Type: string(ev.Type), Kind: db.PaymentOther}, nil
	}
	var cs stripe.CheckoutSession
	if err := decodeObject(ev, &cs); err != nil {
		return db.PaymentEvent{}, err
	}
	return sessionEvent(ev.ID, string(ev.Type), kind, &cs), nil
}

func decodeObject(ev *stripe.Event, into any) error {
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
func sessionEvent(eventID, eventType, kind string, cs *stripe.CheckoutSession) db.PaymentEvent {
	if kind == "" {
		kind = db.PaymentPending
		if cs.PaymentStatus == stripe.CheckoutSessionPaymentStatusPaid {
			kind = db.PaymentSucceeded
		}
	}
	e := db.PaymentEvent{
		EventID: eventID, Type: eventType, Kind: kind, InvoiceID: metadataInvoiceID(cs.Metadata), Install: cs.Metadata[installKey],
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
func refundEvent(eventID string, ch *stripe.Charge) db.PaymentEvent {
	e := db.PaymentEvent{
		EventID: eventID, Type: string(stripe.EventTypeChargeRefunded), Kind: db.PaymentRefunded,
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
