package smtp

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/agents/agentstest"
	"github.com/hossagent/hossagent/agents/invoicepdf"
	"github.com/hossagent/hossagent/agents/invoicepdf/pdftext"
	"github.com/hossagent/hossagent/db"
)

// Collections over real SMTP, with the real PDFs, at injected clock times:
// the client's mail server receives the welcome, the invoice e-mail with
// its PDF, each reminder of the unpaid invoice at its step and, for the
// invoice paid by hand, exactly one receipt and no reminder after it. The
// PDFs are parsed back: numbers, lines and amounts.
func TestCollectionsOverSMTPAtInjectedTimes(t *testing.T) {
	w := agentstest.NewWorld(t)
	sink := agentstest.StartMailSink(t, 0)
	mailer, err := New(Options{Host: sink.Host, Port: sink.Port, TLS: NoTLS, From: "billing@hoss.example", FromName: "Hoss Services"})
	if err != nil {
		t.Fatal(err)
	}
	catalogue := agents.DefaultCatalogue("usd")
	cycle := agents.NewCollectionsCycle(w.Store, w.Env, mailer, agents.CollectionsOptions{
		Company: agents.CompanyInfo{Name: "Hoss Services", PostalAddress: "1 Main St\nSpringfield", BillingEmail: "accounts@hoss.example"},
		BaseURL: "https://hoss.example", From: "billing@hoss.example",
		Schedule: []time.Duration{-3 * 24 * time.Hour, 0, 7 * 24 * time.Hour, 14 * 24 * time.Hour},
		Titles:   catalogue.Titles(), Plans: catalogue.Plan, Docs: invoicepdf.New(),
	})
	billing := agents.NewBillingCycle(w.Store, w.Env, agents.DisabledPayments{}, agents.BillingOptions{Currency: "usd"})

	customer := func(n int, lines ...int64) *db.Customer {
		c, _, err := w.Store.CreateCustomer(w.Ctx, nil, db.NewCustomer{
			Company: fmt.Sprintf("Client %d Ltd", n), ContactEmail: fmt.Sprintf("ap@client%d.example", n), Plan: agents.PlanStarter,
		}, w.Env.Random)
		if err != nil {
			t.Fatal(err)
		}
		now := w.Clock.Now()
		for i, cents := range lines {
			kind := []string{agents.KindMarketResearch, agents.KindOutreachCopy}[i%2]
			task := &db.Task{CustomerID: c.ID, Kind: kind, Description: fmt.Sprintf("Brief %d for %s", i+1, c.Company),
				Status: db.TaskDone, Currency: "usd", RewardCents: cents, CostCents: 100, ProfitCents: cents - 100,
				Attempts: 1, StartedAt: &now, CompletedAt: &now, Result: "delivered", CreatedAt: now, UpdatedAt: now}
			if _, err := w.Store.Bun().NewInsert().Model(task).Exec(w.Ctx); err != nil {
				t.Fatal(err)
			}
		}
		return c
	}
	unpaid := customer(1, 15000, 12050)
	paid := customer(2, 9900)
	agentstest.Run(t, w.Ctx, billing)
	start := w.Clock.Now()

	type arrival struct {
		to, subject string
		day         int
	}
	var got []arrival
	for hour := 0; hour <= 30*24; hour++ {
		if hour == 5*24 {
			var inv db.Invoice
			if err := w.Store.Bun().NewSelect().Model(&inv).Where("i.customer_id = ?", paid.ID).Scan(w.Ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Store.MarkInvoicePaidByHand(w.Ctx, inv.ID, "admin@hoss.example", "bank transfer", w.Clock.Now()); err != nil {
				t.Fatal(err)
			}
		}
		before := len(sink.Mails())
		agentstest.Run(t, w.Ctx, cycle)
		for _, m := range sink.Mails()[before:] {
			got = append(got, arrival{m.To[0], m.Subject, int(w.Clock.Now().Sub(start) / (24 * time.Hour))})
		}
		w.Clock.Advance(time.Hour)
	}

	var invA, invB db.Invoice
	if err := w.Store.Bun().NewSelect().Model(&invA).Where("i.customer_id = ?", unpaid.ID).Scan(w.Ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Store.Bun().NewSelect().Model(&invB).Where("i.customer_id = ?", paid.ID).Scan(w.Ctx); err != nil {
		t.Fatal(err)
	}
	a, b := *invA.Number, *invB.Number
	due := invA.DueAt.UTC().Format("2 January 2006")
	want := []arrival{
		{unpaid.ContactEmail, "Welcome to Hoss Services", 0},
		{paid.ContactEmail, "Welcome to Hoss Services", 0},
		{unpaid.ContactEmail, "Invoice " + a + " from Hoss Services: $270.50 due " + due, 0},
		{paid.ContactEmail, "Invoice " + b + " from Hoss Services: $99.00 due " + due, 0},
		{paid.ContactEmail, "Receipt: $99.00 paid for invoice " + b, 5},
		{unpaid.ContactEmail, "Reminder: invoice " + a + " ($270.50) is due on " + due, 11},
		{unpaid.ContactEmail, "Invoice " + a + " ($270.50) is due today", 14},
		{unpaid.ContactEmail, "Overdue: invoice " + a + " ($270.50) was due on " + due, 21},
		{unpaid.ContactEmail, "Overdue: invoice " + a + " ($270.50) was due on " + due, 28},
	}
	t.Logf("%d arrivals, last %v", len(got), got[len(got)-1])
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("arrivals:\n got %v\nwant %v", got, want)
	}

	// The attachments, parsed back.
	for _, m := range sink.Mails() {
		switch {
		case strings.HasPrefix(m.Subject, "Welcome"):
			if len(m.Attachments) != 0 || !strings.Contains(m.Text, "https://hoss.example/portal/link/") || !strings.Contains(m.HTML, "https://hoss.example/portal/link/") {
				t.Errorf("welcome: %d files, text %q", len(m.Attachments), m.Text)
			}
		case strings.HasPrefix(m.Subject, "Receipt"):
			text := pdfText(t, m, "receipt-"+b+".pdf")
			for _, s := range []string{"Receipt", b, "$99.00", "Client 2 Ltd", "Brief 1 for Client 2 Ltd", "Hoss Services", "accounts@hoss.example"} {
				if !strings.Contains(text, s) {
					t.Errorf("receipt PDF lacks %q:\n%s", s, text)
				}
			}
		case strings.Contains(m.Subject, a):
			text := pdfText(t, m, "invoice-"+a+".pdf")
			for _, s := range []string{"Invoice", a, "$150.00", "$120.50", "$270.50", "Market research brief", "Outreach copy pack",
				"Brief 1 for Client 1 Ltd", "Brief 2 for Client 1 Ltd", "OPEN", "1 Main St", "Springfield", "https://hoss.example/portal"} {
				if !strings.Contains(text, s) {
					t.Errorf("invoice PDF of %q lacks %q:\n%s", m.Subject, s, text)
				}
			}
		}
	}
	// The same invoice state renders the same bytes: each reminder carried
	// the invoice e-mail's very PDF.
	var first []byte
	for _, m := range sink.Mails() {
		if strings.Contains(m.Subject, a) {
			if first == nil {
				first = m.Attachments[0].Content
			} else if string(m.Attachments[0].Content) != string(first) {
				t.Errorf("%q carries a PDF unlike the invoice e-mail's", m.Subject)
			}
		}
	}
}

func pdfText(t *testing.T, m agentstest.ReceivedMail, filename string) string {
	t.Helper()
	if len(m.Attachments) != 1 || m.Attachments[0].Filename != filename || m.Attachments[0].ContentType != "application/pdf" {
		t.Fatalf("%q attachments = %+v, want one %s", m.Subject, m.Attachments, filename)
	}
	text, err := pdftext.Text(m.Attachments[0].Content)
	if err != nil {
		t.Fatalf("%q: %v", m.Subject, err)
	}
	return text
}
