package db

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// addRuns writes finished runs straight into the cycle log: agent, outcome,
// started one second apart from start.
func addRuns(t *testing.T, d *DB, start time.Time, specs ...[2]string) {
	t.Helper()
	for i, s := range specs {
		at := start.Add(time.Duration(i) * time.Second)
		mustExec(t, d.Bun(), `INSERT INTO agent_runs (agent, trigger, started_at, finished_at, outcome, message)
			VALUES (?, 'autopilot', ?, ?, ?, '')`, s[0], at, at.Add(1500*time.Millisecond), s[1])
	}
}

func runIDs(runs []AgentRun) []int64 {
	out := make([]int64, len(runs))
	for i, r := range runs {
		out[i] = r.ID
	}
	return out
}

// TestListAgentRunsFiltersAndPages: the cycle log filters by agent and by
// outcome, counts each filter from the kept
// totals, and pages by cursor: page 2 shows the same rows after new runs
// arrive, and Previous leads back.
func TestListAgentRunsFiltersAndPages(t *testing.T) {
	d := mustOpen(t)
	ctx := context.Background()
	var specs [][2]string
	for i := range 30 {
		agent, outcome := "billing", RunOK
		if i%3 == 0 {
			agent = "ops"
		}
		switch i % 5 {
		case 1:
			outcome = RunFailed
		case 2:
			outcome = RunPanicked
		}
		specs = append(specs, [2]string{agent, outcome})
	}
	addRuns(t, d, fixedNow.Add(-time.Hour), specs...)

	runs, pg, err := d.ListAgentRuns(ctx, ListQuery{Agent: "billing", Status: RunPanicked, PerPage: 3})
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for i, s := range specs {
		if s[0] == "billing" && i%5 == 2 {
			want++
		}
	}
	if pg.Total != want || len(runs) != 3 || !pg.HasNext() {
		t.Fatalf("billing panics: %d rows, page %+v; want 3 of %d", len(runs), pg, want)
	}
	for _, r := range runs {
		if r.Agent != "billing" || r.Outcome != RunPanicked {
			t.Errorf("filtered page holds %s/%s", r.Agent, r.Outcome)
		}
	}
	if _, pg, _ := d.ListAgentRuns(ctx, ListQuery{Agent: "ops"}); pg.Total != 10 {
		t.Errorf("ops runs counted %d, want 10", pg.Total)
	}

	// Page 2 of everything, then ten new runs: page 2 by its cursor is the
	// same rows, and its Previous page is the one before it.
	first, pg1, _ := d.ListAgentRuns(ctx, ListQuery{PerPage: 10})
	second, pg2, err := d.ListAgentRuns(ctx, ListQuery{PerPage: 10, Cursor: pg1.Next})
	if err != nil || len(second) != 10 || pg2.Number != 2 {
		t.Fatalf("page 2 = %d rows, %+v, %v", len(second), pg2, err)
	}
	addRuns(t, d, fixedNow, [][2]string{{"ops", RunOK}, {"ops", RunOK}, {"billing", RunOK}, {"ops", RunOK}, {"ops", RunOK},
		{"ops", RunOK}, {"ops", RunOK}, {"billing", RunOK}, {"ops", RunOK}, {"ops", RunOK}}...)
	again, _, _ := d.ListAgentRuns(ctx, ListQuery{PerPage: 10, Cursor: pg1.Next})
	if fmt.Sprint(runIDs(again)) != fmt.Sprint(runIDs(second)) {
		t.Errorf("page 2 moved after new runs: %v, was %v", runIDs(again), runIDs(second))
	}
	back, _, _ := d.ListAgentRuns(ctx, ListQuery{PerPage: 10, Cursor: pg2.Prev})
	if fmt.Sprint(runIDs(back)) != fmt.Sprint(runIDs(first)) {
		t.Errorf("Previous from page 2 = %v, want the first page %v", runIDs(back), runIDs(first))
	}
}

// TestAuditSearchWindow: a search matches actor, action and target, not
// the detail; it looks at a bounded window of entries per page, says when
// that window ended first, and its Next link searches on past it, down to
// the oldest match; Previous comes back.
func TestAuditSearchWindow(t *testing.T) {
	d := mustOpen(t)
	ctx := context.Background()
	for i := range 40 {
		e := AuditEntry{Actor: "ops@x.example", Action: "agent.run", Target: fmt.Sprintf("ops-%02d", i), Detail: "needle in detail",
			CreatedAt: fixedNow.Add(time.Duration(i) * time.Minute)}
		if i == 3 || i == 5 || i == 35 {
			e.Target = fmt.Sprintf("Invoice INV-%02d", i)
		}
		if err := d.RecordAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if _, pg, _ := d.ListAudit(ctx, ListQuery{Search: "needle"}); pg.Total != 0 {
		t.Errorf("the detail matched: %+v", pg)
	}
	all, _, err := d.ListAudit(ctx, ListQuery{Search: "inv-"})
	if err != nil || len(all) != 3 || all[0].Target != "Invoice INV-35" {
		t.Fatalf("search inv- = %+v, %v", all, err)
	}
	// A window of 10: the first page sees INV-35 only, and says the rest
	// is not searched yet.
	got, pg, err := d.searchAudit(ctx, ListQuery{Search: "INV-", PerPage: 2}.normal(), 10)
	if err != nil || len(got) != 1 || !pg.WindowEnded || !pg.HasNext() {
		t.Fatalf("window page 1 = %+v, %+v, %v", got, pg, err)
	}
	var found []string
	found = append(found, got[0].Target)
	cur := pg.Next
	for range 10 {
		got, pg, err = d.searchAudit(ctx, ListQuery{Search: "INV-", PerPage: 2, Cursor: cur}.normal(), 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range got {
			found = append(found, e.Target)
		}
		if !pg.HasNext() {
			break
		}
		cur = pg.Next
	}
	if strings.Join(found, ",") != "Invoice INV-35,Invoice INV-05,Invoice INV-03" {
		t.Errorf("paging the windows found %v", found)
	}
	if !pg.HasPrev() {
		t.Fatalf("the last page has no way back: %+v", pg)
	}
	back, _, err := d.searchAudit(ctx, ListQuery{Search: "INV-", PerPage: 2, Cursor: pg.Prev}.normal(), 10)
	if err != nil || len(back) == 0 {
		t.Errorf("Previous = %+v, %v", back, err)
	}
}

// TestRunsAndAuditPagePlans: on 100,000 runs and 100,000 audit entries,
// every filter and page of /admin/runs and every search page of
// /admin/audit walks an index from its cursor to its LIMIT: no scan of
// either table, no sort of every match.
func TestRunsAndAuditPagePlans(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a large dataset")
	}
	d := mustOpen(t)
	const runs = `INSERT INTO agent_runs (agent, trigger, started_at, finished_at, outcome)
		SELECT CASE i % 5 WHEN 0 THEN 'leadsource' WHEN 1 THEN 'bizdev' WHEN 2 THEN 'onboarding' WHEN 3 THEN 'ops' ELSE 'billing' END,
		       'autopilot', {at}, {at},
		       CASE WHEN i % 997 = 0 THEN 'interrupted' WHEN i % 50 = 0 THEN 'failed' WHEN i % 77 = 0 THEN 'panicked' ELSE 'ok' END FROM n`
	const entries = `INSERT INTO audit_log (actor, action, target, created_at)
		SELECT 'ops@x.example', 'agent.run', 'ops ' || i, {at} FROM n`
	for _, insert := range []string{runs, entries} {
		insert = strings.ReplaceAll(insert, "{at}", secondsAfter2026("i"))
		if !d.Postgres() {
			mustExec(t, d.Bun(), `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) `+insert)
			continue
		}
		// In chunks on PostgreSQL: each row's trigger adds it to one kept
		// total, and a row updated many times in one transaction leaves a
		// chain of versions every further update walks, so one statement
		// of 100,000 rows takes minutes. Committed chunks are pruned.
		for from := 1; from <= 100000; from += 2000 {
			mustExec(t, d.Bun(), fmt.Sprintf("WITH n(i) AS (SELECT generate_series(%d, %d)) ", from, from+1999)+insert)
		}
	}
	check := func(t *testing.T) {
		hook := &recordQueries{}
		//lint:ignore SA1019 the store's handle, not a copy, needs the hook
		d.Bun().AddQueryHook(hook)
		ctx := context.Background()
		reads := map[string]func() error{
			"runs": func() error { _, _, err := d.ListAgentRuns(ctx, ListQuery{PerPage: 50}); return err },
			"runs page 90": func() error {
				_, _, err := d.ListAgentRuns(ctx, ListQuery{PerPage: 50, Cursor: Cursor{Page: 90, ID: 50000}})
				return err
			},
			"runs back": func() error {
				_, _, err := d.ListAgentRuns(ctx, ListQuery{PerPage: 50, Cursor: Cursor{Page: 9, ID: 50000, Newer: true}})
				return err
			},
			"runs agent": func() error {
				_, _, err := d.ListAgentRuns(ctx, ListQuery{Agent: "ops", Cursor: Cursor{Page: 4, ID: 60000}})
				return err
			},
			"runs outcome": func() error { _, _, err := d.ListAgentRuns(ctx, ListQuery{Status: RunInterrupted}); return err },
			"runs agent+outcome": func() error {
				_, _, err := d.ListAgentRuns(ctx, ListQuery{Agent: "ops", Status: RunInterrupted})
				return err
			},
			"runs failed": func() error { _, _, err := d.ListAgentRuns(ctx, ListQuery{Status: RunFailed}); return err },
			"runs agent+failed": func() error {
				_, _, err := d.ListAgentRuns(ctx, ListQuery{Agent: "billing", Status: RunFailed})
				return err
			},
			"audit":        func() error { _, _, err := d.ListAudit(ctx, ListQuery{PerPage: 50}); return err },
			"audit search": func() error { _, _, err := d.ListAudit(ctx, ListQuery{Search: "no such thing"}); return err },
			"audit search page": func() error {
				_, _, err := d.ListAudit(ctx, ListQuery{Search: "ops 1", Cursor: Cursor{Page: 3, ID: 70000}})
				return err
			},
			"audit search back": func() error {
				_, _, err := d.ListAudit(ctx, ListQuery{Search: "ops", Cursor: Cursor{Page: 3, ID: 70000, Newer: true}})
				return err
			},
			"latest link error":  func() error { _, err := d.LatestLinkError(ctx); return err },
			"invoice link error": func() error { _, err := d.LinkError(ctx, 7); return err },
		}
		for name, read := range reads {
			if err := read(); err != nil {
				t.Errorf("%s: %v", name, err)
				hook.take()
				continue
			}
			for _, q := range hook.take() {
				if d.Postgres() {
					assertPGRunsAuditPlan(t, d, name, q)
					continue
				}
				plan := planOf(t, d, q)
				if problems := planProblems(plan, q); len(problems) > 0 {
					t.Errorf("%s scans a big table: %q\n%q\n%s", name, problems, plan, q)
				}
				if strings.Contains(q, "agent_runs") && strings.Contains(q, "LIMIT") && (strings.Contains(name, "outcome") || strings.Contains(name, "failed")) &&
					!planUses(plan, "agent_runs_outcome_started") && !planUses(plan, "agent_runs_agent_outcome") {
					t.Errorf("%s does not seek its outcome: %q\n%s", name, plan, q)
				}
			}
		}
	}
	if d.Postgres() {
		// As TestPageQueriesUseIndexes: autovacuum's statistics, not none.
		mustExec(t, d.Bun(), "VACUUM ANALYZE")
		check(t)
		return
	}
	t.Run("without statistics", check)
	mustExec(t, d.Bun(), "ANALYZE")
	t.Run("with statistics", check)
}

// secondsAfter2026 is the SQL of the time i seconds after 2026-01-01 UTC,
// as each database stores it.
func secondsAfter2026(i string) string {
	if testOnPostgres() {
		return "(timestamptz '2026-01-01 00:00:00+00' + (" + i + ") * interval '1 second')"
	}
	return "datetime('2026-01-01', '+' || " + i + " || ' seconds')"
}

// assertPGRunsAuditPlan checks one query of the runs and audit pages on
// PostgreSQL: neither log is read whole, and a filter by outcome seeks it.
func assertPGRunsAuditPlan(t *testing.T, d *DB, name, q string) {
	t.Helper()
	if txControl.MatchString(q) {
		return
	}
	plan := pgPlanOf(t, d, q)
	if seq := plan.seqScans("agent_runs", "audit_log"); len(seq) > 0 {
		t.Errorf("%s scans a big table: %q\nplan: %s\n%s", name, seq, plan, q)
	}
	if strings.Contains(q, "agent_runs") && strings.Contains(q, "LIMIT") && (strings.Contains(name, "outcome") || strings.Contains(name, "failed")) &&
		!plan.uses("agent_runs_outcome_started") && !plan.uses("agent_runs_agent_outcome") {
		t.Errorf("%s does not seek its outcome: %s\n%s", name, plan, q)
	}
	t.Logf("%s: %s", name, plan)
}

// TestLinkErrorsKeptUntilTheLink: a payment-link failure is kept per
// invoice (the newest replaces the last, failures counted), the newest of
// an invoice still without a link is the Stripe panel's, and the link
// clears it.
func TestLinkErrorsKeptUntilTheLink(t *testing.T) {
	d := mustOpen(t)
	ctx := context.Background()
	seed(t, d)
	cands, err := d.InvoicesNeedingPaymentLink(ctx, 10)
	if err != nil || len(cands) < 2 {
		t.Fatalf("candidates = %+v, %v", cands, err)
	}
	a, b := cands[0], cands[1]
	if e, err := d.LatestLinkError(ctx); e != nil || err != nil {
		t.Fatalf("latest before any failure = %+v, %v", e, err)
	}
	if err := d.RecordLinkError(ctx, a.InvoiceID, "connection", "", "dial tcp 127.0.0.1:1: connect: connection refused"); err != nil {
		t.Fatal(err)
	}
	if err := d.RecordLinkError(ctx, a.InvoiceID, "invalid_request_error", "parameter_invalid_integer", "Invalid integer:\n -5"); err != nil {
		t.Fatal(err)
	}
	e, err := d.LinkError(ctx, a.InvoiceID)
	if err != nil || e == nil || e.Failures != 2 || e.Text() != "invalid_request_error/parameter_invalid_integer: Invalid integer: -5" {
		t.Fatalf("LinkError = %+v, %v", e, err)
	}
	if err := d.RecordLinkError(ctx, b.InvoiceID, "api_error", "", strings.Repeat("x", 2000)); err != nil {
		t.Fatal(err)
	}
	latest, err := d.LatestLinkError(ctx)
	if err != nil || latest == nil || latest.InvoiceID != b.InvoiceID || latest.Number != b.Number || len(latest.Message) > 500 {
		t.Fatalf("latest = %+v, %v; want invoice %d, clipped", latest, err, b.InvoiceID)
	}
	if saved, err := d.SetInvoicePaymentLink(ctx, b.InvoiceID, "price_1", "plink_1", "https://pay.example/1", fixedNow); err != nil || !saved {
		t.Fatalf("SetInvoicePaymentLink = %v, %v", saved, err)
	}
	if e, _ := d.LinkError(ctx, b.InvoiceID); e != nil {
		t.Errorf("the link left its error: %+v", e)
	}
	if latest, _ := d.LatestLinkError(ctx); latest == nil || latest.InvoiceID != a.InvoiceID {
		t.Errorf("latest after b got its link = %+v, want invoice %d", latest, a.InvoiceID)
	}
	h, err := d.StripeHealth(ctx, 5)
	if err != nil || h.LastLinkError == nil || h.LastLinkError.InvoiceID != a.InvoiceID {
		t.Errorf("StripeHealth.LastLinkError = %+v, %v", h.LastLinkError, err)
	}
}
