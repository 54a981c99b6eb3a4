package views

import (
	"net/url"
	"strconv"
	"time"

	"github.com/a-h/templ"
)

// The view models of the clients' outbox in the admin: the list at
// /admin/client-mail, one message as the client sees it, the latest
// messages of a customer or an invoice, a customer's mail flag and the
// control room's panel.

// PortalLinkShown is what the admin shows where a stored client e-mail
// holds the portal link's placeholder: the link is made when the e-mail is
// sent, and its token is never stored.
const PortalLinkShown = "[personal portal link — made when the e-mail is sent]"

// ClientMessageRow is one client e-mail in a list (no body).
type ClientMessageRow struct {
	ID          int64
	CustomerID  int64
	InvoiceID   *int64
	Kind        string
	ToAddr      string
	Subject     string
	Status      string // the stored status (queued, sending, sent, dry_run, failed, suppressed)
	NeedsReview bool
	Error       string
	Attempts    int
	Attachments int
	CreatedAt   time.Time
	SentAt      *time.Time
}

// Time is when the message left (or was recorded), else when it was queued.
func (m ClientMessageRow) Time() time.Time {
	if m.SentAt != nil {
		return *m.SentAt
	}
	return m.CreatedAt
}

// ClientMailFilter narrows the list to one customer or one invoice (0:
// every message).
type ClientMailFilter struct {
	CustomerID int64
	InvoiceID  int64
}

// ClientMailListPage is the clients' outbox at /admin/client-mail, newest
// first, a page at a time (?before=<id>).
type ClientMailListPage struct {
	Meta
	Filter ClientMailFilter
	Rows   []ClientMessageRow
	// Before is the cursor this page was read at (0: the newest); Next is
	// the cursor of the following page, 0 when this is the last.
	Before, Next int64
	// Pending is what is still to send; SentHour and SentDay what left (or
	// was recorded in DRY_RUN) in the last hour and day.
	Pending, SentHour, SentDay int
	DryRun                     bool // EMAIL_MODE is DRY_RUN: nothing leaves
}

// ClientAttachmentRow is a file of a client message, without its bytes.
type ClientAttachmentRow struct {
	ID          int64
	Filename    string
	ContentType string
	Size        int
}

// ClientMessageView is one client e-mail as its client sees it. Text and
// HTML have the portal link's placeholder replaced by PortalLinkShown.
type ClientMessageView struct {
	ClientMessageRow
	From, ReplyTo string
	Text, HTML    string
	ProviderID    string
	DedupeKey     string
	SendingAt     *time.Time
	UpdatedAt     time.Time
}

// ClientMessagePage is one client e-mail at /admin/client-mail/{id}.
type ClientMessagePage struct {
	Meta
	Message     ClientMessageView
	Attachments []ClientAttachmentRow
}

// ClientMailPanel is the latest client e-mails of a customer or an invoice
// on its record page, with a link to all of them.
type ClientMailPanel struct {
	Filter ClientMailFilter
	Rows   []ClientMessageRow
	More   bool // there are older ones than these
}

// MailFlagPanel is a customer's client-address flag: why Collections must
// not write to it (a hard bounce, a complaint) and since when, with the
// button that clears it.
type MailFlagPanel struct {
	CustomerID  int64
	Flag        string // "" when the address is fine
	FlaggedAt   *time.Time
	Result      string // what the last action did, "" on a plain view
	ResultClass string // ok or bad
}

// AdminClientMailPanel is the control room's client mail summary.
type AdminClientMailPanel struct {
	Pending, SentDay int
	DryRun           bool
}

// ClientMailStatus is a client message's status as the admin reads it.
func ClientMailStatus(status string, needsReview bool) string {
	switch {
	case needsReview:
		return "needs review"
	case status == MessageDryRun:
		return "recorded (DRY_RUN)"
	}
	return status
}

// clientMailBadge is the badge style of a client message's status.
func clientMailBadge(m ClientMessageRow) string {
	if m.NeedsReview {
		return MessageFailed
	}
	return m.Status
}

// ClientMailURL is the list, filtered and from cursor before (0: newest).
func ClientMailURL(f ClientMailFilter, before int64) string {
	v := url.Values{}
	switch {
	case f.InvoiceID > 0:
		v.Set("invoice", strconv.FormatInt(f.InvoiceID, 10))
	case f.CustomerID > 0:
		v.Set("customer", strconv.FormatInt(f.CustomerID, 10))
	}
	if before > 0 {
		v.Set("before", strconv.FormatInt(before, 10))
	}
	if len(v) == 0 {
		return "/admin/client-mail"
	}
	return "/admin/client-mail?" + v.Encode()
}

// clientMailHref is ClientMailURL as a link.
func clientMailHref(f ClientMailFilter, before int64) templ.SafeURL {
	return templ.URL(ClientMailURL(f, before))
}

// clientMessageHref links to one client message.
func clientMessageHref(id int64) templ.SafeURL {
	return templ.URL("/admin/client-mail/" + strconv.FormatInt(id, 10))
}

// clientAttachmentHref links to the download of a message's file.
func clientAttachmentHref(messageID, id int64) templ.SafeURL {
	return templ.URL("/admin/client-mail/" + strconv.FormatInt(messageID, 10) + "/attachments/" + strconv.FormatInt(id, 10))
}

// mailFlagClearURL is the POST address that clears customer id's mail flag.
func mailFlagClearURL(id int64) string {
	return "/admin/customers/" + strconv.FormatInt(id, 10) + "/mail-flag/clear"
}

// invoiceFileHref links to an invoice's document (invoice.pdf, receipt.pdf).
func invoiceFileHref(id int64, name string) templ.SafeURL {
	return templ.URL("/admin/invoices/" + strconv.FormatInt(id, 10) + "/" + name)
}

// hasReceipt reports whether an invoice of status has a receipt document.
func hasReceipt(status string) bool { return status == InvoicePaid || status == InvoiceRefunded }

// fmtBytes is a file's size for people.
func fmtBytes(n int) string {
	switch {
	case n < 1024:
		return strconv.Itoa(n) + " B"
	case n < 1024*1024:
		return strconv.FormatFloat(float64(n)/1024, 'f', 1, 64) + " KiB"
	}
	return strconv.FormatFloat(float64(n)/(1024*1024), 'f', 1, 64) + " MiB"
}
