package db

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"
)

// recordQueries is a bun hook that keeps every query the store runs.
type recordQueries struct {
	mu      sync.Mutex
	queries []string
}

func (h *recordQueries) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	return ctx
}

func (h *recordQueries) AfterQuery(_ context.Context, e *bun.QueryEvent) {
	if strings.HasPrefix(e.Query, "EXPLAIN ") {
		return // the test's own plans
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.queries = append(h.queries, e.Query)
}

func (h *recordQueries) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	q := h.queries
	h.queries = nil
	return q
}

// bulkDataset fills d with a large consistent-enough dataset in a few
// set-based statements.
func bulkDataset(t testing.TB, d *DB, leads, customers, tasks, invoices int) {
	t.Helper()
	ctx := context.Background()
	stmts := []string{
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?0)
		 INSERT INTO leads (name, email, company, domain_key, niche, source, status, created_at, updated_at, contacted_at)
		 SELECT 'Person ' || i, 'p' || i || '@lead' || i || '.example', 'Company ' || i, 'lead' || i || '.example',
		        CASE i % 3 WHEN 0 THEN 'Dental' WHEN 1 THEN 'SaaS' ELSE 'Roofing' END, 'synthetic',
		        CASE WHEN i <= ?1 THEN 'converted' WHEN i % 4 = 0 THEN 'new' WHEN i % 4 = 1 THEN 'contacted' ELSE 'dead' END,
		        datetime('2024-01-01', '+' || i || ' minutes'), datetime('2024-01-01', '+' || i || ' minutes'),
		        datetime('2024-01-02', '+' || i || ' minutes') FROM n`,
		`INSERT INTO customers (company, contact_email, plan, lead_id, status, portal_token_hash, token_created_at, created_at)
		 SELECT company, email, 'starter', id, 'active', printf('%064x', id), created_at, created_at FROM leads WHERE id <= ?1`,
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
		 INSERT INTO tasks (customer_id, kind, description, status, currency, reward_cents, cost_cents, profit_cents,
		                    completed_at, created_at, updated_at)
		 SELECT 1 + i % ?1, 'market research brief', 'Brief ' || i, CASE WHEN i % 10 = 0 THEN 'pending' ELSE 'done' END, 'usd',
		        10000, 1500, 8500, CASE WHEN i % 10 = 0 THEN NULL ELSE datetime('2024-03-01', '+' || i || ' minutes') END,
		        datetime('2024-03-01', '+' || i || ' minutes'), datetime('2024-03-01', '+' || i || ' minutes') FROM n`,
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?3)
		 INSERT INTO invoices (customer_id, number, currency, amount_cents, status, issued_at, due_at, paid_at, created_at, updated_at)
		 SELECT 1 + i % ?1, printf('INV-%06d', i), 'usd', 10000, CASE WHEN i % 3 = 0 THEN 'open' ELSE 'paid' END,
		        datetime('2024-04-01', '+' || i || ' hours'), datetime('2024-04-15', '+' || i || ' hours'),
		        CASE WHEN i % 3 = 0 THEN NULL ELSE datetime('2024-04-02', '+' || i || ' hours') END,
		        datetime('2024-04-01', '+' || i || ' hours'), datetime('2024-04-01', '+' || i || ' hours') FROM n`,
		`INSERT INTO invoice_lines (invoice_id, task_id, description, amount_cents, created_at)
		 SELECT i.id, t.id, 'work', 10000, i.created_at FROM invoices AS i JOIN tasks AS t ON t.id = i.id * 2 - 1 WHERE t.status = 'done'`,
		`INSERT INTO messages (lead_id, to_addr, template, subject, body, status, created_at, sent_at, updated_at)
		 SELECT id, email, 'general', 'Hello', 'Body', 'sent', contacted_at, contacted_at, contacted_at FROM leads WHERE status <> 'new'`,
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2 / 4)
		 INSERT INTO agent_runs (agent, trigger, started_at, finished_at, outcome)
		 SELECT CASE i % 5 WHEN 0 THEN 'leadsource' WHEN 1 THEN 'bizdev' WHEN 2 THEN 'onboarding' WHEN 3 THEN 'ops' ELSE 'billing' END,
		        'autopilot', datetime('2024-01-01', '+' || i || ' minutes'), datetime('2024-01-01', '+' || i || ' minutes'),
		        CASE WHEN i % 50 = 0 THEN 'failed' ELSE 'ok' END FROM n`,
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
		 INSERT INTO audit_log (actor, action, target, created_at) SELECT 'ops@x.example', 'agent.run', 'ops', datetime('2024-01-01', '+' || i || ' minutes') FROM n`,
	}
	for _, s := range stmts {
		if _, err := d.Bun().ExecContext(ctx, s, leads, customers, tasks, invoices); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// pageTables are the tables that grow with the business; a page may read
// them only through an index.
var pageTables = regexp.MustCompile(`^(leads|customers|tasks|invoices|invoice_lines|messages|agent_runs|audit_log|replies|l|c|t|i|il|m|r|a)$`)

// attentionIndexes are partial indexes of the rows waiting for someone.
var attentionIndexes = regexp.MustCompile(`USING (COVERING )?INDEX (invoices_need_link|invoices_open_attention)$`)

// planProblems lists what in a query's plan reads a big table whole.
func planProblems(plan []string, query string) []string {
	var out []string
	limited := strings.Contains(query, "LIMIT ")
	for _, step := range plan {
		f := strings.Fields(step)
		if len(f) < 2 || !pageTables.MatchString(f[1]) {
			continue
		}
		// A search on status alone reads every row of that status (all
		// open invoices, all done tasks) unless LIMIT stops it.
		if f[0] == "SEARCH" && strings.HasSuffix(step, "(status=?)") && !limited {
			out = append(out, step)
			continue
		}
		if f[0] != "SCAN" {
			continue
		}
		// Walking an index in order and stopping at LIMIT reads one page.
		if limited && strings.Contains(step, " USING ") && strings.Contains(step, "INDEX") {
			continue
		}
		// A partial index that holds only what needs an operator's
		// attention is small whatever the table's size.
		if attentionIndexes.MatchString(step) {
			continue
		}
		out = append(out, step)
	}
	return out
}

// TestPageQueriesUseIndexes runs everything the dashboard, the control room
// and the portal read, on a large dataset, and fails on any query whose plan
// scans a big table instead of seeking into an index.
func TestPageQueriesUseIndexes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a large dataset")
	}
	d := mustOpen(t)
	bulkDataset(t, d, 20000, 2000, 20000, 4000)
	// The app never runs ANALYZE: plans are checked as it runs them, then
	// again with statistics, which may change the planner's mind.
	t.Run("without statistics", func(t *testing.T) { assertPagePlans(t, d) })
	mustExec(t, d.Bun(), "ANALYZE")
	t.Run("with statistics", func(t *testing.T) { assertPagePlans(t, d) })
}

func assertPagePlans(t *testing.T, d *DB) {
	hook := &recordQueries{}
	// WithQueryHook would return another handle; the store's own must
	// record its queries.
	//lint:ignore SA1019 the store's handle, not a copy, needs the hook
	d.Bun().AddQueryHook(hook)
	ctx := context.Background()
	now := fixedNow
	reads := map[string]func() error{
		"Stats":             func() error { _, err := d.Stats(ctx); return err },
		"AgentRunSummaries": func() error { _, err := d.AgentRunSummaries(ctx); return err },
		"EmailHealth":       func() error { _, err := d.EmailHealth(ctx, now, 5); return err },
		"StripeHealth":      func() error { _, err := d.StripeHealth(ctx, 5); return err },
		"LeadsCreatedSince": func() error { _, err := d.LeadsCreatedSince(ctx, now.Add(-24*time.Hour)); return err },
		"CustomerSummary":   func() error { _, err := d.CustomerSummary(ctx, 7); return err },
		"ListLeads":         func() error { _, _, err := d.ListLeads(ctx, ListQuery{}); return err },
		"ListLeads page 40": func() error {
			_, _, err := d.ListLeads(ctx, ListQuery{Cursor: Cursor{Page: 40, ID: 10000}})
			return err
		},
		"ListLeads back": func() error {
			_, _, err := d.ListLeads(ctx, ListQuery{Cursor: Cursor{Page: 3, ID: 10000, Newer: true}})
			return err
		},
		"ListLeads new":     func() error { _, _, err := d.ListLeads(ctx, ListQuery{Status: LeadNew}); return err },
		"ListLeads search":  func() error { _, _, err := d.ListLeads(ctx, ListQuery{Search: "company 123"}); return err },
		"ListCustomers":     func() error { _, _, err := d.ListCustomers(ctx, ListQuery{}); return err },
		"ListCustomers q":   func() error { _, _, err := d.ListCustomers(ctx, ListQuery{Search: "pany 19"}); return err },
		"ListTasks":         func() error { _, _, err := d.ListTasks(ctx, ListQuery{}); return err },
		"ListTasks done":    func() error { _, _, err := d.ListTasks(ctx, ListQuery{Status: TaskDone, PerPage: 10}); return err },
		"ListTasks search":  func() error { _, _, err := d.ListTasks(ctx, ListQuery{Search: "brief 77"}); return err },
		"ListCustomerTasks": func() error { _, _, err := d.ListCustomerTasks(ctx, 7, ListQuery{PerPage: 20}); return err },
		"ListInvoices":      func() error { _, _, err := d.ListInvoices(ctx, ListQuery{PerPage: 10}); return err },
		"ListInvoices q":    func() error { _, _, err := d.ListInvoices(ctx, ListQuery{Search: "INV-0001"}); return err },
		"ListCustomerInvoices": func() error {
			_, _, err := d.ListCustomerInvoices(ctx, 7, ListQuery{Statuses: []string{InvoicePaid, InvoiceRefunded}, PerPage: 50})
			return err
		},
		"ListAgentRuns": func() error { _, _, err := d.ListAgentRuns(ctx, ListQuery{PerPage: 20}); return err },
		"ListAudit":     func() error { _, _, err := d.ListAudit(ctx, ListQuery{PerPage: 20}); return err },
	}
	for name, read := range reads {
		if err := read(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		queries := hook.take()
		if len(queries) == 0 {
			t.Fatalf("%s ran no query", name)
		}
		for _, q := range queries {
			plan := planOf(t, d, q)
			if problems := planProblems(plan, q); len(problems) > 0 {
				t.Errorf("%s scans a big table: %q\n%s", name, problems, q)
			}
		}
	}
}
