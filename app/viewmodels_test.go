package app

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"

	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// renderView renders a view component and parses it.
func renderView(t *testing.T, c templ.Component) *goquery.Document {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Render(context.Background(), &buf); err != nil {
		t.Fatalf("render: %v", err)
	}
	doc, err := goquery.NewDocumentFromReader(&buf)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return doc
}

// A failed task shows no reward and, as profit, minus what its attempts
// cost: in the tasks table, on the customer's page and on its own page.
// The store's rows go through the view models as the handlers' do.
func TestFailedTaskShowsNoRewardAndItsCostAsLoss(t *testing.T) {
	now := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	meta := views.Meta{Title: "Test", Now: now, Currency: "usd"}
	failed := db.Task{ID: 7, CustomerID: 1, Kind: "report", Status: db.TaskFailed, Currency: "usd",
		RewardCents: 15000, CostCents: 300, ProfitCents: 15000 - 300, Attempts: 3, LastError: "gave up", CreatedAt: now, UpdatedAt: now}
	done := db.Task{ID: 8, CustomerID: 1, Kind: "report", Status: db.TaskDone, Currency: "usd",
		RewardCents: 12000, CostCents: 500, ProfitCents: 11500, Attempts: 1, CompletedAt: &now, CreatedAt: now, UpdatedAt: now}
	rows := viewsOf([]db.TaskRow{{Task: failed, Company: "Acme"}, {Task: done, Company: "Acme"}}, taskRowView)
	customer := db.Customer{ID: 1, Company: "Acme"}

	// reward is the index of the reward column; profit is two further on.
	check := func(where string, doc *goquery.Document, region string, reward int) {
		t.Helper()
		trs := doc.Find(region + " tbody tr")
		if trs.Length() != 2 {
			t.Fatalf("%s: %d rows", where, trs.Length())
		}
		cells := trs.Eq(0).Find("td")
		if r, p := text(cells.Eq(reward)), cells.Eq(reward+2); r != "—" || text(p) != "-$3.00" || !p.HasClass("bad") {
			t.Errorf("%s: failed task reward %q, profit %q (class %q); want —, -$3.00 in red", where, r, text(p), p.AttrOr("class", ""))
		}
		cells = trs.Eq(1).Find("td")
		if r, p := text(cells.Eq(reward)), text(cells.Eq(reward+2)); r != "$120.00" || p != "$115.00" {
			t.Errorf("%s: done task reward %q, profit %q; want $120.00, $115.00", where, r, p)
		}
	}
	doc := renderView(t, views.AdminTasks(views.AdminPage{Meta: meta, Tasks: rows}))
	check("tasks table", doc, "#admin-tasks", 4) // id, customer, kind, status, reward, cost, profit, attempts
	doc = renderView(t, views.CustomerDetail(views.CustomerPage{Meta: meta, Record: customerRecordView(db.CustomerDetail{Customer: customer}), Tasks: rows}))
	check("customer page", doc, "#record-tasks", 3) // task, kind, status, reward, cost, profit, completed

	doc = renderView(t, views.TaskDetail(views.TaskPage{Meta: meta, Record: taskRecordView(db.TaskDetail{Task: failed, Customer: customer})}))
	fields := map[string]*goquery.Selection{}
	doc.Find("#record-fields dt").Each(func(_ int, dt *goquery.Selection) { fields[text(dt)] = dt.Next() })
	if fields["Reward"] == nil || fields["Profit"] == nil {
		t.Fatal("task page lacks its reward or profit")
	}
	if r, p := text(fields["Reward"]), fields["Profit"]; r != "— (failed: earns nothing)" || text(p) != "-$3.00" || !p.HasClass("bad") {
		t.Errorf("task page reward %q, profit %q", r, text(p))
	}
}

// An open invoice past its due date is overdue on the portal, in the store's
// sense at the page's time; one not yet due, or paid, is not.
func TestPortalInvoicesOverdueAtPageTime(t *testing.T) {
	now := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	past, future := now.Add(-time.Hour), now.Add(time.Hour)
	rows := []db.InvoiceRow{
		{Invoice: db.Invoice{Status: db.InvoiceOpen, DueAt: &past}},
		{Invoice: db.Invoice{Status: db.InvoiceOpen, DueAt: &future}},
		{Invoice: db.Invoice{Status: db.InvoicePaid, DueAt: &past}},
	}
	for i, want := range []bool{true, false, false} {
		got := portalInvoiceRow(rows[i].Invoice, now)
		if got.Overdue != want || got.Overdue != rows[i].Overdue(now) || (want && got.OverdueDays != 1) {
			t.Errorf("invoice %d overdue = %v (%d days), want %v", i, got.Overdue, got.OverdueDays, want)
		}
	}
}

// The customer page shows the start of the portal token's hash, and its
// view model holds no more of it than that.
func TestCustomerViewHoldsOnlyTheShownHash(t *testing.T) {
	hash := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	v := customerView(db.Customer{ID: 1, Company: "Acme", PortalTokenHash: hash})
	if v.PortalToken != "sha256 0123456789ab…" {
		t.Errorf("portal token shown as %q", v.PortalToken)
	}
	if short := customerView(db.Customer{}).PortalToken; short != "—" {
		t.Errorf("empty hash shown as %q", short)
	}
}
