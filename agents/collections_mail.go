package agents

import (
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"

	"github.com/hossagent/hossagent/db"
)

// The client e-mails: each is plain text and the same message as HTML,
// written from the store's case alone (no network, no clock beyond the
// injected one), so a job composes the same e-mail however often it runs.
// Every text taken from the store passes through clean, so none can carry
// the portal link placeholder.

// mailData is what the HTML template of a client e-mail reads.
type mailData struct {
	Company    CompanyInfo
	Heading    string
	Paragraphs []string
	Lines      []mailLine
	Total      string
	PayURL     template.URL // the Stripe payment link, "" when there is none
	PortalURL  template.URL // the placeholder; the sender puts the link there
	PortalText string
	Closing    string
}

type mailLine struct{ Title, Description, Amount string }

var clientMailHTML = template.Must(template.New("client").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>{{.Heading}}</title></head>
<body style="margin:0;padding:0;background:#f4f4f5;font-family:Helvetica,Arial,sans-serif;color:#18181b">
<div style="max-width:560px;margin:0 auto;padding:24px 16px">
<p style="font-size:13px;color:#52525b;margin:0 0 16px">{{.Company.Name}}</p>
<h1 style="font-size:20px;margin:0 0 16px">{{.Heading}}</h1>
{{range .Paragraphs}}<p style="font-size:15px;line-height:1.5;margin:0 0 12px">{{.}}</p>
{{end}}{{if .Lines}}<table role="presentation" style="width:100%;border-collapse:collapse;margin:8px 0 16px;font-size:14px">
{{range .Lines}}<tr><td style="padding:8px 0;border-bottom:1px solid #e4e4e7"><strong>{{.Title}}</strong>{{if .Description}}<br><span style="color:#52525b">{{.Description}}</span>{{end}}</td><td style="padding:8px 0;border-bottom:1px solid #e4e4e7;text-align:right;white-space:nowrap">{{.Amount}}</td></tr>
{{end}}{{if .Total}}<tr><td style="padding:8px 0"><strong>Total</strong></td><td style="padding:8px 0;text-align:right;white-space:nowrap"><strong>{{.Total}}</strong></td></tr>{{end}}
</table>{{end}}
{{if .PayURL}}<p style="margin:16px 0"><a href="{{.PayURL}}" style="display:inline-block;background:#18181b;color:#ffffff;text-decoration:none;padding:12px 20px;border-radius:6px;font-weight:bold">PAY NOW</a></p>
{{end}}{{if .PortalURL}}<p style="font-size:15px;margin:0 0 12px"><a href="{{.PortalURL}}">{{.PortalText}}</a></p>
{{end}}{{if .Closing}}<p style="font-size:15px;margin:0 0 12px">{{.Closing}}</p>
{{end}}<hr style="border:none;border-top:1px solid #e4e4e7;margin:24px 0 12px">
<p style="font-size:12px;color:#71717a;margin:0">{{.Company.Name}}{{if .Company.PostalAddress}} · {{.Company.PostalAddress}}{{end}}{{if .Company.BillingEmail}} · {{.Company.BillingEmail}}{{end}}</p>
</div></body></html>
`))

// clean is a text from the store as an e-mail may carry it: without the
// placeholder, on one line where lines do not belong.
func clean(s string) string {
	// Until none is left: removing one may join the halves of another.
	for strings.Contains(s, PortalLinkPlaceholder) {
		s = strings.ReplaceAll(s, PortalLinkPlaceholder, "")
	}
	return s
}

func (c *CollectionsCycle) company() CompanyInfo {
	co := c.opts.Company
	co.Name, co.PostalAddress, co.BillingEmail = clean(co.Name), clean(strings.ReplaceAll(co.PostalAddress, "\n", ", ")), clean(co.BillingEmail)
	return co
}

// render builds the draft's text and HTML from d.
func render(kind, key, subject string, d mailData, files ...db.ClientAttachment) (*db.ClientDraft, error) {
	var t strings.Builder
	t.WriteString(d.Heading + "\n\n")
	for _, p := range d.Paragraphs {
		t.WriteString(p + "\n\n")
	}
	if len(d.Lines) > 0 {
		for _, l := range d.Lines {
			t.WriteString("- " + l.Title)
			if l.Description != "" {
				t.WriteString(" (" + l.Description + ")")
			}
			t.WriteString(": " + l.Amount + "\n")
		}
		if d.Total != "" {
			t.WriteString("Total: " + d.Total + "\n")
		}
		t.WriteString("\n")
	}
	if d.PayURL != "" {
		t.WriteString("PAY NOW: " + string(d.PayURL) + "\n\n")
	}
	if d.PortalURL != "" {
		t.WriteString(d.PortalText + ": " + string(d.PortalURL) + "\n\n")
	}
	if d.Closing != "" {
		t.WriteString(d.Closing + "\n\n")
	}
	t.WriteString("-- \n" + d.Company.Name + "\n")
	if d.Company.PostalAddress != "" {
		t.WriteString(d.Company.PostalAddress + "\n")
	}
	if d.Company.BillingEmail != "" {
		t.WriteString(d.Company.BillingEmail + "\n")
	}
	var h strings.Builder
	if err := clientMailHTML.Execute(&h, d); err != nil {
		return nil, fmt.Errorf("collections: unable to render the %s e-mail: %w", kind, err)
	}
	return &db.ClientDraft{Kind: kind, DedupeKey: key, Subject: subject, Text: t.String(), HTML: h.String(), Attachments: files}, nil
}

func day(t time.Time) string { return t.UTC().Format("2 January 2006") }

func (c *CollectionsCycle) welcomeMail(cs db.CollectionCase) (*db.ClientDraft, error) {
	co := c.company()
	d := mailData{
		Company: co, Heading: "Welcome to " + co.Name,
		Paragraphs: []string{
			"Hello " + clean(cs.Customer.Company) + ",",
			"Thank you for working with us. " + co.Name + " will take care of the work below; each piece is delivered in your client portal as soon as it is done, and billed once it is finished.",
		},
		PortalURL: template.URL(PortalLinkPlaceholder), PortalText: "Open your client portal",
		Closing: "Questions about your plan or an invoice? Write to " + co.BillingEmail + ".",
	}
	if plan := clean(cs.Customer.Plan); plan != "" {
		line := "Your plan (" + plan + ") includes:"
		if c.opts.Plans != nil {
			if p, ok := c.opts.Plans(cs.Customer.Plan); ok {
				line = "Your plan, " + clean(p.DisplayTitle()) + ", includes:"
				if p.Billing == db.BillingMonthly {
					line = "Your plan, " + clean(p.DisplayTitle()) + ", renews every month and includes each time:"
				}
			}
		}
		d.Paragraphs = append(d.Paragraphs, line)
	}
	for _, t := range cs.Tasks {
		d.Lines = append(d.Lines, mailLine{Title: clean(c.title(t.Kind)), Description: clean(t.Description), Amount: t.Reward().String()})
	}
	return render(db.ClientWelcome, "welcome:"+strconv.FormatInt(cs.Customer.ID, 10), "Welcome to "+co.Name, d)
}

func (c *CollectionsCycle) title(kind string) string {
	if c.opts.Titles != nil {
		return c.opts.Titles(kind)
	}
	return kind
}

// invoiceData is the part every invoice-related e-mail shares.
func (c *CollectionsCycle) invoiceData(cs db.CollectionCase, heading string, paragraphs ...string) mailData {
	inv := cs.Invoice
	d := mailData{Company: c.company(), Heading: heading, Paragraphs: paragraphs, Total: inv.Amount().String(),
		PortalURL: template.URL(PortalLinkPlaceholder), PortalText: "See your invoices in your client portal"}
	for _, l := range cs.Lines {
		d.Lines = append(d.Lines, mailLine{Title: clean(c.title(l.TaskKind)), Description: clean(l.Description),
			Amount: db.Money{Cents: l.AmountCents, Currency: inv.Currency}.String()})
	}
	return d
}

// document is the case's invoice as a PDF document.
func (c *CollectionsCycle) document(cs db.CollectionCase) InvoiceDocument {
	co := c.opts.Company
	return NewInvoiceDocument(co, c.opts.Titles, *cs.Invoice, cs.Customer, cs.Lines, c.opts.BaseURL+"/portal")
}

func (c *CollectionsCycle) invoiceFile(cs db.CollectionCase) (db.ClientAttachment, error) {
	if c.opts.Docs == nil {
		return db.ClientAttachment{}, fmt.Errorf("collections: no document renderer")
	}
	pdf, err := c.opts.Docs.InvoicePDF(c.document(cs))
	if err != nil {
		return db.ClientAttachment{}, fmt.Errorf("collections: unable to render invoice %d: %w", cs.Invoice.ID, err)
	}
	return db.ClientAttachment{Filename: "invoice-" + fileSafe(cs.Invoice.NumberOrDraft()) + ".pdf", ContentType: "application/pdf", Content: pdf}, nil
}

func (c *CollectionsCycle) invoiceMail(cs db.CollectionCase) (*db.ClientDraft, error) {
	inv := cs.Invoice
	number := clean(inv.NumberOrDraft())
	due := ""
	if inv.DueAt != nil {
		due = day(*inv.DueAt)
	}
	issued := ""
	if inv.IssuedAt != nil {
		issued = day(*inv.IssuedAt)
	}
	d := c.invoiceData(cs, "Invoice "+number,
		"Hello "+clean(cs.Customer.Company)+",",
		"Here is invoice "+number+", issued on "+issued+", for "+inv.Amount().String()+", due on "+due+". The invoice is attached as a PDF.")
	d.PayURL = payURL(inv.PaymentURL)
	if inv.PaymentURL == "" {
		d.Paragraphs = append(d.Paragraphs, "You can pay it from your client portal.")
	}
	file, err := c.invoiceFile(cs)
	if err != nil {
		return nil, err
	}
	subject := "Invoice " + number + " from " + c.company().Name + ": " + inv.Amount().String() + " due " + due
	return render(db.ClientInvoice, "invoice:"+strconv.FormatInt(inv.ID, 10), subject, d, file)
}

func (c *CollectionsCycle) receiptMail(cs db.CollectionCase) (*db.ClientDraft, error) {
	inv := cs.Invoice
	number := clean(inv.NumberOrDraft())
	paid := ""
	if inv.PaidAt != nil {
		paid = day(*inv.PaidAt)
	}
	d := c.invoiceData(cs, "Receipt for invoice "+number,
		"Hello "+clean(cs.Customer.Company)+",",
		"We received your payment of "+inv.Amount().String()+" for invoice "+number+" on "+paid+". Thank you. Your receipt is attached as a PDF.")
	d.Closing = "Nothing more is due on this invoice."
	if c.opts.Docs == nil {
		return nil, fmt.Errorf("collections: no document renderer")
	}
	pdf, err := c.opts.Docs.ReceiptPDF(c.document(cs))
	if err != nil {
		return nil, fmt.Errorf("collections: unable to render the receipt of invoice %d: %w", inv.ID, err)
	}
	file := db.ClientAttachment{Filename: "receipt-" + fileSafe(inv.NumberOrDraft()) + ".pdf", ContentType: "application/pdf", Content: pdf}
	subject := "Receipt: " + inv.Amount().String() + " paid for invoice " + number
	return render(db.ClientReceipt, "receipt:"+strconv.FormatInt(inv.ID, 10), subject, d, file)
}

func (c *CollectionsCycle) reminderMail(cs db.CollectionCase) (*db.ClientDraft, error) {
	inv := cs.Invoice
	number := clean(inv.NumberOrDraft())
	due := ""
	if inv.DueAt != nil {
		due = day(*inv.DueAt)
	}
	n := stepDays(cs.Job.Step)
	var heading, subject string
	switch {
	case n < 0:
		heading = "Invoice " + number + " is due on " + due
		subject = "Reminder: invoice " + number + " (" + inv.Amount().String() + ") is due on " + due
	case n == 0:
		heading = "Invoice " + number + " is due today"
		subject = "Invoice " + number + " (" + inv.Amount().String() + ") is due today"
	default:
		heading = "Invoice " + number + " is " + strconv.Itoa(n) + " days overdue"
		subject = "Overdue: invoice " + number + " (" + inv.Amount().String() + ") was due on " + due
	}
	d := c.invoiceData(cs, heading,
		"Hello "+clean(cs.Customer.Company)+",",
		"This is a reminder that invoice "+number+" for "+inv.Amount().String()+" is due on "+due+". If you have paid it already, thank you, and please ignore this message.")
	d.PayURL = payURL(inv.PaymentURL)
	file, err := c.invoiceFile(cs)
	if err != nil {
		return nil, err
	}
	key := "reminder:" + strconv.FormatInt(inv.ID, 10) + ":" + cs.Job.Step
	return render(db.ClientReminder, key, subject, d, file)
}

func (c *CollectionsCycle) portalLinkMail(cu db.Customer) (*db.ClientDraft, error) {
	co := c.company()
	days := int(c.opts.LinkTTL / (24 * time.Hour))
	d := mailData{
		Company: co, Heading: "Your link to the " + co.Name + " client portal",
		Paragraphs: []string{
			"Hello " + clean(cu.Company) + ",",
			"Someone asked for a new link to your client portal. The link below opens it for " + strconv.Itoa(days) + " days. If it was not you, ignore this message: the link works only for you.",
		},
		PortalURL: template.URL(PortalLinkPlaceholder), PortalText: "Open your client portal",
	}
	return render(db.ClientPortalLink, "", "Your link to the "+co.Name+" client portal", d)
}

// payURL is an invoice's payment link as an e-mail may carry it: an http(s)
// URL only (it comes from Stripe; anything else is left out).
func payURL(u string) template.URL {
	if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
		return template.URL(u)
	}
	return ""
}

// fileSafe is an invoice number as a file name may carry it.
func fileSafe(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "invoice"
	}
	return b.String()
}
