package app

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

const stripeTestSecret = "whsec_test_hossagent"

// startWebhookStripeMock runs stripe-mock v0.180.0 (go.mod's tool, built
// from the module cache) with -strict-version-check on free ports until the
// test ends, and returns its URL. The webhook's only Stripe call,
// deactivating a paid invoice's link, goes there.
func startWebhookStripeMock(t *testing.T) string {
	t.Helper()
	bin, err := exec.Command("go", "tool", "-n", "stripe-mock").Output()
	if err != nil {
		t.Skipf("skipping: stripe-mock cannot be built (`go tool -n stripe-mock`: %v)", err)
	}
	cmd := exec.Command(strings.TrimSpace(string(bin)), "-strict-version-check", "-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start stripe-mock: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	// stripe-mock binds its ports before it prints their addresses.
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		if addr, ok := strings.CutPrefix(lines.Text(), "Listening for HTTP at address: "); ok {
			go func() { _, _ = io.Copy(io.Discard, stdout) }() // it logs every request
			return "http://" + strings.TrimSpace(addr)
		}
	}
	t.Fatal("stripe-mock exited before listening")
	return ""
}

// stripeRecordingLinks deactivates links through the real Stripe adapter and
// remembers which.
type stripeRecordingLinks struct {
	stripe *agents.StripePayments
	mu     sync.Mutex
	ids    []string
	errs   []error
}

func (l *stripeRecordingLinks) DeactivateLink(ctx context.Context, id string) error {
	err := l.stripe.DeactivateLink(ctx, id)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ids, l.errs = append(l.ids, id), append(l.errs, err)
	return err
}

func (l *stripeRecordingLinks) deactivated() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := errors.Join(l.errs...); err != nil {
		panic(err)
	}
	return append([]string(nil), l.ids...)
}

// stripeBusEvents keeps the kinds of events published.
type stripeBusEvents struct {
	mu    sync.Mutex
	kinds []string
}

func (b *stripeBusEvents) Publish(e agents.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.kinds = append(b.kinds, e.Kind)
}

func (b *stripeBusEvents) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.kinds)
}

// webhookRig is the real router with a webhook secret, and one open invoice
// of $150.00 with a payment link.
type webhookRig struct {
	f      *fixture
	inv    db.Invoice
	links  *stripeRecordingLinks
	events *stripeBusEvents
}

func newWebhookRig(t *testing.T, stripeURL string) *webhookRig {
	t.Helper()
	rig := &webhookRig{events: &stripeBusEvents{}}
	rig.links = &stripeRecordingLinks{stripe: agents.NewStripePayments(agents.StripeOptions{APIKey: "sk_test_123", APIBase: stripeURL})}
	rig.f = newFixture(t, map[string]string{"STRIPE_WEBHOOK_SECRET": stripeTestSecret}, func(d *Deps) {
		d.Payments, d.Events = rig.links, rig.events
	})
	ctx := context.Background()
	c, _, err := rig.f.store.CreateCustomer(ctx, nil, db.NewCustomer{Company: "Acme Analytics", ContactEmail: "billing@acme.example", Plan: "starter"}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	done := testNow.Add(-time.Hour)
	task := &db.Task{CustomerID: c.ID, Kind: "market_research", Status: db.TaskDone, Currency: "usd", RewardCents: 15000,
		ProfitCents: 15000, Attempts: 1, CompletedAt: &done, CreatedAt: done, UpdatedAt: done}
	if _, err := rig.f.store.Bun().NewInsert().Model(task).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := rig.f.store.BillCustomer(ctx, c.ID, testNow, db.BillingRules{MinAmountCents: 100, MaxAmountCents: 50000, DueAfter: 14 * 24 * time.Hour})
	if err != nil || len(b.Invoices) != 1 {
		t.Fatalf("BillCustomer: %v %+v", err, b)
	}
	rig.inv = b.Invoices[0]
	if _, err := rig.f.store.SetInvoicePaymentLink(ctx, rig.inv.ID, "price_wh", "plink_wh", "https://buy.stripe.com/test_wh", testNow); err != nil {
		t.Fatal(err)
	}
	return rig
}

// session is the Checkout Session of the rig's invoice.
func (rig *webhookRig) session(id, paymentStatus string, amount int64, currency string) map[string]any {
	return map[string]any{
		"id": id, "object": "checkout.session", "mode": "payment", "status": "complete", "payment_status": paymentStatus,
		"amount_total": amount, "currency": currency, "payment_link": "plink_wh", "payment_intent": "pi_" + id,
		"metadata":         map[string]string{"invoice_id": fmt.Sprint(rig.inv.ID)},
		"customer_details": map[string]any{"email": "payer@acme.example", "name": "Pat Payer"},
	}
}

func (rig *webhookRig) paidSession(id string) map[string]any {
	return rig.session(id, "paid", rig.inv.AmountCents, rig.inv.Currency)
}

func stripeRefundedCharge(paymentIntent string, refunded, full bool) map[string]any {
	amountRefunded := int64(15000)
	if !full {
		amountRefunded = 5000
	}
	return map[string]any{"id": "ch_" + paymentIntent, "object": "charge", "amount": 15000, "amount_refunded": amountRefunded,
		"refunded": refunded && full, "currency": "usd", "payment_intent": paymentIntent, "metadata": map[string]string{}}
}

// stripeEventPayload is a Stripe event as Stripe sends it.
func stripeEventPayload(t *testing.T, id, typ, apiVersion string, object map[string]any) []byte {
	t.Helper()
	body, err := json.Marshal(map[string]any{
		"id": id, "object": "event", "api_version": apiVersion, "type": typ, "created": testNow.Unix(), "livemode": false,
		"pending_webhooks": 1, "data": map[string]any{"object": object},
	})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// signature signs payload the way Stripe does, at time at (the webhook
// checks it against the real clock).
func stripeSignature(payload []byte, secret string, at time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: at}).Header
}

// post sends a webhook delivery and returns the status and body.
func (rig *webhookRig) post(t *testing.T, payload []byte, sig string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, rig.f.srv.URL+"/stripe/webhook", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
	if sig != "" {
		req.Header.Set("Stripe-Signature", sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// deliver sends a correctly signed event and wants 200.
func (rig *webhookRig) deliver(t *testing.T, id, typ string, object map[string]any) string {
	t.Helper()
	payload := stripeEventPayload(t, id, typ, stripe.APIVersion, object)
	status, body := rig.post(t, payload, stripeSignature(payload, stripeTestSecret, time.Now()))
	if status != http.StatusOK {
		t.Fatalf("%s %s: status %d %s", typ, id, status, body)
	}
	return body
}

// state is the invoice's status and flag, and the recorded events as
// "id=outcome", and it fails the test unless every invariant holds.
func (rig *webhookRig) state(t *testing.T) (status, flag string, events []string) {
	t.Helper()
	ctx := context.Background()
	var inv db.Invoice
	if err := rig.f.store.Bun().NewSelect().Model(&inv).Where("i.id = ?", rig.inv.ID).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	var rows []db.StripeEvent
	if err := rig.f.store.Bun().NewSelect().Model(&rows).Order("id").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	for _, e := range rows {
		events = append(events, e.EventID+"="+e.Outcome)
	}
	results, err := rig.f.store.CheckInvariants(ctx, testNow)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if !r.OK() {
			t.Errorf("invariant %d (%s) broken: %q", r.Number, r.Name, r.Violations)
		}
	}
	if inv.Status == db.InvoicePaid && (inv.PaidAt == nil || inv.PayerEmail != "payer@acme.example" || inv.PayerName != "Pat Payer") {
		t.Errorf("paid invoice lacks its payment details: %+v", inv)
	}
	return inv.Status, inv.Flag, events
}

func wantWebhookState(t *testing.T, rig *webhookRig, status, flag string, events ...string) {
	t.Helper()
	gotStatus, gotFlag, gotEvents := rig.state(t)
	if gotStatus != status || (flag == "" && gotFlag != "") || !strings.Contains(gotFlag, flag) {
		t.Errorf("invoice %s flagged %q, want %s flagged %q", gotStatus, gotFlag, status, flag)
	}
	if strings.Join(gotEvents, " ") != strings.Join(events, " ") {
		t.Errorf("stripe events = %q, want %q", gotEvents, events)
	}
}

func TestStripeWebhookRefusesUnverifiedEvents(t *testing.T) {
	rig := newWebhookRig(t, "http://127.0.0.1:1") // refused events never reach Stripe
	paid := stripeEventPayload(t, "evt_1", "checkout.session.completed", stripe.APIVersion, rig.paidSession("cs_1"))
	oldVersion := stripeEventPayload(t, "evt_2", "checkout.session.completed", "2020-08-27", rig.paidSession("cs_1"))
	for _, c := range []struct {
		name    string
		payload []byte
		sig     string
		status  int
		log     string
	}{
		{"unsigned", paid, "", http.StatusBadRequest, "no Stripe-Signature header"},
		{"wrong secret", paid, stripeSignature(paid, "whsec_someone_else", time.Now()), http.StatusBadRequest, "signature does not match"},
		{"garbled header", paid, "t=abc,v1=zz", http.StatusBadRequest, "signature does not match"},
		{"older than 300 s", paid, stripeSignature(paid, stripeTestSecret, time.Now().Add(-301*time.Second)), http.StatusBadRequest, "300 s tolerance"},
		{"signed for another body", []byte(strings.Replace(string(paid), "15000", "1", 1)), stripeSignature(paid, stripeTestSecret, time.Now()), http.StatusBadRequest, "signature does not match"},
		{"other API version", oldVersion, stripeSignature(oldVersion, stripeTestSecret, time.Now()), http.StatusBadRequest, "API version 2023-10-16"},
		{"over 64 KiB", bytes.Repeat([]byte(" "), 64<<10+1), stripeSignature(paid, stripeTestSecret, time.Now()), http.StatusRequestEntityTooLarge, "too large"},
	} {
		status, body := rig.post(t, c.payload, c.sig)
		if status != c.status || !strings.Contains(body, `"received":false`) {
			t.Errorf("%s: status %d %s, want %d", c.name, status, body, c.status)
		}
		if !strings.Contains(rig.f.logs.String(), c.log) {
			t.Errorf("%s: log lacks %q", c.name, c.log)
		}
	}
	wantWebhookState(t, rig, db.InvoiceOpen, "")
	if rig.events.count() != 0 {
		t.Errorf("refused events published %d bus events", rig.events.count())
	}

	// Without a secret nothing is trusted, however it is signed.
	bare := newFixture(t, nil)
	unverified := &webhookRig{f: bare}
	if status, _ := unverified.post(t, paid, stripeSignature(paid, "", time.Now())); status != http.StatusServiceUnavailable {
		t.Errorf("no secret configured: status %d, want 503", status)
	}
}

func TestStripeWebhookEvents(t *testing.T) {
	stripeURL := startWebhookStripeMock(t)

	t.Run("paid once; a duplicate changes nothing", func(t *testing.T) {
		rig := newWebhookRig(t, stripeURL)
		if body := rig.deliver(t, "evt_paid", "checkout.session.completed", rig.paidSession("cs_1")); !strings.Contains(body, `"note":"paid"`) {
			t.Errorf("answer = %s", body)
		}
		wantWebhookState(t, rig, db.InvoicePaid, "", "evt_paid=paid")
		if body := rig.deliver(t, "evt_paid", "checkout.session.completed", rig.paidSession("cs_1")); !strings.Contains(body, "duplicate") {
			t.Errorf("duplicate answer = %s", body)
		}
		wantWebhookState(t, rig, db.InvoicePaid, "", "evt_paid=paid")
		if got := rig.links.deactivated(); len(got) != 1 || got[0] != "plink_wh" {
			t.Errorf("deactivated links = %v", got)
		}
		if rig.events.count() != 1 {
			t.Errorf("bus events = %d, want 1", rig.events.count())
		}
	})

	t.Run("amount mismatch", func(t *testing.T) {
		rig := newWebhookRig(t, stripeURL)
		rig.deliver(t, "evt_short", "checkout.session.completed", rig.session("cs_1", "paid", 14999, "usd"))
		wantWebhookState(t, rig, db.InvoiceOpen, "payment amount mismatch", "evt_short=amount_mismatch")
		if len(rig.links.deactivated()) != 0 || rig.events.count() != 1 {
			t.Errorf("deactivated %v, bus events %d", rig.links.deactivated(), rig.events.count())
		}
	})

	t.Run("currency mismatch", func(t *testing.T) {
		rig := newWebhookRig(t, stripeURL)
		rig.deliver(t, "evt_eur", "checkout.session.completed", rig.session("cs_1", "paid", 15000, "eur"))
		wantWebhookState(t, rig, db.InvoiceOpen, "payment currency mismatch", "evt_eur=currency_mismatch")
		if len(rig.links.deactivated()) != 0 {
			t.Errorf("deactivated %v", rig.links.deactivated())
		}
	})

	t.Run("paid, then refunded", func(t *testing.T) {
		rig := newWebhookRig(t, stripeURL)
		rig.deliver(t, "evt_paid", "checkout.session.completed", rig.paidSession("cs_1"))
		rig.deliver(t, "evt_partial", "charge.refunded", stripeRefundedCharge("pi_cs_1", true, false))
		wantWebhookState(t, rig, db.InvoicePaid, "partially refunded: $50.00 of $150.00", "evt_paid=paid", "evt_partial=partial_refund")
		rig.deliver(t, "evt_refund", "charge.refunded", stripeRefundedCharge("pi_cs_1", true, true))
		wantWebhookState(t, rig, db.InvoiceRefunded, "partially refunded", "evt_paid=paid", "evt_partial=partial_refund", "evt_refund=refunded")
	})

	t.Run("out of order: refund before its payment", func(t *testing.T) {
		rig := newWebhookRig(t, stripeURL)
		rig.deliver(t, "evt_refund", "charge.refunded", stripeRefundedCharge("pi_cs_1", true, true))
		wantWebhookState(t, rig, db.InvoiceOpen, "", "evt_refund=refund_before_payment")
		rig.deliver(t, "evt_paid", "checkout.session.completed", rig.paidSession("cs_1"))
		wantWebhookState(t, rig, db.InvoiceRefunded, "", "evt_refund=refund_before_payment", "evt_paid=paid_refunded_earlier")
		// A redelivery of the payment after all that changes nothing.
		rig.deliver(t, "evt_paid_again", "checkout.session.async_payment_succeeded", rig.paidSession("cs_1"))
		wantWebhookState(t, rig, db.InvoiceRefunded, "", "evt_refund=refund_before_payment", "evt_paid=paid_refunded_earlier", "evt_paid_again=already_paid")
	})

	t.Run("out of order: async failure after the payment", func(t *testing.T) {
		rig := newWebhookRig(t, stripeURL)
		rig.deliver(t, "evt_paid", "checkout.session.async_payment_succeeded", rig.paidSession("cs_1"))
		rig.deliver(t, "evt_failed", "checkout.session.async_payment_failed", rig.session("cs_1", "unpaid", 15000, "usd"))
		wantWebhookState(t, rig, db.InvoicePaid, "", "evt_paid=paid", "evt_failed=already_paid")
	})

	t.Run("async failure, then another payment succeeds", func(t *testing.T) {
		rig := newWebhookRig(t, stripeURL)
		rig.deliver(t, "evt_failed", "checkout.session.async_payment_failed", rig.session("cs_1", "unpaid", 15000, "usd"))
		wantWebhookState(t, rig, db.InvoiceOpen, "payment failed (Stripe session cs_1)", "evt_failed=payment_failed")
		rig.deliver(t, "evt_paid", "checkout.session.completed", rig.paidSession("cs_2"))
		wantWebhookState(t, rig, db.InvoicePaid, "payment failed", "evt_failed=payment_failed", "evt_paid=paid")
	})

	t.Run("complete but unpaid waits for async_payment_succeeded", func(t *testing.T) {
		rig := newWebhookRig(t, stripeURL)
		rig.deliver(t, "evt_completed", "checkout.session.completed", rig.session("cs_1", "unpaid", 15000, "usd"))
		wantWebhookState(t, rig, db.InvoiceOpen, "", "evt_completed=awaiting_payment")
		if len(rig.links.deactivated()) != 0 || rig.events.count() != 0 {
			t.Errorf("deactivated %v, bus events %d", rig.links.deactivated(), rig.events.count())
		}
		rig.deliver(t, "evt_succeeded", "checkout.session.async_payment_succeeded", rig.paidSession("cs_1"))
		wantWebhookState(t, rig, db.InvoicePaid, "", "evt_completed=awaiting_payment", "evt_succeeded=paid")
		if got := rig.links.deactivated(); len(got) != 1 {
			t.Errorf("deactivated links = %v", got)
		}
	})

	t.Run("unknown types are recorded and acknowledged", func(t *testing.T) {
		rig := newWebhookRig(t, stripeURL)
		rig.deliver(t, "evt_customer", "customer.created", map[string]any{"id": "cus_1", "object": "customer"})
		wantWebhookState(t, rig, db.InvoiceOpen, "", "evt_customer=ignored")
	})

	t.Run("a processing error answers 500 so Stripe retries", func(t *testing.T) {
		rig := newWebhookRig(t, stripeURL)
		// Make the event's effect fail inside its transaction.
		_, err := rig.f.store.Bun().Exec(`CREATE TRIGGER refuse_payments BEFORE UPDATE OF status ON invoices
			BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`)
		if err != nil {
			t.Fatal(err)
		}
		payload := stripeEventPayload(t, "evt_paid", "checkout.session.completed", stripe.APIVersion, rig.paidSession("cs_1"))
		if status, _ := rig.post(t, payload, stripeSignature(payload, stripeTestSecret, time.Now())); status != http.StatusInternalServerError {
			t.Fatalf("status %d, want 500", status)
		}
		if n := countStripeEvents(t, rig); n != 0 {
			t.Fatalf("the failed event was recorded (%d rows): a retry would be lost", n)
		}
		if _, err := rig.f.store.Bun().Exec("DROP TRIGGER refuse_payments"); err != nil {
			t.Fatal(err)
		}
		// Stripe's retry then goes through.
		rig.deliver(t, "evt_paid", "checkout.session.completed", rig.paidSession("cs_1"))
		wantWebhookState(t, rig, db.InvoicePaid, "", "evt_paid=paid")
	})
}

func countStripeEvents(t *testing.T, rig *webhookRig) int64 {
	t.Helper()
	n, err := rig.f.store.Bun().NewSelect().Model((*db.StripeEvent)(nil)).Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}
