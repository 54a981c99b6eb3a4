package agents

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hossagent/hossagent/db"
)

// fakePayments records link requests and fails the first failFirst of them.
type fakePayments struct {
	mu        sync.Mutex
	failFirst int
	requests  []LinkRequest
}

func (*fakePayments) Enabled() bool { return true }

func (p *fakePayments) CreateLink(_ context.Context, req LinkRequest) (Link, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests = append(p.requests, req)
	if p.failFirst > 0 {
		p.failFirst--
		return Link{}, fmt.Errorf("stripe: unable to create the price of invoice %d: %w", req.InvoiceID,
			&ProviderError{Type: "api_error", Code: "rate_limit", Message: "Too many requests hit the API too quickly."})
	}
	return Link{PriceID: fmt.Sprintf("price_%d", req.InvoiceID), PaymentLinkID: fmt.Sprintf("plink_%d", req.InvoiceID),
		URL: "https://pay.example/" + req.IdempotencyKey}, nil
}

// invoices reads every invoice, by id.
func (w *fulfilmentWorld) invoices() []db.Invoice {
	w.t.Helper()
	var out []db.Invoice
	if err := w.store.Bun().NewSelect().Model(&out).OrderExpr("i.id").Scan(w.ctx); err != nil {
		w.t.Fatal(err)
	}
	return out
}

func (w *fulfilmentWorld) billing(payments PaymentLinks, opts BillingOptions) *BillingCycle {
	if opts.Currency == "" {
		opts.Currency = "usd"
	}
	return NewBillingCycle(w.store, w.env, payments, opts)
}

func TestBillingWithNothingToDo(t *testing.T) {
	w := newFulfilmentWorld(t)
	c := w.customer(1)
	w.task(c.ID, db.TaskPending, 5000, 0)
	w.task(c.ID, db.TaskFailed, 5000, 0)
	counts := w.run(w.billing(&fakePayments{}, BillingOptions{}))
	wantFulfilmentCounts(t, counts, Counts{"invoiced": 0, "lines": 0, "below_minimum": 0, "flagged": 0, "raced": 0, "links": 0, "link_failed": 0})
	if len(w.invoices()) != 0 || len(w.events.kinds()) != 0 {
		t.Errorf("invoices %d, events %v", len(w.invoices()), w.events.kinds())
	}
}

func TestBillingCarriesASmallTotalOverUntilItGrows(t *testing.T) {
	w := newFulfilmentWorld(t)
	c := w.customer(1)
	small := w.task(c.ID, db.TaskDone, 9000, 100)
	cycle := w.billing(nil, BillingOptions{MinAmountCents: 10000})
	wantFulfilmentCounts(t, w.run(cycle), Counts{"invoiced": 0, "below_minimum": 1})
	wantFulfilmentCounts(t, w.run(cycle), Counts{"invoiced": 0, "below_minimum": 1})
	w.requireInvariants() // carried-over work is still billable: none lost

	w.clock.Advance(24 * time.Hour)
	more := w.task(c.ID, db.TaskDone, 12000, 100)
	wantFulfilmentCounts(t, w.run(cycle), Counts{"invoiced": 1, "lines": 2, "below_minimum": 0})
	invs := w.invoices()
	if len(invs) != 1 {
		t.Fatalf("invoices = %d", len(invs))
	}
	inv, now := invs[0], w.clock.Now()
	if inv.AmountCents != 21000 || inv.Status != db.InvoiceOpen || *inv.Number != "INV-000001" || inv.Currency != "usd" ||
		!inv.IssuedAt.Equal(now) || !inv.DueAt.Equal(now.Add(14*24*time.Hour)) || inv.Flag != "" || inv.PaymentURL != "" {
		t.Errorf("invoice = %+v", inv)
	}
	for _, task := range []*db.Task{small, more} {
		if n := w.count("SELECT COUNT(*) FROM invoice_lines WHERE task_id = ? AND invoice_id = ? AND amount_cents = ?", task.ID, inv.ID, task.RewardCents); n != 1 {
			t.Errorf("task %d lines = %d", task.ID, n)
		}
	}
	if k := w.events.kinds(); k[EventMoneyChanged] != 1 || k[EventDataChanged] != 1 {
		t.Errorf("events = %v", k)
	}
}

func TestBillingFlagsATotalOverTheMaximumWithoutALink(t *testing.T) {
	w := newFulfilmentWorld(t)
	big, normal := w.customer(1), w.customer(2)
	for _, reward := range []int64{15000, 20000, 9000, 12000} {
		w.task(big.ID, db.TaskDone, reward, 0)
	}
	w.task(normal.ID, db.TaskDone, 15000, 0)
	payments := &fakePayments{}
	counts := w.run(w.billing(payments, BillingOptions{MaxAmountCents: 50000}))
	wantFulfilmentCounts(t, counts, Counts{"invoiced": 2, "lines": 5, "flagged": 1, "links": 1})
	for _, inv := range w.invoices() {
		switch inv.CustomerID {
		case big.ID:
			if inv.AmountCents != 56000 || inv.Flag != db.FlagOverMaximum || inv.PaymentURL != "" || inv.Status != db.InvoiceOpen {
				t.Errorf("over-maximum invoice = %+v", inv)
			}
		case normal.ID:
			if inv.Flag != "" || inv.PaymentURL == "" {
				t.Errorf("normal invoice = %+v", inv)
			}
		}
	}
	if len(payments.requests) != 1 {
		t.Errorf("link requests = %+v, want one (the flagged invoice gets none)", payments.requests)
	}
}

func TestBillingNumbersAreGaplessAcrossInvoicesAndCycles(t *testing.T) {
	w := newFulfilmentWorld(t)
	var customers []*db.Customer
	for n := range 6 {
		c := w.customer(n)
		customers = append(customers, c)
		reward := int64(5000)
		if n == 2 {
			reward = 50 // below the minimum: takes no number
		}
		w.task(c.ID, db.TaskDone, reward, 0)
	}
	cycle := w.billing(nil, BillingOptions{})
	wantFulfilmentCounts(t, w.run(cycle), Counts{"invoiced": 5, "below_minimum": 1})
	w.task(customers[2].ID, db.TaskDone, 5000, 0)
	w.task(customers[0].ID, db.TaskDone, 5000, 0)
	wantFulfilmentCounts(t, w.run(cycle), Counts{"invoiced": 2})
	var numbers []string
	for _, inv := range w.invoices() {
		numbers = append(numbers, *inv.Number)
	}
	want := []string{"INV-000001", "INV-000002", "INV-000003", "INV-000004", "INV-000005", "INV-000006", "INV-000007"}
	if !slices.Equal(numbers, want) {
		t.Errorf("numbers = %v, want %v", numbers, want)
	}
	if n := w.count("SELECT value FROM counters WHERE name = ?", db.InvoiceCounter); n != 7 {
		t.Errorf("counter = %d, want 7", n)
	}
}

func TestBillingRunTwiceAndConcurrentlyBillsEveryTaskOnce(t *testing.T) {
	w := newFulfilmentWorld(t)
	for n := range 30 {
		c := w.customer(n)
		w.task(c.ID, db.TaskDone, 4000, 0)
		w.task(c.ID, db.TaskDone, 6000, 0)
	}
	cycle := w.billing(nil, BillingOptions{})
	var mu sync.Mutex
	invoiced := 0
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			counts, err := cycle.Run(w.ctx)
			if err != nil {
				t.Errorf("concurrent Run: %v", err)
			}
			mu.Lock()
			invoiced += counts["invoiced"]
			mu.Unlock()
		})
	}
	wg.Wait()
	wantFulfilmentCounts(t, w.run(cycle), Counts{"invoiced": 0, "lines": 0})
	if invoiced != 30 {
		t.Errorf("invoiced counts add to %d, want 30", invoiced)
	}
	if n := w.count("SELECT COUNT(*) FROM invoices"); n != 30 {
		t.Errorf("invoices = %d, want 30", n)
	}
	if n := w.count("SELECT COUNT(*) FROM invoice_lines"); n != 60 {
		t.Errorf("lines = %d, want 60", n)
	}
	if n := w.count("SELECT COUNT(DISTINCT customer_id) FROM invoices WHERE amount_cents = 10000"); n != 30 {
		t.Errorf("customers with one 100.00 invoice = %d, want 30", n)
	}
	if n := w.count("SELECT MAX(CAST(substr(number, 5) AS INTEGER)) FROM invoices"); n != 30 {
		t.Errorf("highest number = %d, want 30 (gapless)", n)
	}
}

func TestBillingAfterPaymentNewWorkGoesOnANewInvoice(t *testing.T) {
	w := newFulfilmentWorld(t)
	c := w.customer(1)
	old := w.task(c.ID, db.TaskDone, 15000, 0)
	cycle := w.billing(nil, BillingOptions{})
	w.run(cycle)
	first := w.invoices()[0]
	w.clock.Advance(48 * time.Hour)
	if _, err := w.store.Bun().ExecContext(w.ctx, "UPDATE invoices SET status = 'paid', paid_at = ? WHERE id = ?", w.clock.Now(), first.ID); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(24 * time.Hour)
	fresh := w.task(c.ID, db.TaskDone, 12000, 0)
	wantFulfilmentCounts(t, w.run(cycle), Counts{"invoiced": 1, "lines": 1})
	wantFulfilmentCounts(t, w.run(cycle), Counts{"invoiced": 0})
	invs := w.invoices()
	if len(invs) != 2 || invs[0].Status != db.InvoicePaid || invs[0].AmountCents != 15000 ||
		invs[1].Status != db.InvoiceOpen || invs[1].AmountCents != 12000 || *invs[1].Number != "INV-000002" {
		t.Fatalf("invoices = %+v", invs)
	}
	if n := w.count("SELECT COUNT(*) FROM invoice_lines WHERE task_id = ?", old.ID); n != 1 {
		t.Errorf("old task billed %d times", n)
	}
	if n := w.count("SELECT COUNT(*) FROM invoice_lines WHERE task_id = ? AND invoice_id = ?", fresh.ID, invs[1].ID); n != 1 {
		t.Error("new work is not on the new invoice")
	}
}

func TestBillingBillsEveryCustomerNotTheFirstHundred(t *testing.T) {
	w := newFulfilmentWorld(t)
	const customers = 2*billingPage + 17
	for n := range customers {
		w.task(w.customer(n).ID, db.TaskDone, 5000, 0)
	}
	wantFulfilmentCounts(t, w.run(w.billing(nil, BillingOptions{})), Counts{"invoiced": customers, "lines": customers})
	if n := w.count(`SELECT COUNT(*) FROM tasks AS t WHERE NOT EXISTS (SELECT 1 FROM invoice_lines AS il WHERE il.task_id = t.id)`); n != 0 {
		t.Errorf("unbilled tasks left = %d", n)
	}
}

func TestBillingSeparatesCurrencies(t *testing.T) {
	w := newFulfilmentWorld(t)
	c := w.customer(1)
	w.task(c.ID, db.TaskDone, 5000, 0)
	eur := w.task(c.ID, db.TaskDone, 7000, 0)
	if _, err := w.store.Bun().ExecContext(w.ctx, "UPDATE tasks SET currency = 'eur' WHERE id = ?", eur.ID); err != nil {
		t.Fatal(err)
	}
	wantFulfilmentCounts(t, w.run(w.billing(nil, BillingOptions{})), Counts{"invoiced": 2, "lines": 2})
	invs := w.invoices()
	if len(invs) != 2 || invs[0].Currency != "eur" || invs[0].AmountCents != 7000 || invs[1].Currency != "usd" || invs[1].AmountCents != 5000 {
		t.Errorf("invoices = %+v", invs)
	}
}

func TestBillingCreatesPaymentLinksAndRetriesFailures(t *testing.T) {
	w := newFulfilmentWorld(t)
	for n := range 3 {
		w.task(w.customer(n).ID, db.TaskDone, 5000+int64(n), 0)
	}
	payments := &fakePayments{failFirst: 1}
	cycle := w.billing(payments, BillingOptions{BaseURL: "https://app.example/", MaxLinksPerCycle: 2})
	// A cycle that left an invoice without its link fails, and says why;
	// the invoice keeps the provider's error until its link exists.
	counts, err := cycle.Run(w.ctx)
	wantFulfilmentCounts(t, counts, Counts{"invoiced": 3, "links": 1, "link_failed": 1})
	if err == nil || !strings.Contains(err.Error(), "1 of 2 payment links failed") || !strings.Contains(err.Error(), "api_error/rate_limit: Too many requests") {
		t.Errorf("first cycle error = %v, want the link failure", err)
	}
	first := w.invoices()[0]
	if e, err := w.store.LinkError(w.ctx, first.ID); err != nil || e == nil || e.Kind != "api_error" || e.Code != "rate_limit" || e.Failures != 1 {
		t.Errorf("invoice %d link error = %+v, %v", first.ID, e, err)
	}
	wantFulfilmentCounts(t, w.run(cycle), Counts{"invoiced": 0, "links": 2, "link_failed": 0})
	if e, err := w.store.LinkError(w.ctx, first.ID); err != nil || e != nil {
		t.Errorf("invoice %d kept its error after its link: %+v, %v", first.ID, e, err)
	}
	wantFulfilmentCounts(t, w.run(cycle), Counts{"links": 0, "link_failed": 0})
	invs := w.invoices()
	// Oldest first, two a cycle: invoice 1 failed then 2 linked; next cycle 1
	// (same key) and 3.
	wantOrder := []int64{invs[0].ID, invs[1].ID, invs[0].ID, invs[2].ID}
	if len(payments.requests) != len(wantOrder) {
		t.Fatalf("requests = %+v", payments.requests)
	}
	for i, req := range payments.requests {
		inv := invs[slices.IndexFunc(invs, func(x db.Invoice) bool { return x.ID == req.InvoiceID })]
		if req.InvoiceID != wantOrder[i] || req.IdempotencyKey != fmt.Sprintf("invoice-%d-link", req.InvoiceID) ||
			req.ReturnURL != "https://app.example/paid?session_id={CHECKOUT_SESSION_ID}" || req.AmountCents != inv.AmountCents || req.Currency != "usd" ||
			req.Number != *inv.Number || req.CustomerEmail == "" {
			t.Errorf("request %d = %+v", i, req)
		}
	}
	for _, inv := range invs {
		if inv.PaymentURL != fmt.Sprintf("https://pay.example/invoice-%d-link", inv.ID) ||
			inv.StripePriceID != fmt.Sprintf("price_%d", inv.ID) || inv.StripePaymentLinkID != fmt.Sprintf("plink_%d", inv.ID) {
			t.Errorf("invoice %d link = %q %q %q", inv.ID, inv.PaymentURL, inv.StripePriceID, inv.StripePaymentLinkID)
		}
	}
}

func TestBillingWithPaymentsDisabledIssuesWithoutLinks(t *testing.T) {
	w := newFulfilmentWorld(t)
	w.task(w.customer(1).ID, db.TaskDone, 5000, 0)
	wantFulfilmentCounts(t, w.run(w.billing(DisabledPayments{}, BillingOptions{})), Counts{"invoiced": 1, "links": 0, "link_failed": 0})
	if inv := w.invoices()[0]; inv.PaymentURL != "" {
		t.Errorf("invoice has a link: %+v", inv)
	}
}

// TestMaskSecrets: a provider's message never keeps a key or an
// Authorization value.
func TestMaskSecrets(t *testing.T) {
	for in, want := range map[string]string{
		"Invalid API Key provided: sk_live_51abcDEF123":     "Invalid API Key provided: sk_live_****",
		"Authorization was 'Bearer not-a-key'.":             "Authorization was 'Bearer ****'.",
		"key rk_test_abcd1234 and whsec_abcdef refused":     "key rk_test_**** and whsec_**** refused",
		"dial tcp 127.0.0.1:1: connect: connection refused": "dial tcp 127.0.0.1:1: connect: connection refused",
	} {
		if got := MaskSecrets(in); got != want {
			t.Errorf("MaskSecrets(%q) = %q, want %q", in, got, want)
		}
	}
}
