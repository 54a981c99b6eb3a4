package agents

import (
	"context"
	"fmt"
	"time"

	"github.com/hossagent/hossagent/db"
)

// CompanyInfo is who the business is, as clients read it on e-mails,
// documents and the portal (COMPANY_NAME, COMPANY_POSTAL_ADDRESS,
// BILLING_EMAIL).
type CompanyInfo struct {
	Name          string
	PostalAddress string // may hold line breaks
	BillingEmail  string
}

// DocumentLine is one line of an invoice document: one task.
type DocumentLine struct {
	Title       string // the task kind's title ("Market research brief")
	Description string
	Amount      db.Money
}

// InvoiceDocument is everything an invoice or receipt PDF shows. It is a
// pure function of the invoice's state (no clock, no randomness), so the
// same state always renders to the same bytes.
type InvoiceDocument struct {
	Company  CompanyInfo
	Client   string // the client's company
	ClientTo string // the client's contact address
	Number   string
	Status   string // db.Invoice* status
	IssuedAt time.Time
	DueAt    time.Time
	PaidAt   time.Time // zero while unpaid
	Lines    []DocumentLine
	Total    db.Money
	// PaymentURL is the Stripe payment link, "" when there is none; PortalURL
	// is the portal's sign-in page (no secret), where the client pays too.
	PaymentURL string
	PortalURL  string
	PayerEmail string // who paid, for a receipt; "" when unknown
}

// Documents renders invoice and receipt PDFs (the invoicepdf adapter).
// Both must return identical bytes for identical documents.
type Documents interface {
	InvoicePDF(d InvoiceDocument) ([]byte, error)
	ReceiptPDF(d InvoiceDocument) ([]byte, error)
}

// KindTitles names task kinds as clients read them; an unknown kind reads
// as itself.
type KindTitles func(kind string) string

// Titles is the catalogue's kind titles.
func (c Catalogue) Titles() KindTitles {
	return func(kind string) string {
		if k, ok := c.Kind(kind); ok && k.Name != "" {
			return k.Name
		}
		return kind
	}
}

// NewInvoiceDocument is the document of invoice inv of customer c with its
// lines, as company issues it; portalURL is the portal's sign-in page.
func NewInvoiceDocument(company CompanyInfo, titles KindTitles, inv db.Invoice, c db.Customer, lines []db.InvoiceLineRow, portalURL string) InvoiceDocument {
	d := InvoiceDocument{
		Company: company, Client: c.Company, ClientTo: c.ContactEmail,
		Number: inv.NumberOrDraft(), Status: inv.Status, Total: inv.Amount(),
		PaymentURL: inv.PaymentURL, PortalURL: portalURL, PayerEmail: inv.PayerEmail,
	}
	if inv.IssuedAt != nil {
		d.IssuedAt = inv.IssuedAt.UTC()
	}
	if inv.DueAt != nil {
		d.DueAt = inv.DueAt.UTC()
	}
	if inv.PaidAt != nil {
		d.PaidAt = inv.PaidAt.UTC()
	}
	for _, l := range lines {
		title := l.TaskKind
		if titles != nil {
			title = titles(l.TaskKind)
		}
		d.Lines = append(d.Lines, DocumentLine{Title: title, Description: l.Description, Amount: db.Money{Cents: l.AmountCents, Currency: inv.Currency}})
	}
	return d
}

// InvoiceFiles reads invoice id and renders its documents for downloads
// (the portal and the admin): the invoice PDF, and the receipt PDF once it
// is paid (nil before).
type InvoiceFiles struct {
	Store     *db.DB
	Docs      Documents
	Company   CompanyInfo
	Titles    KindTitles
	PortalURL string // the portal's sign-in page
}

// Document reads invoice id's document.
func (f *InvoiceFiles) Document(ctx context.Context, id int64) (InvoiceDocument, error) {
	inv, c, lines, err := f.Store.InvoiceDocumentData(ctx, id)
	if err != nil {
		return InvoiceDocument{}, err
	}
	return NewInvoiceDocument(f.Company, f.Titles, *inv, *c, lines, f.PortalURL), nil
}

// InvoicePDF renders invoice id.
func (f *InvoiceFiles) InvoicePDF(ctx context.Context, id int64) ([]byte, error) {
	d, err := f.Document(ctx, id)
	if err != nil {
		return nil, err
	}
	return f.Docs.InvoicePDF(d)
}

// ReceiptPDF renders the receipt of paid invoice id; db.ErrNotFound
// (wrapped) when it is not paid.
func (f *InvoiceFiles) ReceiptPDF(ctx context.Context, id int64) ([]byte, error) {
	d, err := f.Document(ctx, id)
	if err != nil {
		return nil, err
	}
	if d.Status != db.InvoicePaid && d.Status != db.InvoiceRefunded {
		return nil, fmt.Errorf("invoice %d has no receipt: %w", id, db.ErrNotFound)
	}
	return f.Docs.ReceiptPDF(d)
}

// PortalLinkRequester mails a client a fresh portal link when they ask for
// one on the portal's sign-in page (the Collections cycle). An unknown or
// flagged address sends nothing and is no error, so that the page answers
// the same either way.
type PortalLinkRequester interface {
	RequestPortalLink(ctx context.Context, email string) error
}

// PortalLinkPlaceholder stands in a stored client e-mail (text and HTML)
// where the client's portal link goes: the link's token must not be
// stored, so the sender makes the link when it sends and puts it here. The
// composer removes the placeholder from every text it did not write.
const PortalLinkPlaceholder = "[[portal-link]]"
