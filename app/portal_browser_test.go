package app

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hossagent/hossagent/db"
)

// payByWebhook lands a signed checkout.session.completed for invoice inv,
// paid through its own payment link, at the fixture's webhook.
func (f *fixture) payByWebhook(t *testing.T, inv db.Invoice, sessionID string) {
	t.Helper()
	ctx := context.Background()
	link := "plink_" + sessionID
	if _, err := f.store.Bun().NewUpdate().Model(&inv).Set("stripe_payment_link_id = ?", link).WherePK().Exec(ctx); err != nil {
		t.Fatal(err)
	}
	session := map[string]any{
		"id": sessionID, "object": "checkout.session", "mode": "payment", "status": "complete", "payment_status": "paid",
		"amount_total": inv.AmountCents, "currency": inv.Currency, "payment_intent": "pi_" + sessionID, "payment_link": link,
		"metadata":         map[string]string{"invoice_id": fmt.Sprint(inv.ID)},
		"customer_details": map[string]any{"email": "payer@acme.example", "name": "Pat Payer"},
	}
	payload := stripeEventPayload(t, "evt_"+sessionID, "checkout.session.completed", "2023-10-16", session)
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/stripe/webhook", strings.NewReader(string(payload)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", stripeSignature(payload, stripeTestSecret, f.clock.Now()))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook answered %d", resp.StatusCode)
	}
}

// noSideScroll fails when the page is wider than the phone's window.
func (b *browser) noSideScroll(t *testing.T, page string) {
	t.Helper()
	got, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1] != 390 || got[0] > got[1] {
		t.Errorf("%s: scrollWidth %v > innerWidth (want innerWidth 390)", page, got)
	}
}

// A client opens the link from an e-mail on a 390 px phone: the portal
// opens with no token in the address bar, shows the amount due, fits the
// screen (tables stacked), as do an invoice page and the expired-link page;
// the signed webhook of a payment turns the portal paid without a reload.
func TestBrowserPortalOnAPhone(t *testing.T) {
	b := newBrowser(t)
	f, _ := liveFixture(t, map[string]string{"STRIPE_WEBHOOK_SECRET": stripeTestSecret, "COMPANY_NAME": "Hoss Works",
		"COMPANY_POSTAL_ADDRESS": "1 Very Long Street Name That Goes On, Springfield 12345", "BILLING_EMAIL": "accounts-receivable-department@hoss-works.example"})
	f.seed(t)
	ctx := context.Background()
	// Long words, a long deliverable and a long number: what would push a
	// phone's page sideways.
	done := testNow.Add(-time.Minute)
	task := &db.Task{CustomerID: 1, Kind: "market_research_brief", Description: "Supercalifragilisticexpialidocious-analysis-of-everything", Status: db.TaskDone,
		Currency: "usd", RewardCents: 100, ProfitCents: 100, CompletedAt: &done, CreatedAt: testNow, UpdatedAt: testNow,
		Result: "## Findings\n\n- https://example.com/" + strings.Repeat("averyveryverylongpath", 8) + "\n- two\n\n```\n" + strings.Repeat("code ", 60) + "\n```\n"}
	if _, err := f.store.Bun().NewInsert().Model(task).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	link := f.addPortalLink(t, 1, f.clock.Now().Add(24*time.Hour))
	expired := f.addPortalLink(t, 1, f.clock.Now().Add(-time.Minute))

	b.do(t, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		chromedp.Navigate(f.srv.URL+"/portal/link/"+link), chromedp.WaitVisible(chromedp.CSS("#portal-summary")))
	loc, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`location.href`))
	if err != nil || !strings.HasSuffix(loc, "/portal") || strings.Contains(loc, link) {
		t.Errorf("the browser is at %q, want …/portal without the token", loc)
	}
	b.waitText(t, "#portal-summary .headline-amount", "$150.00")
	b.noSideScroll(t, "portal")
	// Tables are stacked rows: no header row shown, each cell its own line.
	display, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("#portal-outstanding thead")).display`))
	if err != nil || display != "none" {
		t.Errorf("outstanding table header display = %q (%v), want none on a phone", display, err)
	}
	b.screenshot(t, "portal-phone", 390)

	b.do(t, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		chromedp.Navigate(f.srv.URL+"/portal/invoices/1"), chromedp.WaitVisible(chromedp.CSS("#portal-invoice")))
	b.waitText(t, "#portal-invoice", "INV-000001")
	b.noSideScroll(t, "invoice page")

	b.do(t, chromedp.Navigate(f.srv.URL+"/portal/link/"+expired), chromedp.WaitVisible(chromedp.CSS("#portal-signin")))
	b.waitText(t, "#portal-signin h1", "This link has expired")
	b.noSideScroll(t, "expired page")

	// Back in the portal (the session still holds), a payment lands.
	b.do(t, chromedp.Navigate(f.srv.URL+"/portal"), chromedp.WaitVisible(chromedp.CSS("#portal-outstanding a.pay-now")))
	b.markPage(t)
	var inv db.Invoice
	if err := f.store.Bun().NewSelect().Model(&inv).Where("status = 'open'").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	f.payByWebhook(t, inv, "cs_phone")
	b.waitText(t, "#portal-summary .headline-amount", "Nothing outstanding")
	b.waitText(t, "#portal-history", inv.NumberOrDraft())
	b.assertNotReloaded(t)
	b.noSideScroll(t, "portal after the payment")

	// /paid names the invoice and leads back.
	b.do(t, chromedp.Navigate(f.srv.URL+"/paid?session_id=cs_phone"), chromedp.WaitVisible(chromedp.CSS("#paid")))
	b.waitText(t, "#paid", "Payment received")
	b.waitText(t, "#paid", inv.NumberOrDraft())
	b.noSideScroll(t, "paid page")
	if n := b.dialogs.Load(); n != 0 {
		t.Errorf("%d script dialogs opened", n)
	}
}
