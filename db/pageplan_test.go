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

// pageTables are the tables that grow with the business; a page may read
// them only through an index.
var pageTables = regexp.MustCompile(`^(leads|customers|tasks|invoices|invoice_lines|messages|agent_runs|audit_log|replies|client_messages|client_attachments|l|c|t|i|il|m|r|a|cm|ca)$`)

// attentionIndexes are partial indexes of the rows waiting for someone
// (client_messages_sendable: the client e-mail still to send, which every
// Collections cycle drains).
var attentionIndexes = regexp.MustCompile(`USING (COVERING )?INDEX (invoices_need_link|invoices_open_attention|client_messages_sendable)$`)

// rowidPage matches a query that reads a table in its primary key's order
// with no condition, to a LIMIT: its plan is a bare "SCAN x" that stops at
// the page's last row.
var rowidPage = regexp.MustCompile(`FROM "?[a-z_]+"? AS "?([a-z]+)"? ORDER BY "?([a-z]+)"?\.id( DESC)? LIMIT `)

// planProblems lists what in a query's plan reads a big table whole.
func planProblems(plan []string, query string) []string {
	var out []string
	// LIMIT bounds the rows read only when they come out in order: a plan
	// that sorts in a temporary B-tree reads every candidate first.
	limited := strings.Contains(query, "LIMIT ")
	for _, step := range plan {
		if strings.HasPrefix(step, "USE TEMP B-TREE FOR ORDER BY") {
			limited = false
		}
	}
	for _, step := range plan {
		f := strings.Fields(step)
		if len(f) < 2 || !pageTables.MatchString(f[1]) {
			continue
		}
		// A search led by status reads every row of that status (all
		// open invoices, all done tasks, or all done since a time) unless
		// LIMIT stops it.
		// A range after the status ("(status=? AND completed_at>? AND
		// completed_at<?)") reads only the window.
		ranged := strings.Contains(step, "(status=? AND ") && strings.Contains(step, ">? AND ")
		if f[0] == "SEARCH" && strings.Contains(step, "(status=?") && !limited && !ranged {
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
		// So does walking the table itself in rowid order, unfiltered.
		if m := rowidPage.FindStringSubmatch(query); limited && len(f) == 2 && m != nil && m[1] == f[1] && m[2] == f[1] {
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

// planUses reports whether a step of plan reads through index.
func planUses(plan []string, index string) bool {
	for _, step := range plan {
		if strings.Contains(step, "INDEX "+index+" ") || strings.HasSuffix(step, "INDEX "+index) {
			return true
		}
	}
	return false
}

// TestPageQueriesUseIndexes runs everything the dashboard, the control room
// and the portal read, on a large dataset, and fails on any query whose plan
// scans a big table instead of seeking into an index.
func TestPageQueriesUseIndexes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a large dataset")
	}
	d := mustOpen(t)
	if _, err := d.Seed(context.Background(), SeedSizes{Leads: 20000, Customers: 2000, Tasks: 20000, Invoices: 4000, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	// The seed writes no cycle log or audit trail: 5,000 runs and 2,000 entries.
	mustExec(t, d.Bun(), `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
		INSERT INTO agent_runs (agent, trigger, started_at, finished_at, outcome)
		SELECT CASE i % 5 WHEN 0 THEN 'leadsource' WHEN 1 THEN 'bizdev' WHEN 2 THEN 'onboarding' WHEN 3 THEN 'ops' ELSE 'billing' END,
		       'autopilot', `+minutesAfter2026("i")+`, `+minutesAfter2026("i")+`,
		       CASE WHEN i % 50 = 0 THEN 'failed' ELSE 'ok' END FROM n`)
	mustExec(t, d.Bun(), `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
		INSERT INTO audit_log (actor, action, target, created_at)
		SELECT 'ops@x.example', 'agent.run', 'ops', `+minutesAfter2026("i")+` FROM n`)
	// And 10,000 client e-mails, half of them of an invoice, each with a file.
	mustExec(t, d.Bun(), `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
		INSERT INTO client_messages (customer_id, invoice_id, kind, dedupe_key, to_addr, subject, body_text, status, created_at, updated_at)
		SELECT 1 + i % 2000, CASE WHEN i % 2 = 0 THEN 1 + i % 4000 END, CASE WHEN i % 2 = 0 THEN 'invoice' ELSE 'welcome' END,
		       'plan:' || i, 'c@x.example', 'Subject ' || i, 'Body', CASE WHEN i % 3 = 0 THEN 'queued' ELSE 'dry_run' END,
		       `+minutesAfter2026("i")+`, `+minutesAfter2026("i")+` FROM n`)
	pdf := "x'25504446'"
	if d.Postgres() {
		pdf = `'\x25504446'::bytea`
	}
	mustExec(t, d.Bun(), `INSERT INTO client_attachments (message_id, filename, content_type, content)
		SELECT id, 'f.pdf', 'application/pdf', `+pdf+` FROM client_messages`)
	if d.Postgres() {
		// PostgreSQL's autovacuum analyzes tables by itself, at a time of
		// its choosing: a plan "without statistics" is not one state there,
		// so the plans are checked with the statistics of the dataset.
		// VACUUM as well, as autovacuum does after many inserts: until then
		// the GIN trigram indexes hold the seed's rows in their pending
		// list, which the planner rightly prices as a read of the list, so
		// every search would read its table instead.
		mustExec(t, d.Bun(), "VACUUM ANALYZE")
		assertPagePlans(t, d)
		return
	}
	// The app never runs ANALYZE: plans are checked as it runs them, then
	// again with statistics, which may change the planner's mind.
	t.Run("without statistics", func(t *testing.T) { assertPagePlans(t, d) })
	mustExec(t, d.Bun(), "ANALYZE")
	t.Run("with statistics", func(t *testing.T) { assertPagePlans(t, d) })
}

// minutesAfter2026 is the SQL of the time i minutes after 2026-01-01 UTC, as
// each database stores it.
func minutesAfter2026(i string) string {
	if testOnPostgres() {
		return "(timestamptz '2026-01-01 00:00:00+00' + (" + i + ") * interval '1 minute')"
	}
	return "datetime('2026-01-01', '+' || " + i + " || ' minutes')"
}

// txControl matches the statements of a transaction that are not a query.
var txControl = regexp.MustCompile(`^(?i)\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|SET)\b`)

// pgBigTables are the tables PostgreSQL's page plans may not read whole:
// the ones the seed and the cycle log make big.
var pgBigTables = []string{"leads", "messages", "tasks", "invoices", "audit_log", "agent_runs"}

// pgPageIndexes are the indexes a page read must use on PostgreSQL, as
// assertPagePlans asks of SQLite's plans.
var pgPageIndexes = map[string]string{"RevenueByDay": "invoices_paid_at", "RecentRuns": "agent_runs_agent"}

// assertPGPagePlan checks one query of read name on PostgreSQL: no
// sequential scan of a big table, and the indexes assertPagePlans asks for
// on SQLite where the read names them.
func assertPGPagePlan(t *testing.T, d *DB, name, q string) {
	t.Helper()
	if txControl.MatchString(q) {
		return // a transaction's BEGIN or COMMIT, which has no plan
	}
	plan := pgPlanOf(t, d, q)
	if seq := plan.seqScans(pgBigTables...); len(seq) > 0 && strings.Contains(q, " ILIKE ") {
		// How many rows a search term matches decides between the trigram
		// indexes and a read of the table, by cost: on this dataset's
		// 4,000 invoices a term matching a hundred is cheaper to find by
		// reading them all, at a hundred times the size it is not. What
		// must hold at any size is that the indexes can answer the search:
		// with sequential scans priced out, no big table is read whole.
		forced := pgPlanOf(t, d, q, "SET LOCAL enable_seqscan = off")
		if seq := forced.seqScans(pgBigTables...); len(seq) > 0 {
			t.Errorf("%s: no index answers the search, it scans a big table: %q\nplan: %s\n%s", name, seq, forced, q)
		}
		t.Logf("%s: the planner reads the table for this term at this size (%s); the indexes can answer it: %s", name, plan, forced)
		return
	}
	if seq := plan.seqScans(pgBigTables...); len(seq) > 0 {
		t.Errorf("%s scans a big table: %q\nplan: %s\n%s", name, seq, plan, q)
	}
	if ix, ok := pgPageIndexes[name]; ok && !plan.uses(ix) {
		t.Errorf("%s reads without %s: %s\n%s", name, ix, plan, q)
	}
	for _, ix := range []string{"customer", "invoice"} {
		if strings.HasPrefix(name, "ClientMessagesBefore "+ix) && !plan.uses("client_messages_"+ix) {
			t.Errorf("%s reads without client_messages_%s: %s\n%s", name, ix, plan, q)
		}
	}
	if (strings.Contains(q, "lower(target)") || strings.Contains(q, "lower(a.target)")) && !plan.uses("audit_log_target") {
		t.Errorf("%s reads a record's audit entries without audit_log_target: %s\n%s", name, plan, q)
	}
	t.Logf("%s: %s", name, plan)
}

func assertPagePlans(t *testing.T, d *DB) {
	hook := &recordQueries{}
	// WithQueryHook would return another handle; the store's own must
	// record its queries.
	//lint:ignore SA1019 the store's handle, not a copy, needs the hook
	d.Bun().AddQueryHook(hook)
	ctx := context.Background()
	now := fixedNow
	if d.Postgres() {
		// The seed's own now: "the last 24 hours" is then one day of its
		// history, not all of it (fixedNow lies before every seeded row,
		// and a plan that reads the whole table for a window holding the
		// whole table is the right one there).
		now = SeedEpoch
	}
	reads := map[string]func() error{
		"Stats":             func() error { _, err := d.Stats(ctx); return err },
		"AgentRunSummaries": func() error { _, err := d.AgentRunSummaries(ctx); return err },
		"EmailHealth":       func() error { _, err := d.EmailHealth(ctx, now, 5); return err },
		"StripeHealth":      func() error { _, err := d.StripeHealth(ctx, 5); return err },
		"LeadsCreatedSince": func() error { _, err := d.LeadsCreatedSince(ctx, now.Add(-24*time.Hour)); return err },
		"Activity":          func() error { _, err := d.Activity(ctx, now.Add(-24*time.Hour), now); return err },
		"ActivityByHour":    func() error { _, err := d.ActivityByHour(ctx, now.Add(-24*time.Hour), now); return err },
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
		"ListAgentRuns":        func() error { _, _, err := d.ListAgentRuns(ctx, ListQuery{PerPage: 20}); return err },
		"ListAudit":            func() error { _, _, err := d.ListAudit(ctx, ListQuery{PerPage: 20}); return err },
		"LeadDetail":           func() error { _, err := d.LeadDetail(ctx, 7); return err },
		"CustomerDetail":       func() error { _, err := d.CustomerDetail(ctx, 7); return err },
		"TaskDetail":           func() error { _, err := d.TaskDetail(ctx, 7); return err },
		"InvoiceDetail":        func() error { _, err := d.InvoiceDetail(ctx, 7); return err },
		"ClientMessagesBefore": func() error { _, err := d.ClientMessagesBefore(ctx, 0, 0, 0, 51); return err },
		"ClientMessagesBefore page": func() error {
			_, err := d.ClientMessagesBefore(ctx, 5000, 0, 0, 51)
			return err
		},
		"ClientMessagesBefore customer": func() error {
			_, err := d.ClientMessagesBefore(ctx, 0, 7, 0, 11)
			return err
		},
		"ClientMessagesBefore customer page": func() error {
			_, err := d.ClientMessagesBefore(ctx, 5000, 7, 0, 51)
			return err
		},
		"ClientMessagesBefore invoice": func() error {
			_, err := d.ClientMessagesBefore(ctx, 0, 0, 8, 11)
			return err
		},
		"ClientMessagesBefore invoice page": func() error {
			_, err := d.ClientMessagesBefore(ctx, 5000, 0, 8, 51)
			return err
		},
		"ClientAttachments":      func() error { _, err := d.ClientAttachments(ctx, 7); return err },
		"ClientAttachmentCounts": func() error { _, err := d.ClientAttachmentCounts(ctx, []int64{7, 8, 9}); return err },
		"PendingClientOutbox":    func() error { _, err := d.PendingClientOutbox(ctx); return err },
		"ClientSends":            func() error { _, _, err := d.ClientSends(ctx); return err },
		"RevenueByDay": func() error {
			_, err := d.RevenueByDay(ctx, "usd", now.Add(-60*24*time.Hour), now)
			return err
		},
		"OpenByDueDay": func() error {
			_, err := d.OpenByDueDay(ctx, "usd", now.Add(-60*24*time.Hour), now)
			return err
		},
		"RecentRuns": func() error {
			_, err := d.RecentRuns(ctx, []string{"leadsource", "bizdev", "onboarding", "ops", "billing"}, 20)
			return err
		},
		"PortalLinkActions": func() error {
			_, err := d.PortalLinkActions(ctx, 7, 5)
			return err
		},
	}
	for name, read := range reads {
		if err := read(); err != nil {
			t.Errorf("%s: %v", name, err)
			hook.take()
			continue
		}
		queries := hook.take()
		if len(queries) == 0 {
			t.Fatalf("%s ran no query", name)
		}
		for _, q := range queries {
			if d.Postgres() {
				assertPGPagePlan(t, d, name, q)
				continue
			}
			plan := planOf(t, d, q)
			if problems := planProblems(plan, q); len(problems) > 0 {
				t.Errorf("%s scans a big table: %q\n%s", name, problems, q)
			}
			// The dashboard's revenue chart is a range of paid invoices by
			// day, the cards' sparklines one probe per agent.
			for read, ix := range map[string]string{"RevenueByDay": "invoices_paid_at", "RecentRuns": "agent_runs_agent"} {
				if name == read && !planUses(plan, ix) {
					t.Errorf("%s reads without %s: %q\n%s", name, ix, plan, q)
				}
			}
			// A customer's or an invoice's client e-mail is a range of its
			// own index, not a walk of every message newest first.
			for _, ix := range []string{"customer", "invoice"} {
				if strings.HasPrefix(name, "ClientMessagesBefore "+ix) && !planUses(plan, "client_messages_"+ix) {
					t.Errorf("%s reads without client_messages_%s: %q\n%s", name, ix, plan, q)
				}
			}
			// A record's audit entries: walking audit_log_created to
			// LIMIT passes planProblems, yet reads the whole history
			// when the record has few entries.
			if strings.Contains(q, "lower(target)") || strings.Contains(q, "lower(a.target)") {
				if !planUses(plan, "audit_log_target") {
					t.Errorf("%s reads a record's audit entries without audit_log_target: %q\n%s", name, plan, q)
				}
			}
		}
	}
}
