package db

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestChartSeries(t *testing.T) {
	d := mustOpen(t)
	seed(t, d)
	ctx := context.Background()
	day := 24 * time.Hour
	// Paid usd invoices 13-20 and 30, all paid 20 days ago; the refunded
	// ones (23-25) are not revenue.
	got, err := d.RevenueByDay(ctx, "usd", fixedNow.Add(-30*day), fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[{2025-02-22 20400}]" {
		t.Errorf("usd revenue by day %v", got)
	}
	if got, _ := d.RevenueByDay(ctx, "eur", fixedNow.Add(-30*day), fixedNow); fmt.Sprint(got) != "[{2025-02-22 2000}]" {
		t.Errorf("eur revenue by day %v", got)
	}
	if got, _ := d.RevenueByDay(ctx, "usd", fixedNow.Add(-19*day), fixedNow); len(got) != 0 {
		t.Errorf("revenue outside the range: %v", got)
	}
	// Open usd invoices 5-8 fell due 5-8 days ago; 9 and 29 fall due today.
	open, err := d.OpenByDueDay(ctx, "usd", fixedNow.Add(-10*day), fixedNow.Add(day))
	if err != nil {
		t.Fatal(err)
	}
	if want := "[{2025-03-06 1300} {2025-03-07 1200} {2025-03-08 1100} {2025-03-09 1000} {2025-03-14 5500}]"; fmt.Sprint(open) != want {
		t.Errorf("open by due day %v, want %s", open, want)
	}

	mustExec(t, d.Bun(), `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30)
		INSERT INTO agent_runs (agent, trigger, started_at, finished_at, outcome)
		SELECT CASE i % 2 WHEN 0 THEN 'bizdev' ELSE 'ops' END, 'autopilot', `+testMinutesAfter2026("i", "0")+`,
		       `+testMinutesAfter2026("i", "i")+`, CASE WHEN i % 3 = 0 THEN 'failed' ELSE 'ok' END FROM n`)
	runs, err := d.RecentRuns(ctx, []string{"bizdev", "ops", "billing"}, 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs["bizdev"]) != 4 || len(runs["ops"]) != 4 || len(runs["billing"]) != 0 {
		t.Fatalf("recent runs %v", runs)
	}
	// bizdev ran at even minutes: the latest four are 24, 26, 28, 30, oldest first.
	b := runs["bizdev"]
	if b[0].StartedAt.Minute() != 24 || b[3].StartedAt.Minute() != 30 || b[3].Outcome != RunFailed || b[1].Outcome != RunOK {
		t.Errorf("bizdev runs %+v", b)
	}
	if b[3].FinishedAt == nil || b[3].FinishedAt.Sub(b[3].StartedAt) != 30*time.Second {
		t.Errorf("duration of the latest run: %+v", b[3])
	}
}
