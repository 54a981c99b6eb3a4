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
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/hossagent/hossagent/agents"
	stripeadapter "github.com/hossagent/hossagent/agents/stripe"
	"github.com/hossagent/hossagent/app/config"
	"github.com/hossagent/hossagent/db"
)

const stripeTestSecret = "whsec_test_hossagent"

// rigInstall is the install id of the webhook rig's server.
const rigInstall = "hoss-0123456789abcdef"

// stripeMockMissing skips a test that needs stripe-mock when it cannot be
// built, except under CI=true, where it fails the run (as a missing
// chromium fails the browser tests): a green CI must have run these.
func stripeMockMissing(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("stripe-mock is required under CI=true (it is go.mod's tool: `go tool -n stripe-mock`: %v)", err)
	}
	t.Skipf("skipping: stripe-mock cannot be built (`go tool -n stripe-mock`: %v)", err)
}

// startWebhookStripeMock runs stripe-mock v0.180.0 (go.mod's tool, built
// from the module cache) with -strict-version-check on free ports until the
// test ends, and returns its URL. The webhook's only Stripe call,
// deactivating a paid invoice's link, goes there.
func startWebhookStripeMock(t *testing.T) string {
	t.Helper()
	bin, err := exec.Command("go", "tool", "-n", "stripe-mock").Output()
	if err != nil {
		stripeMockMissing(t, err)
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
	stripe *stripeadapter.Payments
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

// webhookRig is the real router with a webhook secret and this install's id,
// and one open invoice of $150.00 with a payment link. Its paid invoices'
// links are deactivated through stripe-mock at stripeURL, or not at all when
// stripeURL is "".
type webhookRig struct {
	f      *fixture
	inv    db.Invoice
	links  *stripeRecordingLinks
	events *stripeBusEvents
}

func newWebhookRig(t *testing.T, stripeURL string) *webhookRig {
	t.Helper()
	rig := &webhookRig{events: &stripeBusEvents{}}
	rig.links = &stripeRecordingLinks{stripe: stripeadapter.New(stripeadapter.Options{APIKey: "sk_test_123", APIBase: stripeURL})}
	rig.f = newFixture(t, map[string]string{"STRIPE_WEBHOOK_SECRET": stripeTestSecret}, func(d *Deps) {
		d.Events, d.StripeInstallID = rig.events, rigInstall
		if stripeURL != "" {
			d.Payments = rig.links
		}
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
// checks it against the server's clock).
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
	status, body := rig.post(t, payload, stripeSignature(payload, stripeTestSecret, rig.f.clock.Now()))
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
	now := rig.f.clock.Now()
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
		{"wrong secret", paid, stripeSignature(paid, "whsec_someone_else", now), http.StatusBadRequest, "signature does not match"},
		{"garbled header", paid, "t=abc,v1=zz", http.StatusBadRequest, "signature does not match"},
		{"older than 300 s", paid, stripeSignature(paid, stripeTestSecret, now.Add(-301*time.Second)), http.StatusBadRequest, "300 s tolerance"},
		{"signed for another body", []byte(strings.Replace(string(paid), "15000", "1", 1)), stripeSignature(paid, stripeTestSecret, now), http.StatusBadRequest, "signature does not match"},
		{"other API version", oldVersion, stripeSignature(oldVersion, stripeTestSecret, now), http.StatusBadRequest, "API version 2023-10-16"},
		{"over 64 KiB", bytes.Repeat([]byte(" "), 64<<10+1), stripeSignature(paid, stripeTestSecret, now), http.StatusRequestEntityTooLarge, "too large"},
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
	if status, _ := unverified.post(t, paid, stripeSignature(paid, "", now)); status != http.StatusServiceUnavailable {
		t.Errorf("no secret configured: status %d, want 503", status)
	}
}

// A signature is valid for 300 s either side of the server's clock. Before,
// only age was checked (stripe-go's ConstructEvent), so a header signed for
// a future time was accepted, and replayable until then. The server's clock
// is the real one here, as stripe-go's check read it.
func TestStripeWebhookRefusesTimestampsOutsideTheTolerance(t *testing.T) {
	rig := newWebhookRig(t, "")
	rig.f.clock.Advance(time.Since(rig.f.clock.Now()))
	now := rig.f.clock.Now()
	for i, c := range []struct {
		offset time.Duration
		status int
	}{
		{601 * time.Second, http.StatusBadRequest},
		{600 * time.Second, http.StatusBadRequest},
		{365 * 24 * time.Hour, http.StatusBadRequest},
		{301 * time.Second, http.StatusBadRequest},
		{-365 * 24 * time.Hour, http.StatusBadRequest},
		{299 * time.Second, http.StatusOK},
		{-299 * time.Second, http.StatusOK},
		{0, http.StatusOK},
	} {
		payload := stripeEventPayload(t, fmt.Sprint("evt_t", i), "checkout.session.completed", stripe.APIVersion, rig.session("cs_t", "unpaid", 15000, "usd"))
		status, body := rig.post(t, payload, stripeSignature(payload, stripeTestSecret, now.Add(c.offset)))
		if status != c.status {
			t.Errorf("signed at now%+v: status %d %s, want %d", c.offset, status, body, c.status)
		}
	}
	if !strings.Contains(rig.f.logs.String(), "before or after this server's clock") {
		t.Errorf("log lacks the reason")
	}
	_, _, events := rig.state(t)
	if len(events) != 3 {
		t.Errorf("recorded events = %v, want the three within the tolerance", events)
	}
	// A header naming two times is read as stripe-go reads it: the last
	// one, which the signature covers.
	payload := stripeEventPayload(t, "evt_two_times", "customer.created", stripe.APIVersion, map[string]any{"id": "cus_1", "object": "customer"})
	future := stripeSignature(payload, stripeTestSecret, now.Add(time.Hour))
	if status, _ := rig.post(t, payload, fmt.Sprintf("t=%d,", now.Unix())+future); status != http.StatusBadRequest {
		t.Errorf("a header with a current and a future t=: status %d", status)
	}
}

// webhookSession is the rig's Checkout Session paid without its payment
// link (an invoice issued while Stripe was down has none), with metadata md.
func (rig *webhookRig) sessionWithoutLink(t *testing.T, id string, md map[string]string) map[string]any {
	t.Helper()
	if _, err := rig.f.store.Bun().Exec("UPDATE invoices SET stripe_payment_link_id = '', stripe_price_id = '', payment_url = '' WHERE id = ?", rig.inv.ID); err != nil {
		t.Fatal(err)
	}
	s := rig.paidSession(id)
	delete(s, "payment_link")
	s["metadata"] = md
	return s
}

// Stripe signs every event of an account, and several installs can share
// one. Before, a session naming one of our invoice ids paid it, whatever
// install it came from, when the invoice had no link of its own.
func TestStripeWebhookSetsAsideSessionsOfOtherInstalls(t *testing.T) {
	rig := newWebhookRig(t, "")
	invoiceID := fmt.Sprint(rig.inv.ID)
	foreign := rig.sessionWithoutLink(t, "cs_foreign", map[string]string{"invoice_id": invoiceID, "hossagent_install": "hoss-ffffffffffffffff"})
	if body := rig.deliver(t, "evt_foreign", "checkout.session.completed", foreign); !strings.Contains(body, `"note":"foreign_install"`) {
		t.Errorf("answer = %s", body)
	}
	missing := rig.sessionWithoutLink(t, "cs_missing", map[string]string{"invoice_id": invoiceID})
	if body := rig.deliver(t, "evt_missing", "checkout.session.completed", missing); !strings.Contains(body, `"note":"no_install_metadata"`) {
		t.Errorf("answer = %s", body)
	}
	wantWebhookState(t, rig, db.InvoiceOpen, "", "evt_foreign=foreign_install", "evt_missing=no_install_metadata")
	if rig.events.count() != 0 {
		t.Errorf("set-aside events published %d bus events", rig.events.count())
	}
	if !strings.Contains(rig.f.logs.String(), "stripe event set aside") {
		t.Errorf("log lacks the set-aside events")
	}
	// Ours: the metadata names this install and the invoice.
	ours := rig.sessionWithoutLink(t, "cs_ours", map[string]string{"invoice_id": invoiceID, "hossagent_install": rigInstall})
	rig.deliver(t, "evt_ours", "checkout.session.completed", ours)
	wantWebhookState(t, rig, db.InvoicePaid, "", "evt_foreign=foreign_install", "evt_missing=no_install_metadata", "evt_ours=paid")
}

// Before, a charge.refunded naming our invoice in its metadata refunded it,
// whatever PaymentIntent it was for.
func TestStripeWebhookRefundsOnlyTheRecordedPaymentIntent(t *testing.T) {
	rig := newWebhookRig(t, "")
	rig.deliver(t, "evt_paid", "checkout.session.completed", rig.paidSession("cs_1"))
	other := stripeRefundedCharge("pi_someone_else", true, true)
	other["metadata"] = map[string]string{"invoice_id": fmt.Sprint(rig.inv.ID), "hossagent_install": rigInstall}
	rig.deliver(t, "evt_other", "charge.refunded", other)
	partial := stripeRefundedCharge("pi_someone_else_partly", true, false)
	partial["metadata"] = map[string]string{"invoice_id": fmt.Sprint(rig.inv.ID)}
	if body := rig.deliver(t, "evt_partial", "charge.refunded", partial); !strings.Contains(body, "unknown_payment") {
		t.Errorf("answer = %s", body)
	}
	wantWebhookState(t, rig, db.InvoicePaid, "", "evt_paid=paid", "evt_other=refund_before_payment", "evt_partial=unknown_payment")
	rig.deliver(t, "evt_ours", "charge.refunded", stripeRefundedCharge("pi_cs_1", true, true))
	wantWebhookState(t, rig, db.InvoiceRefunded, "", "evt_paid=paid", "evt_other=refund_before_payment", "evt_partial=unknown_payment", "evt_ours=refunded")
}

// Before, a NUL byte in the payer's name answered 500 on every retry, so
// the payment never applied. Bad text is cleaned; an event whose object
// cannot be read is acknowledged and recorded as unprocessable.
func TestStripeWebhookCleansBadTextAndAcknowledgesUnprocessableEvents(t *testing.T) {
	rig := newWebhookRig(t, "")
	s := rig.paidSession("cs_nul")
	s["customer_details"] = map[string]any{"email": "payer@acme.example\x00", "name": "Pat \x00Payer"}
	payload := stripeEventPayload(t, "evt_nul", "checkout.session.completed", stripe.APIVersion, s)
	if !strings.Contains(string(payload), `Pat \u0000Payer`) {
		t.Fatalf("payload = %s", payload)
	}
	for range 2 { // Stripe's retry is a duplicate
		if status, body := rig.post(t, payload, stripeSignature(payload, stripeTestSecret, rig.f.clock.Now())); status != http.StatusOK {
			t.Fatalf("status %d %s", status, body)
		}
	}
	var inv db.Invoice
	if err := rig.f.store.Bun().NewSelect().Model(&inv).Where("i.id = ?", rig.inv.ID).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if inv.Status != db.InvoicePaid || inv.PayerName != "Pat Payer" || inv.PayerEmail != "payer@acme.example" {
		t.Errorf("invoice %s, payer %q <%q>", inv.Status, inv.PayerName, inv.PayerEmail)
	}

	// A session whose amount is not a number: signed, so from Stripe, but
	// never readable. Recorded and acknowledged, not refused for days.
	bad := rig.paidSession("cs_bad")
	bad["amount_total"] = "lots"
	body := rig.deliver(t, "evt_unreadable", "checkout.session.completed", bad)
	if !strings.Contains(body, `"note":"unprocessable"`) {
		t.Errorf("answer = %s", body)
	}
	_, _, events := rig.state(t)
	if strings.Join(events, " ") != "evt_nul=paid evt_unreadable=unprocessable" {
		t.Errorf("events = %v", events)
	}
	if !strings.Contains(rig.f.logs.String(), "recorded as unprocessable") {
		t.Errorf("log lacks the unprocessable event")
	}
}

// Only a passing failure (the database busy or gone, the request cancelled)
// answers 500, with nothing recorded, so that Stripe's retry applies the
// event.
func TestStripeWebhookAnswers500OnlyForTransientErrors(t *testing.T) {
	rig := newWebhookRig(t, "")
	cfg, _, err := config.Load(func(k string) string { return map[string]string{"STRIPE_WEBHOOK_SECRET": stripeTestSecret}[k] })
	if err != nil {
		t.Fatal(err)
	}
	h := New(Deps{Config: cfg, Store: rig.f.store, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: rig.f.clock.Now,
		StripeInstallID: rigInstall, PaymentEvents: stripeadapter.Webhook{}}).Handler()
	payload := stripeEventPayload(t, "evt_paid", "checkout.session.completed", stripe.APIVersion, rig.paidSession("cs_1"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/stripe/webhook", bytes.NewReader(payload))
	req.Header.Set("Stripe-Signature", stripeSignature(payload, stripeTestSecret, rig.f.clock.Now()))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("canceled request: status %d %s, want 500", rec.Code, rec.Body)
	}
	if n := countStripeEvents(t, rig); n != 0 {
		t.Fatalf("the failed event was recorded (%d rows): a retry would be lost", n)
	}
	// Stripe's retry then goes through.
	rig.deliver(t, "evt_paid", "checkout.session.completed", rig.paidSession("cs_1"))
	wantWebhookState(t, rig, db.InvoicePaid, "", "evt_paid=paid")

	// A closed database is a passing failure too.
	gone := newWebhookRig(t, "")
	gone.f.store.Close()
	if status, _ := gone.post(t, payload, stripeSignature(payload, stripeTestSecret, gone.f.clock.Now())); status != http.StatusInternalServerError {
		t.Errorf("closed database: status %d, want 500", status)
	}
}

// Under CI=true a test that needs stripe-mock fails when it is missing;
// elsewhere it skips.
func TestStripeMockIsRequiredUnderCI(t *testing.T) {
	for ci, want := range map[string]string{"true": "fatal", "": "skip"} {
		t.Setenv("CI", ci)
		rec := &recordingTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			stripeMockMissing(rec, errors.New("exit status 1"))
		}()
		<-done
		if rec.ended != want {
			t.Errorf("CI=%q: %s, want %s", ci, rec.ended, want)
		}
	}
}

// recordingTB notes whether a helper failed or skipped the test, without
// ending the real one.
type recordingTB struct {
	testing.TB
	ended string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Fatalf(string, ...any) { r.ended = "fatal"; runtime.Goexit() }

func (r *recordingTB) Skipf(string, ...any) { r.ended = "skip"; runtime.Goexit() }

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

	t.Run("an error retrying cannot mend is acknowledged and recorded; a resend after the fix applies", func(t *testing.T) {
		rig := newWebhookRig(t, stripeURL)
		// Make the event's effect fail inside its transaction, as a
		// constraint would on every try.
		_, err := rig.f.store.Bun().Exec(`CREATE TRIGGER refuse_payments BEFORE UPDATE OF status ON invoices
			BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`)
		if err != nil {
			t.Fatal(err)
		}
		if body := rig.deliver(t, "evt_paid", "checkout.session.completed", rig.paidSession("cs_1")); !strings.Contains(body, `"note":"unprocessable"`) {
			t.Fatalf("answer = %s", body)
		}
		wantWebhookState(t, rig, db.InvoiceOpen, "", "evt_paid=unprocessable")
		if _, err := rig.f.store.Bun().Exec("DROP TRIGGER refuse_payments"); err != nil {
			t.Fatal(err)
		}
		// The operator resends the event from Stripe's dashboard.
		rig.deliver(t, "evt_paid", "checkout.session.completed", rig.paidSession("cs_1"))
		wantWebhookState(t, rig, db.InvoicePaid, "", "evt_paid=paid")
		if got := rig.links.deactivated(); len(got) != 1 {
			t.Errorf("deactivated links = %v", got)
		}
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

// A server wired without a reader of Stripe's events (Deps.PaymentEvents
// nil) refuses every delivery with 503, so Stripe retries, and applies
// nothing, even one that is correctly signed.
func TestStripeWebhookWithoutAReaderIsUnavailable(t *testing.T) {
	f := newFixture(t, map[string]string{"STRIPE_WEBHOOK_SECRET": stripeTestSecret}, func(d *Deps) { d.PaymentEvents = nil })
	payload := []byte(`{"id":"evt_1","object":"event","type":"checkout.session.completed"}`)
	resp, _ := f.postRaw(t, f.client, "/stripe/webhook", "application/json", payload)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", resp.StatusCode)
	}
	if !strings.Contains(f.logs.String(), "no reader of Stripe's events was wired") {
		t.Errorf("the refusal is not logged: %s", f.logs.String())
	}
}
