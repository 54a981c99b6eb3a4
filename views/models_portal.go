package views

import (
	"strconv"
	"time"

	"github.com/a-h/templ"
)

// The client portal's pages (portal.templ, portal_pages.templ): the
// portal at /portal behind a session cookie, one invoice at
// /portal/invoices/{id}, the sign-in page where a client asks for a fresh
// link, and /paid after Stripe.

// PortalProvider is who the business is, as the client reads it
// (COMPANY_NAME, COMPANY_POSTAL_ADDRESS, BILLING_EMAIL).
type PortalProvider struct {
	Name          string
	PostalAddress []string // one line each
	BillingEmail  string
}

// PortalHeadline is what the client owes and by when: Due is every open
// invoice's amount, DueBy the earliest due date of them; Overdue is the
// part past due, OverdueDays how long the oldest of it is overdue.
type PortalHeadline struct {
	Due         Totals
	DueBy       *time.Time
	Overdue     Totals
	OverdueDays int
	OpenCount   int64
}

// PortalInvoiceRow is an invoice as its client sees it.
type PortalInvoiceRow struct {
	ID          int64
	Label       string // number, or DRAFT
	Amount      Money
	Status      string
	Overdue     bool
	OverdueDays int
	PaymentURL  string
	IssuedAt    *time.Time
	DueAt       *time.Time
	PaidAt      *time.Time
	HasReceipt  bool // paid or refunded: a receipt can be downloaded
}

// PortalWorkItem is a task as its client sees it: its kind's title and its
// deliverable, rendered from Markdown without raw HTML (ResultHTML is safe
// to write as it is; the app renders it).
type PortalWorkItem struct {
	Title       string
	Description string
	Status      string
	ResultHTML  string
	CompletedAt *time.Time
}

// PortalHomePage is the client's portal at /portal.
type PortalHomePage struct {
	Meta
	Customer    PortalCustomer
	Provider    PortalProvider
	Headline    PortalHeadline
	Summary     AccountSummary
	Outstanding []PortalInvoiceRow // open invoices, earliest due first
	History     []PortalInvoiceRow // paid and refunded invoices
	Work        []PortalWorkItem   // newest first
}

// PortalLine is one line of an invoice on its page: one task.
type PortalLine struct {
	Title       string
	Description string
	Amount      Money
}

// PortalInvoicePage is one invoice at /portal/invoices/{id}.
type PortalInvoicePage struct {
	Meta
	Customer PortalCustomer
	Provider PortalProvider
	Invoice  PortalInvoiceRow
	Lines    []PortalLine
}

// PortalSignInPage is the portal without a session: the form where a
// client asks for a fresh link, under a heading that says why they are here
// (signed out, an expired, withdrawn or unknown link, a link on its way).
type PortalSignInPage struct {
	Meta
	Provider PortalProvider
	Status   int    // the answer's status (200, 404, 410, 429, 503)
	Heading  string // "Sign in to your client portal", "This link has expired", …
	Message  string
	Email    string // the address typed, kept when the form comes back
	Error    string // why the address was refused
	Sent     bool   // the "a new link is on its way" answer
	// LinkDays is how long a link in an e-mail works (PORTAL_LINK_TTL).
	LinkDays int
	// Form shows the request-a-link form.
	Form bool
}

// PaidPage is where Stripe sends a payer back (/paid). State is
// "paid" (the payment landed: Invoice says which), "confirming" (Stripe has
// not confirmed yet; Invoice is set when it can be told which), or
// "thanks" (nothing can be told). RefreshURL, when set, is where the page
// reloads itself to in RefreshSeconds.
type PaidPage struct {
	Meta
	Provider       PortalProvider
	State          string
	Invoice        *PortalInvoiceRow
	RefreshURL     string
	RefreshSeconds int
	// GaveUp says the page stopped refreshing: Stripe is taking longer
	// than usual.
	GaveUp bool
}

// clientDate is a date as a client reads it: "4 Dec 2026".
func clientDate(t *time.Time) string {
	if t == nil || t.IsZero() {
		return dash
	}
	return t.UTC().Format("2 Jan 2006")
}

// dueByText says by when the money is due, or since when it was.
func dueByText(h PortalHeadline, now time.Time) string {
	if h.DueBy == nil {
		return ""
	}
	if now.After(*h.DueBy) {
		return "was due on " + clientDate(h.DueBy)
	}
	return "due by " + clientDate(h.DueBy)
}

// daysText is a count of days: "1 day", "12 days".
func daysText(n int) string {
	if n == 1 {
		return "1 day"
	}
	return strconv.Itoa(n) + " days"
}

// invoicePageURL is the portal page of invoice id.
func invoicePageURL(id int64) templ.SafeURL {
	return templ.SafeURL("/portal/invoices/" + strconv.FormatInt(id, 10))
}

// invoicePDFURL and receiptURL are invoice id's documents.
func invoicePDFURL(id int64) templ.SafeURL {
	return templ.SafeURL("/portal/invoices/" + strconv.FormatInt(id, 10) + "/invoice.pdf")
}

func receiptURL(id int64) templ.SafeURL {
	return templ.SafeURL("/portal/invoices/" + strconv.FormatInt(id, 10) + "/receipt.pdf")
}

// mailtoURL is a mailto: link to addr (a configured address).
func mailtoURL(addr string) templ.SafeURL {
	return templ.URL("mailto:" + addr)
}
