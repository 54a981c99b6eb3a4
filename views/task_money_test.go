package views

import (
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/hossagent/hossagent/db"
)

// A failed task shows no reward and, as profit, minus what its attempts
// cost: in the tasks table, on the customer's page and on its own page.
func TestFailedTaskShowsNoRewardAndItsCostAsLoss(t *testing.T) {
	failed := db.Task{ID: 7, CustomerID: 1, Kind: "report", Status: db.TaskFailed, Currency: "usd",
		RewardCents: 15000, CostCents: 300, ProfitCents: 15000 - 300, Attempts: 3, LastError: "gave up", CreatedAt: now, UpdatedAt: now}
	done := db.Task{ID: 8, CustomerID: 1, Kind: "report", Status: db.TaskDone, Currency: "usd",
		RewardCents: 12000, CostCents: 500, ProfitCents: 11500, Attempts: 1, CompletedAt: ptr(now), CreatedAt: now, UpdatedAt: now}
	rows := []db.TaskRow{{Task: failed, Company: "Acme"}, {Task: done, Company: "Acme"}}

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
	doc, _ := render(t, AdminTasks(AdminPage{Meta: meta(), Tasks: rows}))
	check("tasks table", doc, "#admin-tasks", 4) // id, customer, kind, status, reward, cost, profit, attempts
	doc, _ = render(t, CustomerDetail(CustomerPage{Meta: meta(), Record: db.CustomerDetail{Customer: db.Customer{ID: 1, Company: "Acme"}}, Tasks: rows}))
	check("customer page", doc, "#record-tasks", 3) // task, kind, status, reward, cost, profit, completed

	doc, _ = render(t, TaskDetail(TaskPage{Meta: meta(), Record: db.TaskDetail{Task: failed, Customer: db.Customer{ID: 1, Company: "Acme"}}}))
	fields := map[string]*goquery.Selection{}
	doc.Find("#record-fields dt").Each(func(_ int, dt *goquery.Selection) { fields[text(dt)] = dt.Next() })
	if fields["Reward"] == nil || fields["Profit"] == nil {
		t.Fatal("task page lacks its reward or profit")
	}
	if r, p := text(fields["Reward"]), fields["Profit"]; r != "— (failed: earns nothing)" || text(p) != "-$3.00" || !p.HasClass("bad") {
		t.Errorf("task page reward %q, profit %q", r, text(p))
	}
}
