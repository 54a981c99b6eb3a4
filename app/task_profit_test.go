package app

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"

	"github.com/hossagent/hossagent/db"
)

// A failed task earns nothing: the API and the CSV export give it no reward
// and, as profit, minus what its attempts cost; the profit metric counts
// that cost.
func TestFailedTaskEarnsNothingInTheAPIExportAndMetrics(t *testing.T) {
	f := newFixture(t, nil)
	f.signInAs(t, db.RoleAdmin)
	f.seed(t) // two done usd tasks: profit 13766 + 9800
	ctx := context.Background()
	var c db.Customer
	if err := f.store.Bun().NewSelect().Model(&c).OrderExpr("id").Limit(1).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	failed := &db.Task{CustomerID: c.ID, Kind: "market_research", Description: "Given up", Status: db.TaskFailed, Currency: "usd",
		RewardCents: 15000, CostCents: 300, ProfitCents: 15000 - 300, Attempts: 3, LastError: "gave up", CreatedAt: testNow, UpdatedAt: testNow}
	if _, err := f.store.Bun().NewInsert().Model(failed).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	_, token := f.newAPIToken(t, "test")

	resp, body := f.apiCall(t, f.client, http.MethodGet, "/api/v1/tasks/"+strconv.FormatInt(failed.ID, 10), token)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET task = %d %s", resp.StatusCode, body)
	}
	var r struct {
		Data struct {
			Reward, Cost, Profit struct{ Cents int64 }
		}
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("task %s: %v", body, err)
	}
	task := r.Data
	if task.Reward.Cents != 0 || task.Cost.Cents != 300 || task.Profit.Cents != -300 {
		t.Errorf("API task reward %d cost %d profit %d; want 0, 300, -300", task.Reward.Cents, task.Cost.Cents, task.Profit.Cents)
	}

	_, records := f.exportCSV(t, "tasks")
	col := column(records[0])
	found := false
	for _, r := range records[1:] {
		if r[col["id"]] == strconv.FormatInt(failed.ID, 10) {
			found = true
			if r[col["reward"]] != "0.00" || r[col["cost"]] != "3.00" || r[col["profit"]] != "-3.00" {
				t.Errorf("exported failed task reward %s cost %s profit %s; want 0.00, 3.00, -3.00", r[col["reward"]], r[col["cost"]], r[col["profit"]])
			}
		}
	}
	if !found {
		t.Fatal("failed task not exported")
	}

	wantMetric(t, f.scrape(t, f.client, token), 13766+9800-300, "hossagent_profit_cents", "currency", "usd")
}
