package agents

import (
	"context"
	"errors"
)

// PaymentLinks creates the hosted payment page of an invoice (a Stripe
// Price and Payment Link in production).
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
