package app

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/hossagent/hossagent/db"
)

// chartRows is the text alternative of the chart with id: its table's rows,
// each cell's text; it fails unless the chart is an SVG image named by its
// title, with no script.
func chartRows(t *testing.T, in *goquery.Selection, id string) [][]string {
	t.Helper()
	fig := in.Find("#" + id)
	svg := fig.Find("svg[role=img]")
	if fig.Length() != 1 || svg.Length() != 1 {
		t.Fatalf("no SVG chart #%s", id)
	}
	if title := svg.AttrOr("aria-labelledby", ""); title == "" || svg.Find("title#"+title).Length() != 1 {
		t.Fatalf("chart #%s is not named by its title", id)
	}
	if fig.Find("script").Length() > 0 {
		t.Fatalf("chart #%s has a script", id)
	}
	var rows [][]string
	fig.Find(".chart-alt table tbody tr").Each(func(_ int, tr *goquery.Selection) {
		var row []string
		tr.Children().Each(func(_ int, c *goquery.Selection) { row = append(row, text(c)) })
		rows = append(rows, row)
	})
	return rows
}

// rowFor is the row of rows whose first cell is key.
func rowFor(rows [][]string, key string) string {
	for _, r := range rows {
		if len(r) > 0 && r[0] == key {
			return strings.Join(r, "|")
		}
	}
	return ""
}

func TestDashboardChartsCarryTheStoreFigures(t *testing.T) {
	f := newFixture(t, nil)
	f.signInAs(t, db.RoleAdmin)
	f.seed(t)
	ctx := context.Background()
	b := f.store.Bun()
	// testNow is 2026-11-27: this period is 2026-10-29 to 11-27, the one
	// before 2026-09-29 to 10-28. The seed paid $99.00 today; add $12.34
	// paid on 10-10 (beside 11-09 of this period), €5.00 paid today (not
	// in the usd chart), and $40.00 open, due 11-24.
	var cid int64
	if err := b.NewRaw("SELECT id FROM customers LIMIT 1").Scan(ctx, &cid); err != nil {
		t.Fatal(err)
	}
	paidBefore := time.Date(2026, 10, 10, 9, 0, 0, 0, time.UTC)
	due := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	n3, n4, n5 := "INV-000003", "INV-000004", "INV-000005"
	for _, inv := range []*db.Invoice{
		{CustomerID: cid, Number: &n3, Currency: "usd", AmountCents: 1234, Status: db.InvoicePaid, IssuedAt: &paidBefore, PaidAt: &paidBefore},
		{CustomerID: cid, Number: &n4, Currency: "eur", AmountCents: 500, Status: db.InvoicePaid, IssuedAt: &testNow, PaidAt: &testNow},
		{CustomerID: cid, Number: &n5, Currency: "usd", AmountCents: 4000, Status: db.InvoiceOpen, IssuedAt: &testNow, DueAt: &due},
	} {
		inv.CreatedAt, inv.UpdatedAt = testNow, testNow
		if _, err := b.NewInsert().Model(inv).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Of the three leads, one is contacted and one responded.
	mustExecApp(t, f, "UPDATE leads SET status = 'contacted' WHERE company = 'Acme Analytics'")
	mustExecApp(t, f, "UPDATE leads SET status = 'responded' WHERE company = 'Northwind Partners'")

	resp, doc, raw := f.get(t, "/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if strings.Contains(raw, "<script>alert") {
		t.Fatal("unescaped script")
	}
	rev := chartRows(t, doc.Selection, "chart-revenue")
	if len(rev) != 30 {
		t.Fatalf("revenue alternative has %d days, want 30", len(rev))
	}
	if got := rowFor(rev, "2026-11-27"); got != "2026-11-27|$99.00|2026-10-28|$0.00" {
		t.Errorf("today's revenue row %q", got)
	}
	if got := rowFor(rev, "2026-11-09"); got != "2026-11-09|$0.00|2026-10-10|$12.34" {
		t.Errorf("revenue row beside 10-10: %q", got)
	}
	if got := text(doc.Find("#chart-revenue-sum")); got != "Last 30 days $99.00; 30 days before $12.34 (+702.3%)" {
		t.Errorf("revenue summary %q", got)
	}
	if got := doc.Find("#chart-revenue rect.chart-bar").Length(); got != 30 {
		t.Errorf("revenue bars %d", got)
	}
	out := chartRows(t, doc.Selection, "chart-outstanding")
	if got := rowFor(out, "2026-11-24"); got != "2026-11-24|$40.00|2026-10-25|$0.00" {
		t.Errorf("outstanding row %q", got)
	}
	// The funnel: 3 leads, 2 contacted (the responded one was written to
	// first), 1 responded, none converted.
	fun := chartRows(t, doc.Selection, "chart-pipeline")
	want := []string{"Leads|3|—", "Contacted|2|66.7%", "Responded|1|50.0%", "Converted|0|0.0%"}
	for i, w := range want {
		if i >= len(fun) || strings.Join(fun[i], "|") != w {
			t.Errorf("funnel row %d = %v, want %s", i, fun, w)
			break
		}
	}
	if got := text(doc.Find("#chart-pipeline svg")); !strings.Contains(got, "Contacted 2") || !strings.Contains(got, "↓ 66.7%") {
		t.Errorf("funnel labels %q", got)
	}
}

func TestAdminCardsDrawTheirLatestRuns(t *testing.T) {
	f := newFixture(t, nil)
	f.signInAs(t, db.RoleAdmin)
	// 25 billing runs, every 5th failed, run i lasting i seconds: the card
	// draws the latest 20 (6 to 25), of which 4 failed.
	mustExecApp(t, f, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 25)
		INSERT INTO agent_runs (agent, trigger, started_at, finished_at, outcome, message, counts)
		SELECT 'billing', 'autopilot', datetime('2026-11-27 10:00:00', '+' || i || ' minutes'),
		       datetime('2026-11-27 10:00:00', '+' || i || ' minutes', '+' || i || ' seconds'),
		       CASE WHEN i % 5 = 0 THEN 'failed' ELSE 'ok' END, '', '{}' FROM n`)
	resp, doc, _ := f.get(t, "/admin")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	card := doc.Find("#agent-billing")
	rows := chartRows(t, card, "spark-billing")
	if len(rows) != 20 {
		t.Fatalf("sparkline alternative has %d runs, want 20", len(rows))
	}
	if got := strings.Join(rows[0], "|"); got != "2026-11-27 10:06:00|ok|6s" {
		t.Errorf("oldest run drawn %q", got)
	}
	if got := strings.Join(rows[19], "|"); got != "2026-11-27 10:25:00|failed|25s" {
		t.Errorf("latest run drawn %q", got)
	}
	if got := card.Find("#spark-billing circle.chart-fail").Length(); got != 4 {
		t.Errorf("failure markers %d, want 4", got)
	}
	if got := text(card.Find("#spark-billing figcaption")); got != "20 runs: 16 ok, 4 failed; longest 25s" {
		t.Errorf("sparkline summary %q", got)
	}
	// An agent that never ran says so instead of drawing nothing.
	if got := text(doc.Find("#spark-ops")); got != "No runs yet." {
		t.Errorf("ops sparkline %q", got)
	}
}

func TestEmailHealthDrawsSentAgainstCaps(t *testing.T) {
	f := newActionFixture(t, actionOptions{env: map[string]string{"MAX_EMAILS_PER_HOUR": "40"}})
	f.signInAs(t, db.RoleAdmin)
	seedHealth(t, f)
	resp, doc, _ := f.get(t, "/admin")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// The panel's own figures: 2 of 40 in the last hour, 3 of 200 in 24 h.
	rows := chartRows(t, doc.Selection, "chart-email-caps")
	if got := rowFor(rows, "Last hour"); got != "Last hour|2|40|2 of 40 (5.0%)" {
		t.Errorf("hourly cap row %q", got)
	}
	if got := rowFor(rows, "Last 24 h"); got != "Last 24 h|3|200|3 of 200 (1.5%)" {
		t.Errorf("daily cap row %q", got)
	}
	if got := doc.Find("#chart-email-caps rect.chart-bar").Length(); got != 2 {
		t.Errorf("cap bars %d, want 2", got)
	}
}
