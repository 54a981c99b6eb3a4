package app

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/agents/agentstest"
	"github.com/hossagent/hossagent/agents/invoicepdf"
	"github.com/hossagent/hossagent/agents/invoicepdf/pdftext"
	"github.com/hossagent/hossagent/agents/smtp"
	stripeadapter "github.com/hossagent/hossagent/agents/stripe"
	"github.com/hossagent/hossagent/db"
)

// lateLinks is the portal-link requester of a fixture whose Collections
// cycle is built after the server (it needs the server's address).
type lateLinks struct{ c *agents.CollectionsCycle }

func (l *lateLinks) RequestPortalLink(ctx context.Context, email string) error {
	return l.c.RequestPortalLink(ctx, email)
}

var portalLinkInMail = regexp.MustCompile(`https?://[^\s"<>]+/portal/link/[A-Za-z0-9_-]+`)

// The money loop end to end, as a client lives it: billing issues an
// invoice with a Stripe payment link (stripe-mock), Collections mails it
// over real SMTP with its PDF; on a 390 px phone the client opens the link
// from the e-mail and lands in the portal with no token in the address bar,
// sees the amount due and PAY NOW (the invoice's Stripe link); the signed
// webhook of the payment lands, the portal turns paid without a reload, and
// exactly one receipt reaches the SMTP server, however often the webhook is
// delivered and Collections runs. No page scrolls sideways.
func TestBrowserClientPaysFromTheInvoiceEmail(t *testing.T) {
	b := newBrowser(t)
	stripeURL := startWebhookStripeMock(t)
	sink := agentstest.StartMailSink(t, 0)
	bus := agents.NewBus()
	links := &lateLinks{}
	docs := invoicepdf.New()
	company := agents.CompanyInfo{Name: "Hoss Works", PostalAddress: "1 Main St, Springfield", BillingEmail: "accounts@hoss.example"}
	titles := agents.DefaultCatalogue("usd").Titles()
	f := newFixture(t, map[string]string{"STRIPE_WEBHOOK_SECRET": stripeTestSecret, "COMPANY_NAME": "Hoss Works", "BILLING_EMAIL": "accounts@hoss.example"},
		func(d *Deps) {
			d.Live, d.Events, d.PortalLinks = NewHub(bus), bus, links
			d.InvoiceFiles = &agents.InvoiceFiles{Store: d.Store, Docs: docs, Company: company, Titles: titles, PortalURL: "/portal"}
		})
	t.Cleanup(bus.Close)
	ctx := context.Background()
	env := agents.Env{Now: f.clock.Now, Random: agentstest.NewRand(7), Rand: agentstest.NewRand(8), Events: bus}
	mailer, err := smtp.New(smtp.Options{Host: sink.Host, Port: sink.Port, TLS: smtp.NoTLS, From: "billing@hoss.example", FromName: "Hoss Works"})
	if err != nil {
		t.Fatal(err)
	}
	collections := agents.NewCollectionsCycle(f.store, env, mailer, agents.CollectionsOptions{
		Company: company, BaseURL: f.srv.URL, From: "billing@hoss.example", Titles: titles, Docs: docs,
		Schedule: []time.Duration{-3 * 24 * time.Hour, 0, 7 * 24 * time.Hour},
	})
	links.c = collections
	payments := stripeadapter.New(stripeadapter.Options{APIKey: "sk_test_123", APIBase: stripeURL})
	billing := agents.NewBillingCycle(f.store, env, payments, agents.BillingOptions{Currency: "usd", BaseURL: f.srv.URL})
	run := func(c agents.Cycle) agents.Counts {
		t.Helper()
		counts, err := c.Run(ctx)
		if err != nil {
			t.Fatalf("cycle: %v (%v)", err, counts)
		}
		return counts
	}

	c, _, err := f.store.CreateCustomer(ctx, nil, db.NewCustomer{Company: "Acme Analytics", ContactEmail: "ap@acme.example", Plan: agents.PlanStarter}, env.Random)
	if err != nil {
		t.Fatal(err)
	}
	done := f.clock.Now().Add(-time.Hour)
	task := &db.Task{CustomerID: c.ID, Kind: agents.KindMarketResearch, Description: "Market research brief for Acme Analytics",
		Status: db.TaskDone, Currency: "usd", RewardCents: 15000, ProfitCents: 15000, Attempts: 1, CompletedAt: &done,
		Result: "## Findings\n\n- one\n- two", CreatedAt: done, UpdatedAt: done}
	if _, err := f.store.Bun().NewInsert().Model(task).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if counts := run(billing); counts["invoiced"] != 1 || counts["links"] != 1 {
		t.Fatalf("billing = %v", counts)
	}
	var inv db.Invoice
	if err := f.store.Bun().NewSelect().Model(&inv).Where("i.customer_id = ?", c.ID).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if counts := run(collections); counts["welcome"] != 1 || counts["invoice"] != 1 || counts["sent"] != 2 {
		t.Fatalf("collections = %v", counts)
	}
	mail := sink.WaitFor(t, 10*time.Second, "the invoice e-mail", func(m agentstest.ReceivedMail) bool {
		return strings.HasPrefix(m.Subject, "Invoice "+*inv.Number)
	})
	if !strings.Contains(mail.Text, "PAY NOW: "+inv.PaymentURL) || len(mail.Attachments) != 1 {
		t.Fatalf("invoice e-mail: %q, %d files", mail.Text, len(mail.Attachments))
	}
	if text, err := pdftext.Text(mail.Attachments[0].Content); err != nil || !strings.Contains(text, *inv.Number) || !strings.Contains(text, "$150.00") {
		t.Fatalf("invoice PDF: %v\n%s", err, text)
	}
	link := portalLinkInMail.FindString(mail.Text)
	if link == "" || !strings.HasPrefix(link, f.srv.URL) {
		t.Fatalf("no portal link to %s in the invoice e-mail:\n%s", f.srv.URL, mail.Text)
	}

	b.do(t, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#portal-summary")))
	loc, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`location.href`))
	if err != nil || loc != f.srv.URL+"/portal" {
		t.Errorf("the browser is at %q, want %s/portal (no token)", loc, f.srv.URL)
	}
	b.waitText(t, "#portal-summary .headline-amount", "$150.00")
	b.noSideScroll(t, "portal with the amount due")
	pay, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.querySelector("#portal-outstanding a.pay-now").href`))
	if err != nil || pay != inv.PaymentURL {
		t.Errorf("PAY NOW goes to %q (%v), want the invoice's Stripe link %q", pay, err, inv.PaymentURL)
	}
	b.screenshot(t, "collections-portal-due", 390)

	// Stripe's checkout cannot be reached from here: its webhook stands for
	// the payment, signed, through the invoice's own link.
	b.markPage(t)
	f.payByWebhook(t, inv, "cs_from_email")
	b.waitText(t, "#portal-summary .headline-amount", "Nothing outstanding")
	b.assertNotReloaded(t)
	b.noSideScroll(t, "portal after the payment")

	f.payByWebhook(t, inv, "cs_from_email") // Stripe delivers again
	run(collections)
	run(collections)
	receipts := 0
	for _, m := range sink.Mails() {
		if strings.HasPrefix(m.Subject, "Receipt") {
			receipts++
			text, err := pdftext.Text(m.Attachments[0].Content)
			if err != nil || !strings.Contains(text, "$150.00") || !strings.Contains(text, *inv.Number) {
				t.Errorf("receipt PDF: %v\n%s", err, text)
			}
		}
	}
	if receipts != 1 {
		t.Errorf("receipts at the SMTP server = %d, want 1", receipts)
	}
	// The paid invoice's page offers its receipt.
	b.do(t, chromedp.Navigate(f.srv.URL+"/portal/invoices/"+strconv.FormatInt(inv.ID, 10)), chromedp.WaitVisible(chromedp.CSS("#portal-invoice")))
	b.waitText(t, "#portal-invoice", "Receipt")
	b.noSideScroll(t, "paid invoice page")
}
