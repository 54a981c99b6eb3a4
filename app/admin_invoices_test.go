package app

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/chromedp/chromedp"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// invoiceLinksFake is the payment provider of these tests: it records the
// links asked for and the links deactivated, and fails where told.
type invoiceLinksFake struct {
	mu          sync.Mutex
	disabled    bool
	failFor     map[int64]bool // invoice ids whose link creation fails
	requests    []agents.LinkRequest
	deactivated []string
}

func (l *invoiceLinksFake) Enabled() bool { return !l.disabled }

func (l *invoiceLinksFake) CreateLink(_ context.Context, req agents.LinkRequest) (agents.Link, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.requests = append(l.requests, req)
	if l.failFor[req.InvoiceID] {
		return agents.Link{}, errors.New("stripe: card_declined <b>")
	}
	id := strings.TrimSuffix(req.IdempotencyKey, "-link")
	return agents.Link{PriceID: "price_" + id, PaymentLinkID: "plink_" + id, URL: "https://buy.stripe.test/" + id}, nil
}

func (l *invoiceLinksFake) DeactivateLink(_ context.Context, id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.deactivated = append(l.deactivated, id)
	return nil
}

func (l *invoiceLinksFake) calls() ([]agents.LinkRequest, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]agents.LinkRequest(nil), l.requests...), append([]string(nil), l.deactivated...)
}

// newInvoiceFixture is the seeded fixture, signed in as an admin, with links
// as both the link creator and the deactivator (nil: Stripe off).
func newInvoiceFixture(t *testing.T, links *invoiceLinksFake) *fixture {
	t.Helper()
	f := newFixture(t, map[string]string{"BASE_URL": "https://hoss.example.com/"}, func(d *Deps) {
		if links != nil {
			d.Links, d.Payments = links, links
		}
	})
	f.signInAs(t, db.RoleAdmin)
	f.seed(t)
	return f
}

// act posts an htmx action with a reason and returns status and result.
func (f *fixture) invoiceAct(t *testing.T, path, reason string) (int, string, *goquery.Document) {
	t.Helper()
	form := url.Values{}
	if reason != "" {
		form.Set("reason", reason)
	}
	resp, doc := f.post(t, f.client, path, form, f.withOrigin(hxHeaders))
	return resp.StatusCode, text(doc.Find(".result")), doc
}

func (f *fixture) invoice(t *testing.T, id int64) *db.Invoice {
	t.Helper()
	inv, err := f.store.Invoice(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func (f *fixture) requireInvariants(t *testing.T) {
	t.Helper()
	results, err := f.store.CheckInvariants(context.Background(), f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if !r.OK() {
			t.Errorf("invariant %d (%s) broken: %q", r.Number, r.Name, r.Violations)
		}
	}
}

// addBillableTask stores finished, unbilled work for customer 1.
func (f *fixture) addBillableTask(t *testing.T, reward int64) *db.Task {
	t.Helper()
	done := f.clock.Now()
	task := &db.Task{CustomerID: 1, Kind: "copy_pack", Description: "More copy", Status: db.TaskDone, Currency: "usd",
		RewardCents: reward, ProfitCents: reward, Result: "Copy", CompletedAt: &done, CreatedAt: done, UpdatedAt: done}
	if _, err := f.store.Bun().NewInsert().Model(task).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	return task
}

// runBilling runs the real billing cycle once, without payment links.
func (f *fixture) runBilling(t *testing.T) agents.Counts {
	t.Helper()
	cycle := agents.NewBillingCycle(f.store, agents.Env{Now: f.clock.Now}, nil, agents.BillingOptions{BaseURL: f.srv.URL})
	counts, err := cycle.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return counts
}

// invoiceOfTask is the invoices the task is billed on.
func (f *fixture) invoicesOfTask(t *testing.T, taskID int64) []int64 {
	t.Helper()
	var ids []int64
	err := f.store.Bun().NewRaw("SELECT invoice_id FROM invoice_lines WHERE task_id = ? ORDER BY id", taskID).Scan(context.Background(), &ids)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestMarkInvoicePaidByHand(t *testing.T) {
	links := &invoiceLinksFake{}
	f := newInvoiceFixture(t, links)
	mustExecApp(t, f, "UPDATE invoices SET stripe_payment_link_id = 'plink_live' WHERE id = 1")

	status, result, doc := f.invoiceAct(t, "/admin/invoices/1/mark-paid", "  Paid by\nbank   transfer ")
	if status != http.StatusOK || doc.Find("section#invoice-actions").Length() != 1 || doc.Find(".wrap").Length() != 0 {
		t.Fatalf("mark paid: status %d, want the panel alone", status)
	}
	if doc.Find(".result.ok").Length() != 1 || !strings.Contains(result, "INV-000001 ($150.00) marked paid by hand") ||
		!strings.Contains(result, "payment link was deactivated") {
		t.Errorf("result = %q", result)
	}
	if doc.Find("#invoice-mark-paid, #invoice-void").Length() != 0 || !strings.Contains(text(doc.Find("#invoice-actions")), "is paid") {
		t.Errorf("the panel still offers actions on a paid invoice: %q", text(doc.Find("#invoice-actions")))
	}
	inv := f.invoice(t, 1)
	if inv.Status != db.InvoicePaid || inv.PaidAt == nil || !inv.PaidAt.Equal(testNow) || inv.PayerName != "marked paid by admin@hossagent.test" ||
		inv.Flag != "marked paid by hand by admin@hossagent.test: Paid by bank transfer" {
		t.Fatalf("invoice = %+v", inv)
	}
	if _, deactivated := links.calls(); len(deactivated) != 1 || deactivated[0] != "plink_live" {
		t.Errorf("deactivated = %v", deactivated)
	}
	entries := auditFor(t, f, "invoice INV-000001")
	if len(entries) != 1 || entries[0].Action != db.AuditInvoiceMarkedPaid || entries[0].Actor != "admin@hossagent.test" ||
		entries[0].Detail != "$150.00; reason: Paid by bank transfer" {
		t.Fatalf("audit = %+v", entries)
	}
	// The invoice page shows the new state and the entry in its timeline.
	_, page, _ := f.get(t, "/admin/invoices/1")
	if page.Find("#invoice-mark-paid").Length() != 0 || !strings.Contains(text(page.Find("#record-timeline, .timeline")), db.AuditInvoiceMarkedPaid) {
		t.Errorf("invoice page after marking paid: actions %d, timeline %q", page.Find("#invoice-mark-paid").Length(), text(page.Find(".timeline")))
	}
	f.requireInvariants(t)

	// Its task is never billed again; new work goes on a new invoice.
	task := f.addBillableTask(t, 4200)
	if counts := f.runBilling(t); counts["invoiced"] != 1 || counts["lines"] != 1 {
		t.Fatalf("billing counts = %v", counts)
	}
	if got := f.invoicesOfTask(t, 1); len(got) != 1 || got[0] != 1 {
		t.Errorf("task 1 is on invoices %v, want [1]", got)
	}
	newInv := f.invoicesOfTask(t, task.ID)
	if len(newInv) != 1 || newInv[0] == 1 || newInv[0] == 2 {
		t.Fatalf("new task is on invoices %v, want a new one", newInv)
	}
	if inv := f.invoice(t, newInv[0]); inv.Status != db.InvoiceOpen || inv.AmountCents != 4200 {
		t.Errorf("new invoice = %+v", inv)
	}
	if counts := f.runBilling(t); counts["invoiced"] != 0 {
		t.Errorf("a second billing run invoiced again: %v", counts)
	}
	f.requireInvariants(t)
}

func TestVoidInvoiceWritesOffItsWork(t *testing.T) {
	f := newInvoiceFixture(t, nil) // Stripe off: no deactivator
	mustExecApp(t, f, "UPDATE invoices SET stripe_payment_link_id = 'plink_old' WHERE id = 1")
	_, page, _ := f.get(t, "/admin/invoices/1")
	btn := page.Find("button#invoice-void")
	confirm, _ := btn.Attr("hx-confirm")
	if post, _ := btn.Attr("hx-post"); post != "/admin/invoices/1/void" || !strings.Contains(confirm, "never billed again") ||
		!strings.Contains(confirm, "written off") || btn.AttrOr("hx-disable", "") != "this" {
		t.Errorf("void button: hx-post %q, confirm %q", post, confirm)
	}
	if page.Find("input#invoice-action-reason[name=reason][maxlength='500']").Length() != 1 {
		t.Error("no reason input on an open invoice")
	}

	status, result, doc := f.invoiceAct(t, "/admin/invoices/1/void", "customer went bust")
	if status != http.StatusOK || doc.Find(".result.warn").Length() != 1 || !strings.Contains(result, "voided") ||
		!strings.Contains(result, "plink_old is still active") {
		t.Fatalf("void = %d %q", status, result)
	}
	if inv := f.invoice(t, 1); inv.Status != db.InvoiceVoid || inv.PaidAt != nil || inv.Flag != "voided by admin@hossagent.test: customer went bust" {
		t.Fatalf("invoice = %+v", inv)
	}
	if e := auditFor(t, f, "invoice INV-000001"); len(e) != 1 || e[0].Action != db.AuditInvoiceVoided || !strings.Contains(e[0].Detail, "customer went bust") {
		t.Errorf("audit = %+v", e)
	}
	if counts := f.runBilling(t); counts["invoiced"] != 0 {
		t.Errorf("billing re-invoiced written-off work: %v", counts)
	}
	if got := f.invoicesOfTask(t, 1); len(got) != 1 || got[0] != 1 {
		t.Errorf("task 1 is on invoices %v", got)
	}
	// Void is final for these actions too.
	if status, result, _ := f.invoiceAct(t, "/admin/invoices/1/mark-paid", "paid after all"); status != http.StatusConflict ||
		!strings.Contains(result, "INV-000001 is void") {
		t.Errorf("mark paid of a void invoice = %d %q", status, result)
	}
	f.requireInvariants(t)
}

func TestInvoiceActionsRefuse(t *testing.T) {
	f := newInvoiceFixture(t, &invoiceLinksFake{})
	before := *f.invoice(t, 1)
	cases := []struct {
		name, path, reason string
		status             int
		says               string
	}{
		{"paid invoice", "/admin/invoices/2/mark-paid", "twice", http.StatusConflict, "INV-000002 is paid: only an open invoice can be marked paid"},
		{"void a paid invoice", "/admin/invoices/2/void", "undo", http.StatusConflict, "only an open invoice can be voided"},
		{"missing reason", "/admin/invoices/1/mark-paid", "", http.StatusUnprocessableEntity, "at least 3 characters"},
		{"blank reason", "/admin/invoices/1/void", " \t a \n", http.StatusUnprocessableEntity, "at least 3 characters"},
		{"long reason", "/admin/invoices/1/mark-paid", strings.Repeat("é", 501), http.StatusUnprocessableEntity, "at most 500 characters, this one has 501"},
		{"control character", "/admin/invoices/1/void", "bad\x07reason", http.StatusBadRequest, `"reason" holds a control character`}, // refused at the edge (refuseBadText)
		{"unknown invoice", "/admin/invoices/99/mark-paid", "who", http.StatusNotFound, "no invoice 99"},
		{"bad id", "/admin/invoices/01/void", "who", http.StatusNotFound, "no such invoice"},
	}
	for _, c := range cases {
		status, result, _ := f.invoiceAct(t, c.path, c.reason)
		if status != c.status || !strings.Contains(result, c.says) {
			t.Errorf("%s: %d %q, want %d %q", c.name, status, result, c.status, c.says)
		}
	}
	// A refused reason is given back to be corrected.
	_, _, doc := f.invoiceAct(t, "/admin/invoices/1/void", "no")
	if v, _ := doc.Find("input#invoice-action-reason").Attr("value"); v != "no" {
		t.Errorf("reason after a refusal = %q", v)
	}
	// 500 characters of 4 bytes each still fit in the body.
	if status, _, _ := f.invoiceAct(t, "/admin/invoices/2/void", strings.Repeat("😀", 500)); status != http.StatusConflict {
		t.Errorf("a 500-character reason = %d, want it read (409)", status)
	}
	resp, _ := f.post(t, f.client, "/admin/invoices/1/void", url.Values{"reason": {strings.Repeat("x", 20<<10)}}, f.withOrigin(hxHeaders))
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body = %d", resp.StatusCode)
	}
	for _, p := range []string{"/admin/invoices/1/mark-paid", "/admin/invoices/1/void", "/admin/invoices/1/regenerate-link", "/admin/invoices/regenerate-links"} {
		if resp, _, _ := f.get(t, p); resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != http.MethodPost {
			t.Errorf("GET %s = %d", p, resp.StatusCode)
		}
	}
	form := url.Values{"reason": {"sneaky"}}
	if resp, _ := f.post(t, f.client, "/admin/invoices/1/mark-paid", form, map[string]string{"Origin": "https://evil.example"}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site mark paid = %d", resp.StatusCode)
	}
	if resp, _ := f.post(t, newClient(t), "/admin/invoices/1/void", form, f.withOrigin(hxHeaders)); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous void = %d", resp.StatusCode)
	}
	f.createUser(t, "viewer@hossagent.test", db.RoleViewer)
	if resp, _ := f.post(t, f.signIn(t, "viewer@hossagent.test"), "/admin/invoices/1/mark-paid", form, f.withOrigin(hxHeaders)); resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer mark paid = %d", resp.StatusCode)
	}
	if after := f.invoice(t, 1); after.Status != before.Status || after.Flag != before.Flag || after.PaidAt != nil {
		t.Errorf("a refused action changed the invoice: %+v", after)
	}
	if n := countRows(t, f.store, "SELECT COUNT(*) FROM audit_log WHERE action LIKE 'invoice%'"); n != 0 {
		t.Errorf("%d audit entries for refused actions", n)
	}
	f.requireInvariants(t)
}

func TestInvoiceActionsWithoutHTMX(t *testing.T) {
	f := newInvoiceFixture(t, &invoiceLinksFake{})
	resp, _ := f.post(t, f.client, "/admin/invoices/1/mark-paid", url.Values{"reason": {"cash in hand"}}, f.withOrigin(nil))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/invoices/1" {
		t.Errorf("plain mark paid = %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, doc := f.post(t, f.client, "/admin/invoices/1/void", url.Values{"reason": {"too late"}}, f.withOrigin(nil))
	if resp.StatusCode != http.StatusConflict || !strings.Contains(text(doc.Find("main, body")), "only an open invoice can be voided") {
		t.Errorf("plain refused void = %d", resp.StatusCode)
	}
}

// clearLink leaves invoice id without a payment link.
func clearLink(t *testing.T, f *fixture, id int64) {
	t.Helper()
	mustExecApp(t, f, "UPDATE invoices SET payment_url = '', stripe_payment_link_id = '', stripe_price_id = '' WHERE id = ?", id)
}

func TestRegenerateOneInvoiceLink(t *testing.T) {
	links := &invoiceLinksFake{}
	f := newInvoiceFixture(t, links)
	clearLink(t, f, 1)
	_, page, _ := f.get(t, "/admin/invoices/1")
	if post, _ := page.Find("button#invoice-regenerate-link").Attr("hx-post"); post != "/admin/invoices/1/regenerate-link" {
		t.Fatalf("regenerate button posts to %q", post)
	}

	status, result, doc := f.invoiceAct(t, "/admin/invoices/1/regenerate-link", "")
	if status != http.StatusOK || !strings.Contains(result, "Payment link created: https://buy.stripe.test/invoice-1") ||
		doc.Find("#invoice-regenerate-link").Length() != 0 {
		t.Fatalf("regenerate = %d %q", status, result)
	}
	reqs, _ := links.calls()
	want := agents.LinkRequest{InvoiceID: 1, Number: "INV-000001", AmountCents: 15000, Currency: "usd", CustomerEmail: "x@evil.example",
		IdempotencyKey: "invoice-1-link", ReturnURL: "https://hoss.example.com/paid?session_id={CHECKOUT_SESSION_ID}"}
	if len(reqs) != 1 || reqs[0] != want {
		t.Fatalf("requests = %+v", reqs)
	}
	if inv := f.invoice(t, 1); inv.PaymentURL != "https://buy.stripe.test/invoice-1" || inv.StripePaymentLinkID != "plink_invoice-1" || inv.StripePriceID != "price_invoice-1" {
		t.Errorf("invoice = %+v", inv)
	}
	if e := auditFor(t, f, "invoice INV-000001"); len(e) != 1 || e[0].Action != db.AuditInvoiceLinkCreated {
		t.Errorf("audit = %+v", e)
	}
	// Once it has one, another is refused; so is a paid or flagged invoice.
	if status, result, _ := f.invoiceAct(t, "/admin/invoices/1/regenerate-link", ""); status != http.StatusConflict || !strings.Contains(result, "already has a payment link") {
		t.Errorf("second regenerate = %d %q", status, result)
	}
	if status, result, _ := f.invoiceAct(t, "/admin/invoices/2/regenerate-link", ""); status != http.StatusConflict || !strings.Contains(result, "INV-000002 is paid") {
		t.Errorf("regenerate of a paid invoice = %d %q", status, result)
	}
	clearLink(t, f, 1)
	mustExecApp(t, f, "UPDATE invoices SET flag = 'over Stripe maximum' WHERE id = 1")
	if status, result, _ := f.invoiceAct(t, "/admin/invoices/1/regenerate-link", ""); status != http.StatusConflict || !strings.Contains(result, "is flagged (over Stripe maximum)") {
		t.Errorf("regenerate of a flagged invoice = %d %q", status, result)
	}
	// A provider failure stores nothing and says why.
	mustExecApp(t, f, "UPDATE invoices SET flag = '' WHERE id = 1")
	links.failFor = map[int64]bool{1: true}
	status, result, doc = f.invoiceAct(t, "/admin/invoices/1/regenerate-link", "")
	if status != http.StatusBadGateway || !strings.Contains(result, "card_declined <b>") || doc.Find(".result b").Length() != 0 {
		t.Errorf("failed regenerate = %d %q", status, result)
	}
	if inv := f.invoice(t, 1); inv.PaymentURL != "" {
		t.Errorf("a failed link was stored: %q", inv.PaymentURL)
	}
	if reqs, _ := links.calls(); len(reqs) != 2 {
		t.Errorf("%d provider calls, want 2 (refusals call nothing)", len(reqs))
	}
	f.requireInvariants(t)
}

func TestRegenerateMissingLinks(t *testing.T) {
	links := &invoiceLinksFake{}
	f := newInvoiceFixture(t, links)
	clearLink(t, f, 1)
	// Two more open invoices without a link (one fails at the provider) and
	// a flagged one, which is left alone.
	for i, flag := range []string{"", "", "over Stripe maximum"} {
		task := f.addBillableTask(t, int64(1000*(i+1)))
		n := "INV-00001" + string(rune('0'+i))
		inv := &db.Invoice{CustomerID: 1, Number: &n, Currency: "usd", AmountCents: task.RewardCents, Status: db.InvoiceOpen,
			IssuedAt: &testNow, Flag: flag, CreatedAt: testNow.Add(time.Duration(i+1) * time.Minute), UpdatedAt: testNow}
		if _, err := f.store.Bun().NewInsert().Model(inv).Exec(context.Background()); err != nil {
			t.Fatal(err)
		}
		line := &db.InvoiceLine{InvoiceID: inv.ID, TaskID: task.ID, AmountCents: task.RewardCents, CreatedAt: testNow}
		if _, err := f.store.Bun().NewInsert().Model(line).Exec(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	links.failFor = map[int64]bool{4: true}

	resp, doc := f.post(t, f.client, "/admin/invoices/regenerate-links", nil, f.withOrigin(hxHeaders))
	result := text(doc.Find(".result"))
	if resp.StatusCode != http.StatusOK || doc.Find(".result.warn").Length() != 1 || !strings.HasPrefix(result, "2 links created, 1 failed.") {
		t.Fatalf("bulk = %d %q", resp.StatusCode, result)
	}
	reqs, _ := links.calls()
	var asked []int64
	for _, r := range reqs {
		asked = append(asked, r.InvoiceID)
		if r.IdempotencyKey != "invoice-"+strconv.FormatInt(r.InvoiceID, 10)+"-link" || r.ReturnURL != "https://hoss.example.com/paid?session_id={CHECKOUT_SESSION_ID}" {
			t.Errorf("request = %+v", r)
		}
	}
	if len(asked) != 3 || asked[0] != 1 || asked[1] != 3 || asked[2] != 4 {
		t.Errorf("asked for invoices %v, want [1 3 4]", asked)
	}
	for id, want := range map[int64]bool{1: true, 3: true, 4: false, 5: false} {
		if got := f.invoice(t, id).PaymentURL != ""; got != want {
			t.Errorf("invoice %d has a link: %v, want %v", id, got, want)
		}
	}
	if e := auditFor(t, f, "invoices"); len(e) != 1 || e[0].Action != db.AuditPaymentLinksCreated || !strings.HasPrefix(e[0].Detail, "2 links created, 1 failed") ||
		!strings.Contains(e[0].Detail, "stripe: card_declined") {
		t.Errorf("audit = %+v", e)
	}
	// The answer names the invoice that got no link and why (escaped), not
	// "the server log"; the invoice's page and the Stripe panel show it too.
	failed := doc.Find(".result ul.link-failures li")
	if strings.Contains(result, "server log") || failed.Length() != 1 || !strings.Contains(text(failed), "stripe: card_declined <b>") ||
		failed.Find("a").AttrOr("href", "") != "/admin/invoices/4" || doc.Find(".result b").Length() != 0 {
		t.Errorf("bulk answer = %q; failures %q", result, text(failed))
	}
	_, page, _ := f.get(t, "/admin/invoices/4")
	if got := text(page.Find("#invoice-link-error")); !strings.Contains(got, "stripe: card_declined <b>") {
		t.Errorf("invoice 4 link error = %q", got)
	}
	_, admin, _ := f.get(t, "/admin")
	if got := text(admin.Find("#stripe-link-error")); !strings.Contains(got, "stripe: card_declined <b>") || admin.Find("#stripe-link-error a").AttrOr("href", "") != "/admin/invoices/4" {
		t.Errorf("Stripe panel link error = %q", got)
	}
	// Again: only the failed one is tried, and now succeeds.
	links.failFor = nil
	resp, doc = f.post(t, f.client, "/admin/invoices/regenerate-links", nil, f.withOrigin(hxHeaders))
	if got := text(doc.Find(".result.ok")); resp.StatusCode != http.StatusOK || got != "1 link created, 0 failed." {
		t.Errorf("second bulk = %d %q", resp.StatusCode, got)
	}
	if _, page, _ := f.get(t, "/admin/invoices/4"); page.Find("#invoice-link-error").Length() != 0 {
		t.Errorf("invoice 4 kept its link error after its link")
	}
	resp, doc = f.post(t, f.client, "/admin/invoices/regenerate-links", nil, f.withOrigin(hxHeaders))
	if got := text(doc.Find(".result.ok")); !strings.Contains(got, "No open, unflagged invoice is missing a payment link") {
		t.Errorf("third bulk = %d %q", resp.StatusCode, got)
	}
	// Without htmx: back to the control room.
	if resp, _ := f.post(t, f.client, "/admin/invoices/regenerate-links", nil, f.withOrigin(nil)); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin" {
		t.Errorf("plain bulk = %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := f.post(t, f.client, "/admin/invoices/regenerate-links", nil, map[string]string{"Origin": "https://evil.example"}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site bulk = %d", resp.StatusCode)
	}
	if resp, _ := f.post(t, newClient(t), "/admin/invoices/regenerate-links", nil, f.withOrigin(hxHeaders)); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous bulk = %d", resp.StatusCode)
	}
	f.requireInvariants(t)
}

func TestRegenerateLinksWithStripeOff(t *testing.T) {
	for name, links := range map[string]*invoiceLinksFake{"no provider": nil, "disabled provider": {disabled: true}} {
		f := newInvoiceFixture(t, links)
		clearLink(t, f, 1)
		for _, p := range []string{"/admin/invoices/regenerate-links", "/admin/invoices/1/regenerate-link"} {
			resp, doc := f.post(t, f.client, p, nil, f.withOrigin(hxHeaders))
			if got := text(doc.Find(".result.bad")); resp.StatusCode != http.StatusServiceUnavailable || !strings.HasPrefix(got, "Stripe is off") {
				t.Errorf("%s: %s = %d %q", name, p, resp.StatusCode, got)
			}
		}
		if links != nil {
			if reqs, _ := links.calls(); len(reqs) != 0 {
				t.Errorf("%s: the provider was called", name)
			}
		}
	}
}

func TestRegenerateLinksButton(t *testing.T) {
	var buf bytes.Buffer
	if err := views.RegenerateLinksButton().Render(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	doc, err := goquery.NewDocumentFromReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	btn := doc.Find("form[method=post][action='/admin/invoices/regenerate-links'] button#regenerate-links")
	if btn.AttrOr("hx-post", "") != "/admin/invoices/regenerate-links" || btn.AttrOr("hx-disable", "") != "this" ||
		btn.AttrOr("hx-target", "") != "#regenerate-links-result" {
		t.Errorf("button = %q", buf.String())
	}
}

func mustExecApp(t *testing.T, f *fixture, query string, args ...any) {
	t.Helper()
	if _, err := f.store.Bun().ExecContext(context.Background(), query, args...); err != nil {
		t.Fatal(err)
	}
}

// In a real browser: type a reason, click "Mark paid by hand", confirm, and
// the panel comes back in place with the result, with no reload.
func TestBrowserMarkInvoicePaidInPlace(t *testing.T) {
	b := newBrowser(t)
	links := &invoiceLinksFake{}
	f := newFixture(t, nil, func(d *Deps) { d.Links, d.Payments = links, links })
	f.seed(t)
	mustExecApp(t, f, "UPDATE invoices SET stripe_payment_link_id = 'plink_live' WHERE id = 1")
	u := f.createUser(t, "ops@hossagent.test", db.RoleAdmin)
	b.signIn(t, f.srv.URL, u.Email)
	b.acceptDialogs(t)
	b.do(t, chromedp.Navigate(f.srv.URL+"/admin/invoices/1"), chromedp.WaitVisible(chromedp.CSS("#invoice-mark-paid")))
	b.markPage(t)
	b.do(t,
		chromedp.SendKeys(chromedp.CSS("#invoice-action-reason"), "cheque received"),
		chromedp.Click(chromedp.CSS("#invoice-mark-paid")),
	)
	b.waitText(t, "#invoice-actions", "marked paid by hand")
	b.assertNotReloaded(t)
	if n := b.dialogs.Load(); n != 1 {
		t.Errorf("%d confirm dialogs, want 1", n)
	}
	if inv := f.invoice(t, 1); inv.Status != db.InvoicePaid || !strings.Contains(inv.Flag, "cheque received") {
		t.Errorf("invoice = %+v", inv)
	}
	if _, deactivated := links.calls(); len(deactivated) != 1 {
		t.Errorf("deactivated = %v", deactivated)
	}
	b.screenshot(t, "invoice-marked-paid", 1400)
}
