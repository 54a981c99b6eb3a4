package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/hossagent/hossagent/db"
)

var testNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

const evil = "<script>alert(1)</script>"

// payOpenInvoices marks every open invoice paid straight in the database,
// as a payment would, without publishing anything.
func (f *fixture) payOpenInvoices(t *testing.T) {
	t.Helper()
	if _, err := f.store.Bun().NewUpdate().Table("invoices").Set("status = 'paid', paid_at = ?", testNow).
		Where("status = 'open'").Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// seed stores a small business: leads (one with a hostile company name), a
// customer with done work, an open invoice with a payment link and a paid one.
func (f *fixture) seed(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for i, company := range []string{"Acme Analytics", evil, "Northwind Partners"} {
		_, err := f.store.CreateLead(ctx, nil, db.NewLead{
			Name: "Contact", Email: []string{"a@acme.example", "x@evil.example", "n@northwind.example"}[i],
			Company: company, Source: "synthetic", Niche: "agency",
			DomainKey: []string{"acme.example", "evil.example", "northwind.example"}[i],
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	c, token, err := f.store.CreateCustomer(ctx, nil, db.NewCustomer{Company: evil, ContactEmail: "x@evil.example", Plan: "starter"}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f.token = token
	b := f.store.Bun()
	done := testNow.Add(-time.Hour)
	tasks := []*db.Task{
		{CustomerID: c.ID, Kind: "market_research", Description: "Market research brief", Status: db.TaskDone, Currency: "usd",
			RewardCents: 15000, CostCents: 1234, ProfitCents: 13766, Result: "Findings: " + evil, CompletedAt: &done},
		{CustomerID: c.ID, Kind: "copy_pack", Description: "Outreach copy pack", Status: db.TaskDone, Currency: "usd",
			RewardCents: 9900, CostCents: 100, ProfitCents: 9800, Result: "Copy", CompletedAt: &done},
	}
	for _, task := range tasks {
		task.CreatedAt, task.UpdatedAt = testNow, testNow
		if _, err := b.NewInsert().Model(task).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	due := testNow.Add(14 * 24 * time.Hour)
	n1, n2 := "INV-000001", "INV-000002"
	invoices := []*db.Invoice{
		{CustomerID: c.ID, Number: &n1, Currency: "usd", AmountCents: 15000, Status: db.InvoiceOpen, IssuedAt: &testNow, DueAt: &due,
			PaymentURL: "https://buy.stripe.com/test_abc"},
		{CustomerID: c.ID, Number: &n2, Currency: "usd", AmountCents: 9900, Status: db.InvoicePaid, IssuedAt: &testNow, DueAt: &due, PaidAt: &done},
	}
	for i, inv := range invoices {
		inv.CreatedAt, inv.UpdatedAt = testNow, testNow
		if _, err := b.NewInsert().Model(inv).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		line := &db.InvoiceLine{InvoiceID: inv.ID, TaskID: tasks[i].ID, Description: tasks[i].Description, AmountCents: tasks[i].RewardCents, CreatedAt: testNow}
		if _, err := b.NewInsert().Model(line).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func text(s *goquery.Selection) string { return strings.Join(strings.Fields(s.Text()), " ") }

func TestDashboardShowsStoreFigures(t *testing.T) {
	f := newFixture(t, nil)
	f.signInAs(t, db.RoleAdmin)
	f.seed(t)
	resp, doc, raw := f.get(t, "/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// Collected: the paid 99.00, less its task's cost 1.00; outstanding: the
	// open 150.00; the list value of both done tasks is not profit.
	for label, want := range map[string]string{
		"Collected": "$99.00", "Profit on collected": "$98.00", "Outstanding": "$150.00", "Work done (list)": "$249.00",
	} {
		if got := cardValue(doc, "#dash-cards", label); got != want {
			t.Errorf("%s card = %q, want %q", label, got, want)
		}
	}
	if got := doc.Find("#dash-work tbody tr").Length(); got != 2 {
		t.Errorf("recent work rows = %d, want 2", got)
	}
	if got := doc.Find("#dash-invoices tbody tr").Length(); got != 2 {
		t.Errorf("invoice rows = %d, want 2", got)
	}
	if !strings.Contains(text(doc.Find("#dash-leads")), evil) || strings.Contains(raw, "<script>alert") {
		t.Errorf("hostile company name not shown as text")
	}
	if got := doc.Find("#dash-leads tbody tr").Length(); got != 3 {
		t.Errorf("lead rows = %d, want 3", got)
	}
	assertSecurityHeaders(t, resp)
}

func TestDashboardOnEmptyDatabase(t *testing.T) {
	f := newFixture(t, nil)
	f.signInAs(t, db.RoleAdmin)
	resp, doc, _ := f.get(t, "/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := text(doc.Find("#dash-work .empty")); !strings.Contains(got, "No completed tasks yet") {
		t.Errorf("empty work row = %q", got)
	}
	if !strings.Contains(text(doc.Find("#dash-cards")), "$0.00") {
		t.Errorf("cards on empty database: %q", text(doc.Find("#dash-cards")))
	}
}

func TestAdminShowsAgentsAndTables(t *testing.T) {
	f := newFixture(t, nil)
	f.signInAs(t, db.RoleAdmin)
	f.seed(t)
	ctx := context.Background()
	run, err := f.store.StartRun(ctx, "billing", db.TriggerManual)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.FinishRun(ctx, run, db.RunFailed, "stripe unreachable", map[string]int{"invoices": 0}); err != nil {
		t.Fatal(err)
	}
	resp, doc, _ := f.get(t, "/admin")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := doc.Find("#admin-agents .agent-card").Length(); got != 7 {
		t.Errorf("agent cards = %d, want 7", got)
	}
	if got := text(doc.Find("#agent-billing")); !strings.Contains(got, "stripe unreachable") {
		t.Errorf("billing card = %q, want its last error", got)
	}
	if got := text(doc.Find("#admin-runs")); !strings.Contains(got, "billing") || !strings.Contains(got, "stripe unreachable") {
		t.Errorf("cycle log = %q", got)
	}
	if got := doc.Find("#admin-leads tbody tr").Length(); got != 3 {
		t.Errorf("lead rows = %d, want 3", got)
	}
	if got := doc.Find("#admin-invoices tbody tr").Length(); got != 2 {
		t.Errorf("invoice rows = %d, want 2", got)
	}
	// Search narrows every table.
	_, doc, _ = f.get(t, "/admin?q=northwind")
	if got := doc.Find("#admin-leads tbody tr").Length(); got != 1 {
		t.Errorf("lead rows for q=northwind = %d, want 1", got)
	}
}

func TestAdminOutsideDevelopmentNeedsAnAdmin(t *testing.T) {
	f := newFixture(t, map[string]string{"RELEASE_MODE": "STAGING"})
	f.seed(t)
	resp, _, raw := f.get(t, "/admin")
	if resp.StatusCode != http.StatusSeeOther || strings.Contains(raw, "a@acme.example") {
		t.Fatalf("anonymous: status %d, want 303 and no data", resp.StatusCode)
	}
	f.signInAs(t, db.RoleAdmin)
	if resp, doc, _ := f.get(t, "/admin"); resp.StatusCode != http.StatusOK || doc.Find("#admin-leads").Length() != 1 {
		t.Errorf("signed-in admin in STAGING: status %d", resp.StatusCode)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	f := newFixture(t, nil)
	resp, _, body := f.get(t, "/healthz")
	if resp.StatusCode != http.StatusOK || body != "ok\n" {
		t.Errorf("healthz = %d %q", resp.StatusCode, body)
	}
	resp, _, body = f.get(t, "/readyz")
	if resp.StatusCode != http.StatusOK || body != "ready\n" {
		t.Errorf("readyz = %d %q", resp.StatusCode, body)
	}
	f.store.Close()
	resp, _, body = f.get(t, "/readyz")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "database") {
		t.Errorf("readyz with the database closed = %d %q", resp.StatusCode, body)
	}
}

func TestAssetsAreEmbeddedAndLongCached(t *testing.T) {
	f := newFixture(t, nil)
	f.signInAs(t, db.RoleAdmin)
	_, doc, _ := f.get(t, "/")
	var urls []string
	doc.Find(`link[rel="stylesheet"], link[rel="icon"], script[src]`).Each(func(_ int, s *goquery.Selection) {
		u, ok := s.Attr("href")
		if !ok {
			u, _ = s.Attr("src")
		}
		urls = append(urls, u)
	})
	if len(urls) != 6 { // the favicon, the stylesheet, htmx, its SSE extension, our own script and live.js
		t.Fatalf("asset urls = %v", urls)
	}
	for _, u := range urls {
		resp, _, body := f.get(t, u)
		if resp.StatusCode != http.StatusOK || len(body) < 100 {
			t.Errorf("GET %s = %d (%d bytes)", u, resp.StatusCode, len(body))
		}
		if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=31536000") {
			t.Errorf("GET %s Cache-Control = %q", u, cc)
		}
	}
	if resp, _, _ := f.get(t, "/assets/nope.js"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("missing asset = %d", resp.StatusCode)
	}
}

func TestUnknownPageAndMethod(t *testing.T) {
	f := newFixture(t, nil)
	resp, doc, _ := f.get(t, "/no/such/page")
	if resp.StatusCode != http.StatusNotFound || text(doc.Find(".error-page h1")) != "404" {
		t.Errorf("unknown page = %d %q", resp.StatusCode, text(doc.Find(".error-page h1")))
	}
	resp, err := f.client.Post(f.srv.URL+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST / = %d, want 405", resp.StatusCode)
	}
}

func TestPanicAnswersPlain500(t *testing.T) {
	logs := &bytes.Buffer{}
	s := &Server{log: slog.New(slog.NewTextHandler(logs, nil)), now: func() time.Time { return testNow }}
	h := s.recoverPanics(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d", rec.Code)
	}
	doc, err := goquery.NewDocumentFromReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got := text(doc.Find(".error-page h1")); got != "500" {
		t.Errorf("500 page heading = %q", got)
	}
	if strings.Contains(text(doc.Selection), "boom") || strings.Contains(text(doc.Selection), "goroutine") {
		t.Errorf("500 page shows the panic")
	}
	if !strings.Contains(logs.String(), "boom") || !strings.Contains(logs.String(), "stack") {
		t.Errorf("panic not logged with its stack: %s", logs.String())
	}
}

func assertSecurityHeaders(t *testing.T, resp *http.Response) {
	t.Helper()
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP = %q", csp)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("security headers missing: %v", resp.Header)
	}
}

// addDoneTask stores a done, unbilled task worth cents for the seeded
// customer (its first customer).
func (f *fixture) addDoneTask(t *testing.T, cents int64) {
	t.Helper()
	ctx := context.Background()
	var c db.Customer
	if err := f.store.Bun().NewSelect().Model(&c).OrderExpr("id").Limit(1).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	done := testNow.Add(-time.Minute)
	task := &db.Task{CustomerID: c.ID, Kind: "competitive_landscape", Description: "Competitive landscape review",
		Status: db.TaskDone, Currency: "usd", RewardCents: cents, ProfitCents: cents, Result: "Review", CompletedAt: &done,
		CreatedAt: testNow, UpdatedAt: testNow}
	if _, err := f.store.Bun().NewInsert().Model(task).Exec(ctx); err != nil {
		t.Fatal(err)
	}
}
