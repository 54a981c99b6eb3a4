package stripe

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"

	stripeapi "github.com/stripe/stripe-go/v76"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/agents/agentstest"
	"github.com/hossagent/hossagent/db"
)

// Every Stripe call in these tests goes to stripe-mock v0.180.0 (the
// version pinned in go.mod as a tool, whose OpenAPI spec is stripe-go v76's
// API version), run with -strict-version-check so a request in another API
// version fails. The shared instance starts on first use and is stopped by
// TestMain; tests that need other fixtures start their own.

func TestMain(m *testing.M) {
	code := m.Run()
	sharedMock.stop()
	os.Exit(code)
}

// stripeMock is one stripe-mock process.
type stripeMock struct {
	URL string
	cmd *exec.Cmd
}

// startStripeMock builds stripe-mock through `go tool` (from the module
// cache: no network) and starts it on free ports, with the fixtures file if
// one is given. It returns once the mock listens: stripe-mock binds its
// ports before it prints their addresses.
func startStripeMock(fixtures string) (*stripeMock, error) {
	bin, err := exec.Command("go", "tool", "-n", "stripe-mock").Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			err = fmt.Errorf("%w: %s", err, exit.Stderr)
		}
		return nil, fmt.Errorf("%w: `go tool -n stripe-mock`: %v", errMockUnavailable, err)
	}
	args := []string{"-strict-version-check", "-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0"}
	if fixtures != "" {
		args = append(args, "-fixtures", fixtures)
	}
	cmd := exec.Command(strings.TrimSpace(string(bin)), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start stripe-mock: %w", err)
	}
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		if addr, ok := strings.CutPrefix(lines.Text(), "Listening for HTTP at address: "); ok {
			// stripe-mock logs every request: keep its pipe drained.
			go func() { _, _ = io.Copy(io.Discard, stdout) }()
			return &stripeMock{URL: "http://" + strings.TrimSpace(addr), cmd: cmd}, nil
		}
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return nil, fmt.Errorf("stripe-mock exited before listening: %s", stderr.String())
}

func (m *stripeMock) stop() {
	if m == nil || m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	_ = m.cmd.Wait()
}

var errMockUnavailable = errors.New("stripe-mock cannot be built")

// sharedStripeMock is the package's stripe-mock with its bundled fixtures.
type sharedStripeMock struct {
	once sync.Once
	mock *stripeMock
	err  error
}

var sharedMock sharedStripeMock

func (s *sharedStripeMock) stop() {
	if s.mock != nil {
		s.mock.stop()
	}
}

// needStripeMock returns the shared stripe-mock's URL, skipping the test
// only when stripe-mock cannot be built at all.
func needStripeMock(t *testing.T) string {
	t.Helper()
	sharedMock.once.Do(func() { sharedMock.mock, sharedMock.err = startStripeMock("") })
	return mockURL(t, sharedMock.mock, sharedMock.err)
}

// startOwnStripeMock starts a stripe-mock serving fixtures (the "resources"
// map of a stripe-mock fixtures file), stopped when the test ends.
func startOwnStripeMock(t *testing.T, resources map[string]any) string {
	t.Helper()
	path := t.TempDir() + "/fixtures.json"
	data, err := json.Marshal(map[string]any{"resources": resources})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := startStripeMock(path)
	t.Cleanup(m.stop)
	return mockURL(t, m, err)
}

// mockURL is m's URL. Without stripe-mock the test skips, except under
// CI=true, where a missing stripe-mock fails the run (as a missing chromium
// fails the browser tests): a green CI must have run these.
func mockURL(t testing.TB, m *stripeMock, err error) string {
	t.Helper()
	if errors.Is(err, errMockUnavailable) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("stripe-mock is required under CI=true (it is go.mod's tool: `go tool stripe-mock`): %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return m.URL
}

// stripeCall is one request the adapter sent to Stripe.
type stripeCall struct {
	Method, Path, IdempotencyKey, Version string
	Form                                  url.Values
}

// stripeRecorder forwards requests to stripe-mock and keeps a copy.
type stripeRecorder struct {
	mu    sync.Mutex
	calls []stripeCall
}

func (r *stripeRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	call := stripeCall{Method: req.Method, Path: req.URL.Path, IdempotencyKey: req.Header.Get("Idempotency-Key"),
		Version: req.Header.Get("Stripe-Version"), Form: req.URL.Query()}
	if req.Body != nil {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		if form, err := url.ParseQuery(string(body)); err == nil && len(body) > 0 {
			call.Form = form
		}
	}
	r.mu.Lock()
	r.calls = append(r.calls, call)
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

func (r *stripeRecorder) all() []stripeCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]stripeCall(nil), r.calls...)
}

// newTestStripe is a Payments talking to base through a recorder.
func newTestStripe(base string) (*Payments, *stripeRecorder) {
	rec := &stripeRecorder{}
	return New(Options{APIKey: "sk_test_123", APIBase: base, HTTPClient: &http.Client{Transport: rec}}), rec
}

func wantForm(t *testing.T, call stripeCall, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := call.Form.Get(k); got != v {
			t.Errorf("%s %s: %s = %q, want %q", call.Method, call.Path, k, got, v)
		}
	}
}

func TestStripeCreateLinkAgainstStripeMock(t *testing.T) {
	payments, rec := newTestStripe(needStripeMock(t))
	link, err := payments.CreateLink(context.Background(), agents.LinkRequest{
		InvoiceID: 7, Number: "INV-000007", AmountCents: 12500, Currency: "eur", CustomerEmail: "billing@client.example",
		IdempotencyKey: "invoice-7-link", ReturnURL: "https://hossagent.example/paid",
	})
	if err != nil {
		t.Fatalf("CreateLink: %v", err)
	}
	if !strings.HasPrefix(link.PriceID, "price_") || !strings.HasPrefix(link.PaymentLinkID, "plink_") || !strings.HasPrefix(link.URL, "https://") {
		t.Fatalf("link = %+v", link)
	}
	calls := rec.all()
	if len(calls) != 2 || calls[0].Path != "/v1/prices" || calls[1].Path != "/v1/payment_links" {
		t.Fatalf("calls = %+v", calls)
	}
	for _, c := range calls {
		if c.Method != http.MethodPost || c.Version != stripeapi.APIVersion {
			t.Errorf("call %s %s with version %q", c.Method, c.Path, c.Version)
		}
	}
	if calls[0].IdempotencyKey != "invoice-7-price" || calls[1].IdempotencyKey != "invoice-7-link" {
		t.Errorf("idempotency keys = %q, %q", calls[0].IdempotencyKey, calls[1].IdempotencyKey)
	}
	wantForm(t, calls[0], map[string]string{
		"currency": "eur", "unit_amount": "12500", "product_data[name]": "Invoice INV-000007", "metadata[invoice_id]": "7",
	})
	wantForm(t, calls[1], map[string]string{
		"line_items[0][price]": link.PriceID, "line_items[0][quantity]": "1",
		"restrictions[completed_sessions][limit]": "1",
		"metadata[invoice_id]":                    "7", "payment_intent_data[metadata][invoice_id]": "7",
		"after_completion[type]": "redirect", "after_completion[redirect][url]": "https://hossagent.example/paid",
	})
}

func TestStripeCreateLinkErrors(t *testing.T) {
	base := needStripeMock(t)
	payments, rec := newTestStripe(base)
	ctx := context.Background()
	good := agents.LinkRequest{InvoiceID: 3, Number: "INV-000003", AmountCents: 500, Currency: "usd"}
	for _, bad := range []func(*agents.LinkRequest){
		func(r *agents.LinkRequest) { r.InvoiceID = 0 },
		func(r *agents.LinkRequest) { r.AmountCents = 0 },
		func(r *agents.LinkRequest) { r.Currency = "dollars" },
		func(r *agents.LinkRequest) { r.Number = "" },
	} {
		req := good
		bad(&req)
		if _, err := payments.CreateLink(ctx, req); err == nil {
			t.Errorf("request %+v accepted", req)
		}
	}
	if n := len(rec.all()); n != 0 {
		t.Errorf("invalid requests reached Stripe %d times", n)
	}

	// Stripe refusing the key is an error naming the invoice.
	refused := New(Options{APIKey: "not-a-key", APIBase: base})
	_, err := refused.CreateLink(ctx, good)
	var stripeErr *stripeapi.Error
	if err == nil || !errors.As(err, &stripeErr) || stripeErr.HTTPStatusCode != http.StatusUnauthorized || !strings.Contains(err.Error(), "invoice 3") {
		t.Fatalf("CreateLink with a bad key: %v", err)
	}
	// What is kept of it is Stripe's answer, not the request: no key.
	if f := agents.LinkFailureOf(err); f.Kind != string(stripeErr.Type) || f.Message == "" || strings.Contains(f.Text(), "not-a-key") || strings.Contains(f.Text(), "sk_test_123") {
		t.Errorf("LinkFailureOf(bad key) = %+v (Stripe said %+v)", f, stripeErr)
	}

	// Stripe unreachable is a connection failure, without the key either.
	gone := New(Options{APIKey: "sk_test_secret_gone", APIBase: "http://127.0.0.1:1"})
	_, err = gone.CreateLink(ctx, good)
	if f := agents.LinkFailureOf(err); err == nil || f.Kind != "connection" || !strings.Contains(f.Message, "127.0.0.1:1") || strings.Contains(f.Text(), "sk_test") {
		t.Errorf("LinkFailureOf(unreachable) = %+v for %v", f, err)
	}
}

func TestStripeDeactivateAndListSessions(t *testing.T) {
	payments, rec := newTestStripe(needStripeMock(t))
	ctx := context.Background()
	if err := payments.DeactivateLink(ctx, "plink_123"); err != nil {
		t.Fatalf("DeactivateLink: %v", err)
	}
	sessions, err := payments.CompletedSessions(ctx, "plink_123")
	if err != nil {
		t.Fatalf("CompletedSessions: %v", err)
	}
	if len(sessions) == 0 || !strings.HasPrefix(sessions[0].ID, "cs_") {
		t.Fatalf("sessions = %+v", sessions)
	}
	calls := rec.all()
	if len(calls) != 2 || calls[0].Path != "/v1/payment_links/plink_123" || calls[1].Method != http.MethodGet {
		t.Fatalf("calls = %+v", calls)
	}
	wantForm(t, calls[0], map[string]string{"active": "false"})
	wantForm(t, calls[1], map[string]string{"payment_link": "plink_123", "status": "complete"})
}

func TestBillingCreatesLinksThroughStripeMock(t *testing.T) {
	payments, rec := newTestStripe(needStripeMock(t))
	w := newWorld(t)
	c := w.customer(1)
	w.doneTask(c.ID, 15000, 100)
	w.doneTask(c.ID, 9900, 100)

	counts := w.run(w.billing(payments, agents.BillingOptions{BaseURL: "https://hossagent.example/"}))
	agentstest.WantCounts(t, counts, agents.Counts{"invoiced": 1, "links": 1, "link_failed": 0})
	invs := w.invoices()
	if len(invs) != 1 {
		t.Fatalf("invoices = %d", len(invs))
	}
	inv := invs[0]
	if !strings.HasPrefix(inv.StripePriceID, "price_") || !strings.HasPrefix(inv.StripePaymentLinkID, "plink_") ||
		!strings.HasPrefix(inv.PaymentURL, "https://") {
		t.Fatalf("invoice = %+v", inv)
	}
	calls := rec.all()
	if len(calls) != 2 {
		t.Fatalf("calls = %+v", calls)
	}
	wantForm(t, calls[0], map[string]string{"unit_amount": "24900", "currency": "usd", "product_data[name]": "Invoice " + *inv.Number})
	wantForm(t, calls[1], map[string]string{
		"metadata[invoice_id]": fmt.Sprint(inv.ID), "after_completion[redirect][url]": "https://hossagent.example/paid?session_id={CHECKOUT_SESSION_ID}",
	})
	if calls[1].IdempotencyKey != fmt.Sprintf("invoice-%d-link", inv.ID) {
		t.Errorf("link idempotency key = %q", calls[1].IdempotencyKey)
	}
	// The next cycle finds nothing left to link.
	agentstest.WantCounts(t, w.run(w.billing(payments, agents.BillingOptions{})), agents.Counts{"invoiced": 0, "links": 0})
	if n := len(rec.all()); n != 2 {
		t.Errorf("Stripe calls after a second cycle = %d, want 2", n)
	}
}

// stripeEvent builds a Stripe event of type around object, as Stripe sends
// it in API version 2023-10-16.
func stripeEvent(t *testing.T, id, typ string, object map[string]any) *stripeapi.Event {
	t.Helper()
	raw, err := json.Marshal(map[string]any{
		"id": id, "object": "event", "api_version": stripeapi.APIVersion, "type": typ, "created": 1700000000,
		"data": map[string]any{"object": object},
	})
	if err != nil {
		t.Fatal(err)
	}
	var ev stripeapi.Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	return &ev
}

func TestPaymentEvent(t *testing.T) {
	session := func(paymentStatus string) map[string]any {
		return map[string]any{
			"id": "cs_1", "object": "checkout.session", "status": "complete", "payment_status": paymentStatus,
			"amount_total": 12500, "currency": "eur", "metadata": map[string]string{"invoice_id": "7", "hossagent_install": "hoss-abc"},
			"payment_link": "plink_1", "payment_intent": "pi_1",
			"customer_details": map[string]any{"email": "payer@client.example", "name": "Pat Payer"},
		}
	}
	paid := db.PaymentEvent{EventID: "evt_1", Type: "checkout.session.completed", Kind: db.PaymentSucceeded, InvoiceID: 7, Install: "hoss-abc",
		PaymentLinkID: "plink_1", PaymentIntentID: "pi_1", SessionID: "cs_1", AmountCents: 12500, Currency: "eur",
		PayerEmail: "payer@client.example", PayerName: "Pat Payer"}
	with := func(kind, typ string) db.PaymentEvent { e := paid; e.Kind, e.Type = kind, typ; return e }
	for _, c := range []struct {
		typ    string
		object map[string]any
		want   db.PaymentEvent
	}{
		{"checkout.session.completed", session("paid"), paid},
		{"checkout.session.completed", session("unpaid"), with(db.PaymentPending, "checkout.session.completed")},
		{"checkout.session.async_payment_succeeded", session("paid"), with(db.PaymentSucceeded, "checkout.session.async_payment_succeeded")},
		{"checkout.session.async_payment_failed", session("unpaid"), with(db.PaymentFailed, "checkout.session.async_payment_failed")},
		{"charge.refunded", map[string]any{"id": "ch_1", "object": "charge", "amount": 12500, "amount_refunded": 12500,
			// A charge's metadata selects no invoice: only its PaymentIntent does.
			"refunded": true, "currency": "eur", "payment_intent": "pi_1", "metadata": map[string]string{"invoice_id": "7"}},
			db.PaymentEvent{EventID: "evt_1", Type: "charge.refunded", Kind: db.PaymentRefunded, PaymentIntentID: "pi_1", ChargeID: "ch_1",
				Currency: "eur", RefundedCents: 12500, FullyRefunded: true}},
		{"customer.created", map[string]any{"id": "cus_1", "object": "customer"},
			db.PaymentEvent{EventID: "evt_1", Type: "customer.created", Kind: db.PaymentOther}},
	} {
		got, err := PaymentEvent(stripeEvent(t, "evt_1", c.typ, c.object))
		if err != nil {
			t.Errorf("%s: %v", c.typ, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s:\n got %+v\nwant %+v", c.typ, got, c.want)
		}
	}
	// Metadata that is not an invoice id is ignored, not trusted.
	odd := session("paid")
	odd["metadata"] = map[string]string{"invoice_id": "7; DROP TABLE invoices"}
	if got, _ := PaymentEvent(stripeEvent(t, "evt_2", "checkout.session.completed", odd)); got.InvoiceID != 0 {
		t.Errorf("odd metadata gave invoice %d", got.InvoiceID)
	}
	if _, err := PaymentEvent(stripeEvent(t, "", "checkout.session.completed", session("paid"))); err == nil {
		t.Error("an event without an id was accepted")
	}
}

// Under CI=true a test that needs stripe-mock fails when it cannot be
// built; elsewhere it skips.
func TestStripeMockIsRequiredUnderCI(t *testing.T) {
	for ci, want := range map[string]string{"true": "fatal", "": "skip"} {
		t.Setenv("CI", ci)
		rec := &recordingTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			mockURL(rec, nil, fmt.Errorf("%w: exit status 1", errMockUnavailable))
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
