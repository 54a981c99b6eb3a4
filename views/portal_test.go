package views

import (
	"strings"
	"testing"
	"time"
)

func TestPortal(t *testing.T) {
	due := now.Add(-48 * time.Hour)
	inv := func(id int64, num, payURL string) PortalInvoiceRow {
		return PortalInvoiceRow{ID: id, Label: num, Amount: Money{Cents: 1234, Currency: "usd"}, Status: InvoiceOpen, Overdue: true, OverdueDays: 2, DueAt: &due, PaymentURL: payURL}
	}
	p := PortalHomePage{
		Meta:     meta(),
		Customer: PortalCustomer{Company: evil},
		Provider: PortalProvider{Name: "Hoss & Co", PostalAddress: []string{"1 Main St", evil}, BillingEmail: "billing@hoss.example"},
		Headline: PortalHeadline{Due: Totals{{Cents: 4936, Currency: "usd"}}, DueBy: &due, Overdue: Totals{{Cents: 4936, Currency: "usd"}}, OverdueDays: 2, OpenCount: 4},
		Summary: AccountSummary{
			Invoiced: Totals{{Cents: 1234, Currency: "usd"}},
			Overdue:  Totals{{Cents: 1234, Currency: "usd"}},
		},
		Outstanding: []PortalInvoiceRow{
			inv(1, "INV-1", "https://buy.stripe.com/test_123"),
			inv(2, "INV-2", "http://buy.stripe.com/test_123"),
			inv(3, "INV-3", "javascript:alert(1)"),
			inv(4, "INV-4", ""),
		},
		Work: []PortalWorkItem{{Title: "Market research brief", Status: TaskDone, CompletedAt: &now, ResultHTML: "<h2>Findings</h2><ul><li>one</li></ul>"}},
	}
	doc, raw := render(t, Portal(p))
	noRawScript(t, raw)

	if got := text(doc.Find(".masthead h1")); got != evil {
		t.Errorf("company = %q", got)
	}
	head := text(doc.Find("#portal-summary .portal-headline"))
	for _, want := range []string{"Amount due", "$49.36", "was due on 12 Mar 2026", "$49.36 overdue · 2 days past the due date"} {
		if !strings.Contains(head, want) {
			t.Errorf("headline %q lacks %q", head, want)
		}
	}
	if got := text(doc.Find("#portal-summary .card").First().Find(".value")); got != "$12.34" {
		t.Errorf("invoiced card = %q", got)
	}
	pay := doc.Find("#portal-outstanding a.pay-now")
	if pay.Length() != 1 {
		t.Fatalf("PAY NOW links = %d, want 1", pay.Length())
	}
	if href, _ := pay.Attr("href"); href != "https://buy.stripe.com/test_123" {
		t.Errorf("PAY NOW href = %q", href)
	}
	if strings.Contains(raw, "javascript:") {
		t.Errorf("javascript: URL rendered")
	}
	rows := doc.Find("#portal-outstanding tbody tr")
	for i := 1; i < rows.Length(); i++ {
		if got := text(rows.Eq(i).Find(`td[data-label="Payment"]`)); got != "Payment link pending" {
			t.Errorf("row %d payment = %q", i, got)
		}
	}
	if got := strings.Join(strings.Fields(text(rows.First().Find(`td[data-label="Due"]`))), " "); got != "12 Mar 2026 2 days overdue" {
		t.Errorf("due = %q", got)
	}
	if href, _ := rows.First().Find("a").First().Attr("href"); href != "/portal/invoices/1" {
		t.Errorf("invoice link = %q", href)
	}
	if doc.Find(`a[href="/"], a[href="/admin"]`).Length() != 0 {
		t.Errorf("portal links into the app")
	}
	if doc.Find("#portal-work .deliverable h2").Length() != 1 || doc.Find("#portal-work .deliverable li").Length() != 1 {
		t.Errorf("deliverable not rendered as given: %q", raw)
	}
	if got := text(doc.Find("#portal-work h3")); got != "Market research brief" {
		t.Errorf("work title = %q", got)
	}
	contact := text(doc.Find("#portal-contact"))
	if !strings.Contains(contact, "Hoss & Co") || !strings.Contains(contact, "1 Main St") || !strings.Contains(contact, evil) {
		t.Errorf("contact = %q", contact)
	}
	if href, _ := doc.Find(`#portal-contact a`).Attr("href"); href != "mailto:billing@hoss.example" {
		t.Errorf("billing e-mail link = %q", href)
	}
	if doc.Find("#portal-history tbody tr.empty").Length() != 1 {
		t.Errorf("history has no empty row")
	}
	if doc.Find(`form[action="/portal/logout"][method="post"]`).Length() != 1 {
		t.Errorf("no sign-out form")
	}
}

func TestPortalEmpty(t *testing.T) {
	doc, _ := render(t, Portal(PortalHomePage{Meta: meta(), Customer: PortalCustomer{Company: "Acme"}}))
	for _, id := range []string{"portal-outstanding", "portal-history"} {
		if doc.Find("#"+id+" tbody tr.empty").Length() != 1 {
			t.Errorf("#%s has no empty row", id)
		}
	}
	if got := text(doc.Find("#portal-summary .headline-amount")); got != "Nothing outstanding" {
		t.Errorf("headline = %q", got)
	}
	if got := text(doc.Find("#portal-summary .card").Eq(3).Find(".value")); got != "$0.00" {
		t.Errorf("overdue = %q", got)
	}
	if doc.Find("#portal-summary .bad").Length() != 0 {
		t.Errorf("zero overdue flagged")
	}
	if doc.Find("#portal-work .empty").Length() != 1 {
		t.Errorf("no empty work note")
	}
}

func TestPortalInvoiceAndPaidPages(t *testing.T) {
	paidAt := now
	inv := PortalInvoiceRow{ID: 7, Label: "INV-0007", Amount: Money{Cents: 15000, Currency: "usd"}, Status: InvoicePaid, PaidAt: &paidAt, HasReceipt: true,
		PaymentURL: "https://buy.stripe.com/x"}
	doc, raw := render(t, PortalInvoiceDetail(PortalInvoicePage{Meta: meta(), Customer: PortalCustomer{Company: "Acme"}, Invoice: inv,
		Lines: []PortalLine{{Title: "Market research brief", Description: evil, Amount: inv.Amount}}}))
	noRawScript(t, raw)
	if doc.Find("a.pay-now").Length() != 0 {
		t.Errorf("PAY NOW on a paid invoice")
	}
	for _, href := range []string{"/portal/invoices/7/invoice.pdf", "/portal/invoices/7/receipt.pdf"} {
		if doc.Find(`a[href="`+href+`"]`).Length() != 1 {
			t.Errorf("no link to %s", href)
		}
	}
	if got := text(doc.Find(".invoice-lines tbody td").First()); got != "Market research brief" {
		t.Errorf("line title = %q", got)
	}

	inv.Status, inv.HasReceipt, inv.PaidAt = InvoiceOpen, false, nil
	doc, _ = render(t, PortalInvoiceDetail(PortalInvoicePage{Meta: meta(), Invoice: inv}))
	if doc.Find("a.pay-now").Length() != 1 || doc.Find(`a[href$="receipt.pdf"]`).Length() != 0 {
		t.Errorf("open invoice: PAY NOW %d, receipt %d", doc.Find("a.pay-now").Length(), doc.Find(`a[href$="receipt.pdf"]`).Length())
	}

	doc, _ = render(t, Paid(PaidPage{Meta: meta(), State: "confirming", Invoice: &inv}))
	if got := text(doc.Find("h2")); got != "Stripe is confirming your payment of invoice INV-0007 ($150.00)" {
		t.Errorf("confirming = %q", got)
	}
	if href, _ := doc.Find("a.btn").Attr("href"); href != "/portal" {
		t.Errorf("back link = %q", href)
	}
}
