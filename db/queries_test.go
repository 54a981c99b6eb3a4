package db

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/uptrace/bun"
)

func addLeads(t *testing.T, d *DB, from, to int, niche string) {
	t.Helper()
	for i := from; i <= to; i++ {
		_, err := d.CreateLead(context.Background(), nil, NewLead{Email: fmt.Sprintf("p%03d@lead%03d.example", i, i),
			Company: fmt.Sprintf("Lead %03d", i), Niche: niche, Source: "test", DomainKey: fmt.Sprintf("lead%03d.example", i)})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestKeysetPagesStayPutWhileRowsArrive pages through leads by cursor while
// new leads arrive: the next page continues exactly where the first ended,
// and the way back returns to the same rows.
func TestKeysetPagesStayPutWhileRowsArrive(t *testing.T) {
	d := mustOpen(t)
	ctx := context.Background()
	addLeads(t, d, 1, 25, "dental")
	first, pg1, err := d.ListLeads(ctx, ListQuery{PerPage: 10})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(leadIDs(first), []int64{25, 24, 23, 22, 21, 20, 19, 18, 17, 16}) || pg1.Total != 25 || pg1.HasPrev() || !pg1.HasNext() {
		t.Fatalf("first page %v, %+v", leadIDs(first), pg1)
	}
	addLeads(t, d, 26, 30, "dental") // five newer leads arrive
	second, pg2, err := d.ListLeads(ctx, ListQuery{PerPage: 10, Cursor: ParseCursor(pg1.Next.String())})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(leadIDs(second), []int64{15, 14, 13, 12, 11, 10, 9, 8, 7, 6}) || pg2.Number != 2 || pg2.Total != 30 {
		t.Fatalf("second page %v, %+v", leadIDs(second), pg2)
	}
	back, pgBack, err := d.ListLeads(ctx, ListQuery{PerPage: 10, Cursor: pg2.Prev})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(leadIDs(back), leadIDs(first)) || pgBack.Number != 1 || !pgBack.HasPrev() {
		t.Fatalf("back = %v, %+v; want the first page's rows, with the five new ones before them", leadIDs(back), pgBack)
	}
	last, pgLast, err := d.ListLeads(ctx, ListQuery{PerPage: 10, Cursor: Cursor{Page: 3, ID: 6}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(leadIDs(last), []int64{5, 4, 3, 2, 1}) || pgLast.HasNext() || !pgLast.HasPrev() {
		t.Fatalf("last page %v, %+v", leadIDs(last), pgLast)
	}
	// Going back to the newest rows lands on a full first page.
	top, pgTop, err := d.ListLeads(ctx, ListQuery{PerPage: 10, Cursor: Cursor{Page: 2, ID: 27, Newer: true}})
	if err != nil {
		t.Fatal(err)
	}
	if len(top) != 10 || top[0].ID != 30 || pgTop.Number != 1 || pgTop.HasPrev() {
		t.Fatalf("top = %v, %+v", leadIDs(top), pgTop)
	}
}

func TestCursorRoundTripAndJunk(t *testing.T) {
	for _, c := range []Cursor{{Page: 2, ID: 40}, {Page: 1, ID: 7, Newer: true}} {
		if got := ParseCursor(c.String()); got != c {
			t.Errorf("ParseCursor(%q) = %+v", c.String(), got)
		}
	}
	for _, junk := range []string{"", "2", "2-x4", "0-o4", "2-o0", "2-o-4", "x-o4", "9999999-o4", "2-o4x", "2-n"} {
		if got := ParseCursor(junk); got != (Cursor{}) {
			t.Errorf("ParseCursor(%q) = %+v, want the first page", junk, got)
		}
	}
}

// TestSearchUsesTheIndexAndBoundsItsCount: three characters or more go
// through the trigram index (the same matches as a substring search), and
// counting stops at SearchCountCap.
func TestSearchUsesTheIndexAndBoundsItsCount(t *testing.T) {
	d := mustOpen(t)
	ctx := context.Background()
	mustExec(t, d.Bun(), `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1200)
		INSERT INTO leads (name, email, company, niche, source, status, created_at, updated_at)
		SELECT 'Person ' || i, 'p' || i || '@bulk.example', 'Bulk Co ' || i, 'Roofing', 'test', 'new', '2025-01-01', '2025-01-01' FROM n`)
	addLeads(t, d, 1, 3, "dental")
	_, pg, err := d.ListLeads(ctx, ListQuery{Search: "ROOF"})
	if err != nil {
		t.Fatal(err)
	}
	if pg.Total != SearchCountCap || !pg.AtLeast || !pg.HasNext() {
		t.Fatalf("roof: %+v, want a bounded count", pg)
	}
	rows, pg, err := d.ListLeads(ctx, ListQuery{Search: "ead 00"})
	if err != nil {
		t.Fatal(err)
	}
	if pg.Total != 3 || pg.AtLeast || len(rows) != 3 {
		t.Fatalf("ead 00: %d rows, %+v", len(rows), pg)
	}
	// An edit is searchable at once; the old text no longer matches.
	mustExec(t, d.Bun(), "UPDATE leads SET company = 'Renamed Dental' WHERE id = ?", rows[0].ID)
	if _, pg, _ = d.ListLeads(ctx, ListQuery{Search: "renamed"}); pg.Total != 1 {
		t.Errorf("renamed: %+v", pg)
	}
	if _, pg, _ = d.ListLeads(ctx, ListQuery{Search: "ead 003"}); pg.Total != 0 {
		t.Errorf("old name still matches: %+v", pg)
	}
	if testOnPostgres() {
		// PostgreSQL has no FTS5: the search is ILIKE on each column, which
		// the column's pg_trgm index must be able to answer. 1,200 rows are
		// few enough that the planner may rather read them, so the plans
		// are asked for with sequential scans priced out: a plan that still
		// reads leads whole has no index to use. The page may walk
		// leads_created_source to its LIMIT instead (the planner's choice
		// for a common term); the count has no order to walk, so it can
		// only be answered from the five columns' trigram indexes.
		hook := &recordQueries{}
		//lint:ignore SA1019 the store's handle, not a copy, needs the hook
		d.Bun().AddQueryHook(hook)
		if _, _, err := d.ListLeads(ctx, ListQuery{Search: "roof"}); err != nil {
			t.Fatal(err)
		}
		queries := hook.take()
		if len(queries) == 0 {
			t.Fatal("ListLeads ran no query")
		}
		counted := false
		for _, q := range queries {
			plan := pgPlanOf(t, d, q, "SET LOCAL enable_seqscan = off")
			if seq := plan.seqScans("leads", "l"); len(seq) > 0 {
				t.Errorf("search reads leads whole: %s\n%s", plan, q)
			}
			if !strings.Contains(q, "COUNT(*)") {
				continue
			}
			counted = true
			for _, col := range []string{"name", "email", "company", "niche", "website"} {
				if !plan.uses("leads_search_" + col) {
					t.Errorf("the search's count does not use leads_search_%s: %s\n%s", col, plan, q)
				}
			}
		}
		if !counted {
			t.Errorf("no count among the search's queries: %q", queries)
		}
		return
	}
	plan := planOf(t, d, "SELECT rowid FROM leads_fts WHERE leads_fts MATCH ?", ftsPhrase("roof"))
	if len(plan) != 1 || !strings.Contains(plan[0], "VIRTUAL TABLE INDEX") {
		t.Errorf("search plan = %q; want one lookup of the full-text index", plan)
	}
}

// pgPlan is one node of a PostgreSQL plan, as EXPLAIN (FORMAT JSON) gives it.
type pgPlan struct {
	NodeType string   `json:"Node Type"`
	Relation string   `json:"Relation Name"`
	Alias    string   `json:"Alias"`
	Index    string   `json:"Index Name"`
	Plans    []pgPlan `json:"Plans"`
}

// pgPlanOf is PostgreSQL's plan for query (its text holding every value),
// planned in a transaction that first runs settings ("SET LOCAL ...").
func pgPlanOf(t testing.TB, d *DB, query string, settings ...string) pgPlan {
	t.Helper()
	var out []struct{ Plan pgPlan }
	err := d.Bun().RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
		for _, s := range settings {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return err
			}
		}
		var doc string
		if err := tx.QueryRowContext(ctx, "EXPLAIN (FORMAT JSON) "+query).Scan(&doc); err != nil {
			return err
		}
		return json.Unmarshal([]byte(doc), &out)
	})
	if err != nil || len(out) != 1 {
		t.Fatalf("EXPLAIN (FORMAT JSON) %s: %v", query, err)
	}
	return out[0].Plan
}

// walk calls fn on p and every node below it.
func (p pgPlan) walk(fn func(pgPlan)) {
	fn(p)
	for _, c := range p.Plans {
		c.walk(fn)
	}
}

// seqScans are the plan's sequential scans of the tables named (by table
// name or by the alias the query gives them), as "Seq Scan on table alias".
func (p pgPlan) seqScans(names ...string) []string {
	var out []string
	p.walk(func(n pgPlan) {
		if n.NodeType == "Seq Scan" && (slices.Contains(names, n.Relation) || slices.Contains(names, n.Alias)) {
			out = append(out, "Seq Scan on "+n.Relation+" "+n.Alias)
		}
	})
	return out
}

// uses reports whether a node of the plan reads index.
func (p pgPlan) uses(index string) bool {
	found := false
	p.walk(func(n pgPlan) { found = found || n.Index == index })
	return found
}

// String is the plan on one line, node by node, depth first.
func (p pgPlan) String() string {
	var steps []string
	p.walk(func(n pgPlan) {
		step := n.NodeType
		if n.Index != "" {
			step += " using " + n.Index
		}
		if n.Relation != "" {
			step += " on " + n.Relation + " " + n.Alias
		}
		steps = append(steps, step)
	})
	return strings.Join(steps, " | ")
}

// planOf is the detail column of EXPLAIN QUERY PLAN for query.
func planOf(t testing.TB, d *DB, query string, args ...any) []string {
	t.Helper()
	rows, err := d.Bun().QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatalf("explain %s: %v", query, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		out = append(out, detail)
	}
	return out
}

// TestTaskSearchMatchesTheCustomerNameOnly: a task matches its customer's
// company name, not the customer's e-mail or plan.
func TestTaskSearchMatchesTheCustomerNameOnly(t *testing.T) {
	d := mustOpen(t)
	seed(t, d)
	ctx := context.Background()
	_, byName, err := d.ListTasks(ctx, ListQuery{Search: "Customer 07"})
	if err != nil {
		t.Fatal(err)
	}
	_, byPlan, err := d.ListTasks(ctx, ListQuery{Search: "starter"})
	if err != nil {
		t.Fatal(err)
	}
	if byName.Total == 0 || byPlan.Total != 0 {
		t.Errorf("tasks matching a customer name: %d, a plan: %d; want some and none", byName.Total, byPlan.Total)
	}
}
