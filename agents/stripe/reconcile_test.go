package stripe

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

// sessionFixtures are stripe-mock fixtures in which every Checkout Session
// is one complete session of the payment link linkID, for amount cents,
// paid or not, and naming invoiceID in its metadata.
func sessionFixtures(invoiceID, amount int64, currency, linkID, paymentStatus string) map[string]any {
	return map[string]any{
		"checkout.session": map[string]any{
			"id": "cs_test_lost", "object": "checkout.session", "mode": "payment", "livemode": false,
			"status": "complete", "payment_status": paymentStatus, "amount_subtotal": amount, "amount_total": amount,
			"currency": currency, "metadata": map[string]string{"invoice_id": fmt.Sprint(invoiceID)},
			"payment_link": linkID, "payment_intent": "pi_test_lost", "payment_method_types": []string{"card"},
			"created": 1700000000, "expires_at": 1700086400, "success_url": nil, "cancel_url": nil, "url": nil,
			"custom_fields": []any{}, "shipping_options": []any{}, "payment_method_options": map[string]any{},
			"automatic_tax": map[string]any{"enabled": false, "status": nil}, "ui_mode": "hosted",
			"customer_details": map[string]any{"email": "payer@client.example", "name": "Pat Payer", "tax_exempt": "none"},
		},
		"payment_link": map[string]any{
			"id": linkID, "object": "payment_link", "active": true, "livemode": false, "currency": currency,
			"metadata": map[string]string{"invoice_id": fmt.Sprint(invoiceID)}, "url": "https://buy.stripe.com/test_lost",
			"custom_fields": []any{}, "shipping_options": []any{},
		},
	}
}

func reconcile(t *testing.T, ledger *agents.PaymentLedger, sessions agents.PaymentSessions) agents.ReconcileReport {
	t.Helper()
	r, err := agents.Reconcile(context.Background(), ledger, sessions)
	if err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	return r
}

func TestReconcileAppliesALostPaymentOnce(t *testing.T) {
	w := newWorld(t)
	inv := w.linkedInvoice(1, 15000, "plink_lost")
	w.linkedInvoice(2, 9000, "") // open without a link: nothing to ask
	payments, rec := newTestStripe(startOwnStripeMock(t, sessionFixtures(inv.ID, 15000, "usd", "plink_lost", "paid")))
	ledger := w.ledger(payments)

	r := reconcile(t, ledger, payments)
	if r.Checked != 1 || r.Paid != 1 || r.Flagged != 0 || r.Pending != 0 || len(r.Errors) != 0 {
		t.Fatalf("report = %+v", r)
	}
	got := w.invoice(inv.ID)
	if got.Status != db.InvoicePaid || got.PaidAt == nil || got.PayerEmail != "payer@client.example" || got.PayerName != "Pat Payer" {
		t.Fatalf("invoice = %+v", got)
	}
	if n := w.count("SELECT COUNT(*) FROM stripe_events WHERE event_id = 'reconcile:cs_test_lost' AND invoice_id = ? AND outcome = 'paid'", inv.ID); n != 1 {
		t.Fatalf("reconcile event rows = %d", n)
	}
	calls := rec.all()
	if len(calls) != 2 || calls[0].Path != "/v1/checkout/sessions" || calls[1].Path != "/v1/payment_links/plink_lost" {
		t.Fatalf("Stripe calls = %+v", calls)
	}
	wantForm(t, calls[1], map[string]string{"active": "false"})
	if k := w.events.Kinds(); k[agents.EventMoneyChanged] != 1 {
		t.Errorf("events = %v", k)
	}

	// Again: the invoice is no longer open, nothing is asked or changed.
	if r := reconcile(t, ledger, payments); r.Checked != 0 || r.Paid != 0 {
		t.Fatalf("second report = %+v", r)
	}
	// The webhook arriving late for the same session changes nothing.
	late, err := ledger.Apply(w.ctx, db.PaymentEvent{EventID: "evt_late", Type: "checkout.session.completed", Kind: db.PaymentSucceeded,
		InvoiceID: inv.ID, PaymentLinkID: "plink_lost", SessionID: "cs_test_lost", AmountCents: 15000, Currency: "usd"})
	if err != nil || late.Outcome != db.OutcomeAlreadyPaid || late.Changed {
		t.Fatalf("late webhook = %+v, %v", late, err)
	}
	if w.invoice(inv.ID).Flag != "" || len(rec.all()) != 2 {
		t.Errorf("late webhook flagged the invoice or called Stripe")
	}
}

func TestReconcileFlagsAMismatchOnce(t *testing.T) {
	w := newWorld(t)
	inv := w.linkedInvoice(1, 15000, "plink_short")
	payments, _ := newTestStripe(startOwnStripeMock(t, sessionFixtures(inv.ID, 14000, "usd", "plink_short", "paid")))
	ledger := w.ledger(payments)

	if r := reconcile(t, ledger, payments); r.Checked != 1 || r.Paid != 0 || r.Flagged != 1 {
		t.Fatalf("report = %+v", r)
	}
	got := w.invoice(inv.ID)
	if got.Status != db.InvoiceOpen || !strings.Contains(got.Flag, "amount mismatch") {
		t.Fatalf("invoice = %+v", got)
	}
	// Still open, so asked again, but the session counts once.
	if r := reconcile(t, ledger, payments); r.Checked != 1 || r.Paid != 0 || r.Flagged != 0 {
		t.Fatalf("second report = %+v", r)
	}
	if w.invoice(inv.ID).Flag != got.Flag {
		t.Errorf("flag changed to %q", w.invoice(inv.ID).Flag)
	}
	if n := w.count("SELECT COUNT(*) FROM stripe_events"); n != 1 {
		t.Errorf("stripe events = %d", n)
	}
}

func TestReconcileLeavesUnpaidSessionsToTheirWebhook(t *testing.T) {
	w := newWorld(t)
	inv := w.linkedInvoice(1, 15000, "plink_async")
	payments, _ := newTestStripe(startOwnStripeMock(t, sessionFixtures(inv.ID, 15000, "usd", "plink_async", "unpaid")))

	if r := reconcile(t, w.ledger(payments), payments); r.Checked != 1 || r.Pending != 1 || r.Paid != 0 {
		t.Fatalf("report = %+v", r)
	}
	if got := w.invoice(inv.ID); got.Status != db.InvoiceOpen || got.Flag != "" {
		t.Fatalf("invoice = %+v", got)
	}
	if n := w.count("SELECT COUNT(*) FROM stripe_events"); n != 0 {
		t.Errorf("stripe events = %d", n)
	}
}

func TestReconcileReportsStripeErrorsPerInvoice(t *testing.T) {
	w := newWorld(t)
	a := w.linkedInvoice(1, 15000, "plink_a")
	w.linkedInvoice(2, 9000, "plink_b")
	refused := New(Options{APIKey: "not-a-key", APIBase: needStripeMock(t)})

	r := reconcile(t, w.ledger(refused), refused)
	if r.Checked != 2 || r.Paid != 0 || len(r.Errors) != 2 {
		t.Fatalf("report = %+v", r)
	}
	if !strings.Contains(r.Errors[0], *a.Number) || !strings.Contains(r.String(), "2 errors") {
		t.Errorf("report text = %s", r)
	}
	if _, err := agents.Reconcile(canceled(), w.ledger(refused), refused); err == nil {
		t.Error("a canceled reconcile reported no error")
	}
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// A session reconcile cannot apply is reported as an error and recorded;
// the next run, once the cause is fixed, applies it.
func TestReconcileReportsAndRetriesAnUnprocessableSession(t *testing.T) {
	w := newWorld(t)
	inv := w.linkedInvoice(1, 15000, "plink_stuck")
	payments, _ := newTestStripe(startOwnStripeMock(t, sessionFixtures(inv.ID, 15000, "usd", "plink_stuck", "paid")))
	ledger := w.ledger(payments)
	if _, err := w.store.Bun().Exec(`CREATE TRIGGER refuse_payments BEFORE UPDATE OF status ON invoices
		BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`); err != nil {
		t.Fatal(err)
	}
	r := reconcile(t, ledger, payments)
	if r.Paid != 0 || len(r.Errors) != 1 || !strings.Contains(r.Errors[0], "cannot be applied") || !strings.Contains(r.Errors[0], "disk on fire") {
		t.Fatalf("report = %+v", r)
	}
	if n := w.count("SELECT COUNT(*) FROM stripe_events WHERE event_id = 'reconcile:cs_test_lost' AND outcome = 'unprocessable'"); n != 1 {
		t.Fatalf("unprocessable rows = %d", n)
	}
	if _, err := w.store.Bun().Exec("DROP TRIGGER refuse_payments"); err != nil {
		t.Fatal(err)
	}
	if r := reconcile(t, ledger, payments); r.Paid != 1 || len(r.Errors) != 0 {
		t.Fatalf("report after the fix = %+v", r)
	}
	if got := w.invoice(inv.ID); got.Status != db.InvoicePaid {
		t.Fatalf("invoice = %+v", got)
	}
}
