// Package invoicepdf renders HossAgent's invoice and receipt PDFs: the
// agents.Documents adapter, whose bytes are attached to client e-mails and
// downloaded from the portal and the admin.
//
// It uses codeberg.org/go-pdf/fpdf, the maintained successor of
// github.com/go-pdf/fpdf (and of jung-kurt/gofpdf before it), because it is
// pure Go with no cgo (the binary still builds and cross-compiles with no
// system library), maintained, small (one package, a few dependencies, no
// browser or renderer process), and writes with the PDF core fonts
// (Helvetica), so no font file is read or embedded and a document is a few
// kilobytes. Its output can be made fully deterministic, which the port
// requires.
//
// Determinism: the same document renders to the same bytes in any process
// and at any time. The PDF's creation and modification dates come from the
// document (the issue date for an invoice, the payment date for a receipt;
// the Unix epoch when it has none), never the clock; catalogs are sorted;
// compression is set per document rather than taken from fpdf's package
// defaults; fpdf writes no file ID for an unencrypted document; nothing is
// random; and no date is formatted in the local time zone.
//
// Text: the core fonts speak cp1252. Every string goes through fpdf's
// cp1252 translator, so accented Latin text renders; a character outside
// cp1252 (Ω, 東京, invalid UTF-8) becomes '?', and control characters a
// space. Nothing panics on any input: fpdf's errors (Error) come back as
// errors, and a panic inside fpdf is recovered into one.
//
// Text (and pdftext.Text, for tests in package agents, which this package
// imports) reads the shown strings back.
package invoicepdf

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"codeberg.org/go-pdf/fpdf"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/agents/invoicepdf/pdftext"
	"github.com/hossagent/hossagent/db"
)

// DateLayout is how the documents write dates (UTC).
const DateLayout = "2006-01-02"

// Renderer renders invoice and receipt PDFs. It holds no state: one
// Renderer serves any number of goroutines.
type Renderer struct{}

var _ agents.Documents = (*Renderer)(nil)

// New returns a Renderer.
func New() *Renderer { return &Renderer{} }

// InvoicePDF renders d as an invoice.
func (*Renderer) InvoicePDF(d agents.InvoiceDocument) ([]byte, error) {
	return render(d, kindInvoice)
}

// ReceiptPDF renders d as the receipt of its payment.
func (*Renderer) ReceiptPDF(d agents.InvoiceDocument) ([]byte, error) {
	return render(d, kindReceipt)
}

// Text returns the strings a PDF of this package shows, in order, one a
// line, as UTF-8 (see pdftext.Text).
func Text(pdf []byte) (string, error) { return pdftext.Text(pdf) }

type kind int

const (
	kindInvoice kind = iota
	kindReceipt
)

// Page geometry, in millimetres (A4 portrait).
const (
	pageW     = 210.0
	pageH     = 297.0
	margin    = 18.0
	contentW  = pageW - 2*margin
	bodyEnd   = pageH - 22 // no body text below this
	footerY   = pageH - 14
	lineH     = 5.0
	colTitle  = 50.0
	colAmount = 36.0
	colDesc   = contentW - colTitle - colAmount
	rightW    = 72.0
	rightX    = pageW - margin - rightW
	leftW     = rightX - margin - 6
	family    = "Helvetica"
)

// render builds one document.
func render(d agents.InvoiceDocument, k kind) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("invoicepdf: rendering failed: %v", p)
		}
	}()
	pdf := fpdf.New("P", "mm", "A4", "")
	// Per document, so that fpdf's package-wide defaults (which any code in
	// the process could change) do not reach these bytes.
	pdf.SetCompression(true)
	pdf.SetCatalogSort(true)
	stamp := documentDate(d, k)
	pdf.SetCreationDate(stamp)
	pdf.SetModificationDate(stamp)
	pdf.SetMargins(margin, margin, margin)
	pdf.SetAutoPageBreak(false, 0) // pages are broken here, to repeat the table header
	pdf.SetLineWidth(0.2)
	g := &doc{pdf: pdf, tr: pdf.UnicodeTranslatorFromDescriptor("cp1252"), d: d, k: k}
	g.title = "Invoice"
	if k == kindReceipt {
		g.title = "Receipt"
	}
	pdf.SetProducer("HossAgent", false)
	pdf.SetTitle(g.enc(g.title+" "+d.Number), false)
	pdf.SetAuthor(g.enc(d.Company.Name), false)
	pdf.SetFooterFunc(g.footer)
	g.newPage(true)
	g.heading()
	g.table()
	g.total()
	if k == kindInvoice {
		g.invoiceClosing()
	} else {
		g.receiptClosing()
	}
	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		return nil, fmt.Errorf("invoicepdf: %w", err)
	}
	if err := pdf.Error(); err != nil {
		return nil, fmt.Errorf("invoicepdf: %w", err)
	}
	return buf.Bytes(), nil
}

// documentDate is the PDF's creation and modification date: the document's
// own date, never the clock (fpdf takes a zero time for "now").
func documentDate(d agents.InvoiceDocument, k kind) time.Time {
	candidates := []time.Time{d.IssuedAt}
	if k == kindReceipt {
		candidates = []time.Time{d.PaidAt, d.IssuedAt}
	}
	for _, t := range candidates {
		if !t.IsZero() {
			return t.UTC()
		}
	}
	return time.Unix(0, 0).UTC()
}

// doc is one document being laid out.
type doc struct {
	pdf     *fpdf.Fpdf
	tr      func(string) string // fpdf's UTF-8 → cp1252 translator
	d       agents.InvoiceDocument
	k       kind
	title   string
	y       float64
	inTable bool
}

// encode turns UTF-8 s into cp1252 bytes for the core fonts: line breaks
// become '\n' (kept when keepBreaks, else a space), other control
// characters a space, and characters cp1252 lacks '?'.
func (g *doc) encode(s string, keepBreaks bool) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r == '\n' || r == '\r' || r == '\u2028' || r == '\u2029':
			if keepBreaks {
				b.WriteByte('\n')
			} else {
				b.WriteByte(' ')
			}
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
			b.WriteByte(' ')
		case r < 0x80:
			b.WriteByte(byte(r))
		default:
			// The translator writes '.' for a rune it cannot map.
			if e := g.tr(string(r)); len(e) == 1 && e != "." {
				b.WriteString(e)
			} else {
				b.WriteByte('?')
			}
		}
	}
	return b.String()
}

// enc encodes a one-line text for a cell.
func (g *doc) enc(s string) string { return g.encode(s, false) }

// flat is UTF-8 s on one line.
func flat(s string) string {
	return strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ", "\u2028", " ", "\u2029", " ").Replace(s)
}

func (g *doc) font(style string, size float64) { g.pdf.SetFont(family, style, size) }

func (g *doc) grey() { g.pdf.SetTextColor(110, 110, 110) }

func (g *doc) black() { g.pdf.SetTextColor(20, 20, 20) }

// wrap splits UTF-8 s (line breaks kept) into encoded lines no wider than
// w in the current font; a word wider than w is broken.
func (g *doc) wrap(s string, w float64) []string {
	enc := g.encode(s, true)
	if enc == "" {
		return nil
	}
	var out []string
	for _, l := range g.pdf.SplitLines([]byte(enc), w) {
		out = append(out, string(l))
	}
	return out
}

// fit shortens encoded s with an ellipsis until it fits w.
func (g *doc) fit(s string, w float64) string {
	limit := w - 2*g.pdf.GetCellMargin()
	if g.pdf.GetStringWidth(s) <= limit {
		return s
	}
	for len(s) > 0 && g.pdf.GetStringWidth(s+"\x85") > limit {
		s = s[:len(s)-1]
	}
	return s + "\x85"
}

// cell writes encoded s on the current line at x.
func (g *doc) cell(x, w, h float64, s, align, link string) {
	g.pdf.SetXY(x, g.y)
	g.pdf.CellFormat(w, h, s, "", 0, align, false, 0, link)
}

// ensure starts a new page unless h more millimetres fit on this one.
func (g *doc) ensure(h float64) {
	if g.y+h > bodyEnd {
		g.newPage(false)
	}
}

// capacity is the height a new page offers a table row.
const capacity = bodyEnd - margin - 2*lineH - 6

func (g *doc) newPage(first bool) {
	g.pdf.AddPage()
	g.y = margin
	if first {
		return
	}
	g.font("B", 9)
	g.grey()
	cont := g.enc(g.d.Company.Name + " \u00b7 " + g.title + " " + g.d.Number + " (continued)")
	g.cell(margin, contentW, lineH, g.fit(cont, contentW), "L", "")
	g.y += lineH + 3
	if g.inTable {
		g.tableHeader()
	}
}

func (g *doc) footer() {
	g.font("", 8)
	g.grey()
	s := g.enc(fmt.Sprintf("%s \u00b7 %s %s \u00b7 Page %d", g.d.Company.Name, g.title, g.d.Number, g.pdf.PageNo()))
	g.pdf.SetXY(margin, footerY)
	g.pdf.CellFormat(contentW, 4, g.fit(s, contentW), "", 0, "C", false, 0, "")
}

// para writes UTF-8 s wrapped to the content width, breaking pages as it
// goes.
func (g *doc) para(s, style string, size, h float64, link string) {
	g.font(style, size)
	for _, l := range g.wrap(s, contentW) {
		g.ensure(h)
		g.cell(margin, contentW, h, l, "L", link)
		g.y += h
	}
}

// heading writes the provider (left), the document's title, number, dates
// and status (right), and the client.
func (g *doc) heading() {
	d := g.d
	top := g.y
	// Right: title and facts.
	g.black()
	g.font("B", 22)
	g.cell(rightX, rightW, 10, g.title, "R", "")
	g.y += 12
	for _, f := range g.facts() {
		g.font("", 9)
		values := g.wrap(f[1], rightW-28)
		for i, v := range values {
			if i == 0 {
				g.grey()
				g.cell(rightX, 28, lineH, g.enc(f[0]), "L", "")
			}
			g.black()
			g.font("B", 9)
			g.cell(rightX+28, rightW-28, lineH, v, "R", "")
			g.font("", 9)
			g.y += lineH
		}
	}
	rightEnd := g.y
	// Left: the provider.
	g.y = top
	page := g.pdf.PageNo()
	g.black()
	g.font("B", 14)
	for _, l := range g.wrap(flat(d.Company.Name), leftW) {
		g.ensure(7)
		g.cell(margin, leftW, 7, l, "L", "")
		g.y += 7
	}
	g.font("", 9)
	for _, text := range []string{d.Company.PostalAddress, flat(d.Company.BillingEmail)} {
		for _, l := range g.wrap(text, leftW) {
			g.ensure(4.5)
			g.cell(margin, leftW, 4.5, l, "L", "")
			g.y += 4.5
		}
	}
	if g.pdf.PageNo() == page && rightEnd > g.y {
		g.y = rightEnd
	}
	g.y += 8
	// The client.
	label := "BILL TO"
	if g.k == kindReceipt {
		label = "RECEIVED FROM"
	}
	g.ensure(3 * lineH)
	g.grey()
	g.font("B", 8)
	g.cell(margin, contentW, 4, label, "L", "")
	g.y += 4.5
	g.black()
	g.para(flat(d.Client), "B", 11, 5.5, "")
	g.para(flat(d.ClientTo), "", 9.5, lineH, "")
	g.y += 7
}

// facts are the label and value pairs of the heading's right column.
func (g *doc) facts() [][2]string {
	d := g.d
	if g.k == kindReceipt {
		f := [][2]string{
			{"Invoice number", flat(d.Number)},
			{"Amount paid", flat(d.Total.String())},
			{"Paid on", date(d.PaidAt)},
		}
		if d.PayerEmail != "" {
			f = append(f, [2]string{"Paid by", flat(d.PayerEmail)})
		}
		return f
	}
	return [][2]string{
		{"Invoice number", flat(d.Number)},
		{"Issue date", date(d.IssuedAt)},
		{"Due date", date(d.DueAt)},
		{"Status", status(d)},
	}
}

// date writes t, or a dash when there is none.
func date(t time.Time) string {
	if t.IsZero() {
		return "\u2014"
	}
	return t.UTC().Format(DateLayout)
}

// status is the invoice's stored status as the client reads it. Overdue is
// not a stored status and is not computed here: the document has no clock.
func status(d agents.InvoiceDocument) string {
	switch d.Status {
	case db.InvoiceOpen:
		return "OPEN"
	case db.InvoicePaid:
		if d.PaidAt.IsZero() {
			return "PAID"
		}
		return "PAID on " + date(d.PaidAt)
	case db.InvoiceVoid:
		return "VOID"
	case db.InvoiceRefunded:
		return "REFUNDED"
	case db.InvoiceDraft:
		return "DRAFT"
	}
	return strings.ToUpper(flat(d.Status))
}

func (g *doc) tableHeader() {
	g.pdf.SetFillColor(238, 238, 238)
	g.pdf.SetXY(margin, g.y)
	g.pdf.CellFormat(contentW, lineH+1, "", "", 0, "", true, 0, "")
	g.black()
	g.font("B", 9)
	g.cell(margin, colTitle, lineH+1, "Item", "L", "")
	g.cell(margin+colTitle, colDesc, lineH+1, "Description", "L", "")
	g.cell(margin+colTitle+colDesc, colAmount, lineH+1, "Amount", "R", "")
	g.y += lineH + 2.5
}

// table writes one row per line, breaking pages between rows when a row
// fits on a page and between its text lines when it does not, with the
// header repeated on each page.
func (g *doc) table() {
	g.ensure(3 * lineH)
	g.inTable = true
	defer func() { g.inTable = false }()
	g.tableHeader()
	for _, l := range g.d.Lines {
		g.font("B", 9)
		titles := g.wrap(flat(l.Title), colTitle)
		g.font("", 9)
		descs := g.wrap(l.Description, colDesc)
		amount := g.enc(l.Amount.String())
		n := max(len(titles), len(descs), 1)
		if h := float64(n) * lineH; h <= capacity {
			g.ensure(h)
		}
		g.black()
		for i := range n {
			g.ensure(lineH)
			// Title, amount, then description: a one-line title leaves a
			// wrapped description's lines consecutive in the content.
			if i < len(titles) {
				g.font("B", 9)
				g.cell(margin, colTitle, lineH, titles[i], "L", "")
			}
			g.font("", 9)
			if i == 0 {
				g.cell(margin+colTitle+colDesc, colAmount, lineH, amount, "R", "")
			}
			if i < len(descs) {
				g.cell(margin+colTitle, colDesc, lineH, descs[i], "L", "")
			}
			g.y += lineH
		}
		g.y += 1
		g.pdf.SetDrawColor(210, 210, 210)
		g.pdf.Line(margin, g.y, margin+contentW, g.y)
		g.y += 1.5
	}
}

// total writes the total (the amount paid, on a receipt) with its currency.
func (g *doc) total() {
	label := "Total"
	if g.k == kindReceipt {
		label = "Amount paid"
	}
	if c := strings.TrimSpace(flat(g.d.Total.Currency)); c != "" {
		label += " (" + strings.ToUpper(c) + ")"
	}
	g.ensure(2*lineH + 2)
	g.y += 1
	g.pdf.SetDrawColor(60, 60, 60)
	g.pdf.Line(margin+colTitle, g.y, margin+contentW, g.y)
	g.y += 1.5
	g.black()
	g.font("B", 11)
	g.cell(margin+colTitle, colDesc, 6, g.fit(g.enc(label), colDesc), "R", "")
	g.cell(margin+colTitle+colDesc, colAmount, 6, g.enc(g.d.Total.String()), "R", "")
	g.y += 14
}

// invoiceClosing says how to pay an open invoice, or what became of it.
func (g *doc) invoiceClosing() {
	d := g.d
	switch d.Status {
	case db.InvoicePaid:
		g.section("Paid \u2014 thank you")
		if !d.PaidAt.IsZero() {
			g.para("This invoice was paid on "+date(d.PaidAt)+".", "", 9.5, lineH, "")
		}
	case db.InvoiceVoid:
		g.section("Void")
		g.para("This invoice is void: nothing is due.", "", 9.5, lineH, "")
	case db.InvoiceRefunded:
		g.section("Refunded")
		g.para("This invoice was paid and the payment refunded.", "", 9.5, lineH, "")
	default:
		g.section("How to pay")
		if !d.DueAt.IsZero() {
			g.para("Please pay "+flat(d.Total.String())+" by "+date(d.DueAt)+".", "", 9.5, lineH, "")
		}
		if d.PaymentURL != "" {
			g.para("Pay online: "+flat(d.PaymentURL), "B", 9.5, lineH, link(d.PaymentURL))
		}
	}
	g.contact()
}

// receiptClosing thanks the client.
func (g *doc) receiptClosing() {
	g.section("Paid \u2014 thank you")
	if g.d.Status == db.InvoiceRefunded {
		g.para("This payment has since been refunded.", "", 9.5, lineH, "")
	}
	g.contact()
}

func (g *doc) section(s string) {
	g.ensure(3 * lineH)
	g.black()
	g.para(s, "B", 11, 6, "")
	g.y += 1
}

// contact writes the portal and the billing address.
func (g *doc) contact() {
	d := g.d
	g.y += 2
	if d.PortalURL != "" {
		g.para("Client portal: "+flat(d.PortalURL), "", 9.5, lineH, link(d.PortalURL))
	}
	if d.Company.BillingEmail != "" {
		g.para("Questions: "+flat(d.Company.BillingEmail), "", 9.5, lineH, "")
	}
}

// link is u as a link annotation, when it is a web address in printable
// ASCII.
func link(u string) string {
	if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
		return ""
	}
	for i := 0; i < len(u); i++ {
		if u[i] <= ' ' || u[i] >= 0x7f {
			return ""
		}
	}
	return u
}
