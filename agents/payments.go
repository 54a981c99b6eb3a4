package agents

import (
	"context"
	"errors"
	"net"
	"net/http"
	"regexp"
	"time"

	"github.com/hossagent/hossagent/db"
)

// PaymentLinks creates the hosted payment page of an invoice (a Stripe
// Price and Payment Link in production: agents/stripe).
type PaymentLinks interface {
	// Enabled reports whether links can be created at all; billing skips
	// the link step when they cannot.
	Enabled() bool
	// CreateLink creates the link for one invoice. It is called outside any
	// transaction and may be retried for the same invoice with the same
	// IdempotencyKey, which must yield the same link rather than a second one.
	CreateLink(ctx context.Context, req LinkRequest) (Link, error)
}

// LinkRequest is one invoice to be paid through a link.
type LinkRequest struct {
	// InvoiceID is also sent as metadata.invoice_id, beside this install's
	// id (hossagent_install): a session not paid through the invoice's own
	// link applies only when its metadata carries both.
	InvoiceID      int64
	Number         string
	AmountCents    int64
	Currency       string
	CustomerEmail  string
	IdempotencyKey string // "invoice-<id>-link"
	ReturnURL      string // where the payer lands after paying
}

// Link is what the provider created for an invoice.
type Link struct {
	PriceID       string
	PaymentLinkID string
	URL           string
}

// ProviderError is a payment provider's answer to a failed call as an
// operator may read it: the provider's error type, code and message, never
// the request that was sent (no key, no customer data). The Stripe adapter
// wraps Stripe's errors in it.
type ProviderError struct {
	Type, Code, Message string
	Err                 error // the provider client's own error
}

// Unwrap is the provider client's own error.
func (e *ProviderError) Unwrap() error { return e.Err }

func (e *ProviderError) Error() string {
	s := e.Type
	if e.Code != "" {
		s += "/" + e.Code
	}
	if s == "" {
		return e.Message
	}
	return s + ": " + e.Message
}

// LinkFailure is what is kept of a failed CreateLink (db.RecordLinkError).
type LinkFailure struct {
	Kind, Code, Message string
}

// LinkFailureOf describes a CreateLink error for the record and the
// operator: the provider's own type, code and message when it answered;
// "timeout" or "connection" when it could not be reached. Anything in the
// message that looks like a credential (a Stripe key, an Authorization
// value) is masked: a provider may quote the key it refused.
func LinkFailureOf(err error) LinkFailure {
	var pe *ProviderError
	var ne net.Error
	var f LinkFailure
	switch {
	case errors.As(err, &pe):
		f = LinkFailure{Kind: pe.Type, Code: pe.Code, Message: pe.Message}
	case errors.Is(err, context.DeadlineExceeded):
		f = LinkFailure{Kind: "timeout", Message: err.Error()}
	case errors.As(err, &ne):
		f = LinkFailure{Kind: "connection", Message: err.Error()}
	default:
		f = LinkFailure{Kind: "error", Message: err.Error()}
	}
	f.Message = MaskSecrets(f.Message)
	return f
}

var (
	secretKeys   = regexp.MustCompile(`\b((?:sk|rk|pk|whsec)_(?:test_|live_)?)[A-Za-z0-9]{4,}`)
	secretBearer = regexp.MustCompile(`(?i)\b(bearer|basic)\s+[^\s'"]+`)
)

// MaskSecrets hides credentials in a provider's message: Stripe keys
// ("sk_test_…" becomes "sk_test_****") and Authorization values.
func MaskSecrets(s string) string {
	s = secretKeys.ReplaceAllString(s, "${1}****")
	return secretBearer.ReplaceAllString(s, "$1 ****")
}

// Text is the failure in one line.
func (f LinkFailure) Text() string {
	return (&db.InvoiceLinkError{Kind: f.Kind, Code: f.Code, Message: f.Message}).Text()
}

// ErrPaymentsDisabled is returned by DisabledPayments.CreateLink.
var ErrPaymentsDisabled = errors.New("payments: online payment is not enabled")

// DisabledPayments is the payment provider when ENABLE_STRIPE is off:
// invoices are issued without a link.
type DisabledPayments struct{}

// Enabled is false.
func (DisabledPayments) Enabled() bool { return false }

// CreateLink always fails with ErrPaymentsDisabled.
func (DisabledPayments) CreateLink(context.Context, LinkRequest) (Link, error) {
	return Link{}, ErrPaymentsDisabled
}

// PaymentEvents verifies and reads the events a payment provider's webhook
// delivers (agents/stripe.Webhook).
type PaymentEvents interface {
	// Read checks the signature h carries for payload against secret and
	// its timestamp against now, then reads the event. An error refuses the
	// delivery: ErrPaymentEventUnsigned, ErrPaymentEventSignature,
	// ErrPaymentEventStale, a *PaymentEventVersionError, or another for a
	// signed delivery that is not an event at all.
	Read(h http.Header, payload []byte, secret string, now time.Time) (SignedPaymentEvent, error)
}

// SignedPaymentEvent is a webhook event whose signature verified.
type SignedPaymentEvent struct {
	ID, Type string // the provider's event id and type; ID may be ""
	// Payment is what the event means for an invoice, when Err is nil.
	Payment db.PaymentEvent
	// Err says why the event cannot be read as a payment: no id, or an
	// object that cannot be read. A signed event with an id is recorded as
	// unprocessable (PaymentLedger.Unreadable) rather than refused.
	Err error
}

// Refusals of a payment webhook delivery (PaymentEvents.Read).
var (
	ErrPaymentEventUnsigned  = errors.New("payment webhook: the delivery is not signed")
	ErrPaymentEventSignature = errors.New("payment webhook: the signature does not match the secret")
	ErrPaymentEventStale     = errors.New("payment webhook: the signature's timestamp lies outside the tolerance")
)

// PaymentEventVersionError is a signed event in another API version than
// the one the provider's adapter reads: the webhook endpoint must be
// recreated in that version.
type PaymentEventVersionError struct {
	EventID, Version, Want string
	Err                    error
}

func (e *PaymentEventVersionError) Error() string {
	return "payment webhook: event " + e.EventID + " is in API version " + e.Version + ", not " + e.Want + ": " + e.Err.Error()
}

func (e *PaymentEventVersionError) Unwrap() error { return e.Err }
