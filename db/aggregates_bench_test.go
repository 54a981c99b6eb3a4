package db

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hossagent/hossagent/db/pgtest"
	"github.com/uptrace/bun"
)

// BenchmarkHotAggregates times every COUNT/SUM the pages, live updates and
// cycles run, on the 100k dataset (seeded once into the temp folder), and
// logs each query's plan (-v shows them):
//
//	go test ./db -run '^$' -bench HotAggregates -benchtime 200x -v
//
// With HOSSAGENT_TEST_DB=postgres the same queries run on PostgreSQL, on a
// fresh database seeded for the run (the seed and fill take a minute or
// two), VACUUM ANALYZEd as autovacuum would leave it; a read that fails
// there is skipped with its error.
func BenchmarkHotAggregates(b *testing.B) {
	ctx := context.Background()
	sizes := SeedSizes{Leads: 100_000, Customers: 10_000, Tasks: 100_000, Invoices: 20_000, Seed: 1}
	var d *DB
	if testOnPostgres() {
		url := pgtest.Start(b).NewDatabase(b)
		var err error
		if d, err = OpenPostgres(ctx, url, WithClock(func() time.Time { return SeedEpoch })); err != nil {
			b.Fatal(err)
		}
		if _, err := d.Seed(ctx, sizes); err != nil {
			b.Fatal(err)
		}
	} else {
		path := filepath.Join(os.TempDir(), "hossagent-aggregates-100k.db")
		if _, err := os.Stat(path); err != nil {
			seedFile(b, path+".tmp", sizes)
			if err := os.Rename(path+".tmp", path); err != nil {
				b.Fatal(err)
			}
		}
		var err error
		if d, err = Open(ctx, path, WithClock(func() time.Time { return SeedEpoch })); err != nil {
			b.Fatal(err)
		}
	}
	b.Cleanup(func() { d.Close() })
	fillClientMail(b, d)
	fillAudit(b, d)
	if d.Postgres() {
		if _, err := d.bun.ExecContext(ctx, "VACUUM ANALYZE"); err != nil {
			b.Fatal(err)
		}
	}
	hook := &recordQueries{}
	//lint:ignore SA1019 the store's handle, not a copy, needs the hook
	d.Bun().AddQueryHook(hook)
	now := SeedEpoch
	cases := []struct {
		name string // where it runs, and what
		run  func() error
	}{
		{"page+live/Stats (kept totals, overdue)", func() error { _, err := d.Stats(ctx); return err }},
		{"page+live/list count (keptCount)", func() error { _, err := d.keptCount(ctx, []string{LeadNew}, "metric = ?", "leads"); return err }},
		{"page+live/EmailHealth (sent windows, keptCounts)", func() error { _, err := d.EmailHealth(ctx, now, 5); return err }},
		{"page+live/StripeHealth (attention counts)", func() error { _, err := d.StripeHealth(ctx, 5); return err }},
		{"page/CustomerDetail (profit of done and failed work)", func() error { _, err := d.CustomerDetail(ctx, 7); return err }},
		{"webhook/lookups (link, PaymentIntent, refunds before payment)", func() error {
			for _, q := range []struct {
				sql  string
				args []any
			}{
				{invoiceCols + invoiceByLinkWhere, []any{"plink_123"}},
				{invoiceCols + invoiceByPaymentIntentWhere, []any{"pi_123", bun.List(paidOutcomes)}},
				{earlyRefundsSQL, []any{"pi_123", OutcomeRefundBeforePayment}},
			} {
				rows, err := d.bun.QueryContext(ctx, q.sql, q.args...)
				if err != nil {
					return err
				}
				for rows.Next() {
				}
				if err := rows.Close(); err != nil {
					return err
				}
			}
			return nil
		}},
		{"page+live/AgentRunSummaries", func() error { _, err := d.AgentRunSummaries(ctx); return err }},
		{"page+live/ListCustomers (task_count per row)", func() error { _, _, err := d.ListCustomers(ctx, ListQuery{}); return err }},
		{"page+live/ListInvoices (line_count per row)", func() error { _, _, err := d.ListInvoices(ctx, ListQuery{PerPage: 10}); return err }},
		{"page+live/search count (bounded)", func() error { _, _, err := d.ListLeads(ctx, ListQuery{Search: "company 123"}); return err }},
		{"page+live/ListAgentRuns (runs count)", func() error { _, _, err := d.ListAgentRuns(ctx, ListQuery{PerPage: 20}); return err }},
		{"portal/ListCustomerTasks (indexedCount)", func() error { _, _, err := d.ListCustomerTasks(ctx, 7, ListQuery{PerPage: 20}); return err }},
		{"cycle/PendingOutbox", func() error { _, err := d.PendingOutbox(ctx); return err }},
		{"cycle/sendsInWindows (caps of a claim)", func() error { _, _, err := sendsInWindows(ctx, d.bun, now); return err }},
		{"check/KeptTotalsDrift (every row, by design)", func() error { _, err := d.KeptTotalsDrift(ctx); return err }},
		// Issue 11 and 12's aggregates.
		{"cycle/clientSendsSQL (Collections caps of a claim)", func() error {
			var h, dd int
			return d.bun.NewRaw(d.pin(clientSendsSQL), now.Add(-time.Hour), now.Add(-24*time.Hour)).Scan(ctx, &h, &dd)
		}},
		{"cycle/linkSendsSQL (requested links' caps of a claim)", func() error {
			var h, dd int
			return d.bun.NewRaw(d.pin(linkSendsSQL), now.Add(-time.Hour), now.Add(-24*time.Hour)).Scan(ctx, &h, &dd)
		}},
		{"page+live/ClientSends (client mail panel)", func() error { _, _, err := d.ClientSends(ctx); return err }},
		{"page+live/PendingClientOutbox (client mail panel)", func() error { _, err := d.PendingClientOutbox(ctx); return err }},
		{"page/ClientAttachmentCounts (a page of 50)", func() error {
			ids := make([]int64, 50)
			for i := range ids {
				ids[i] = int64(1000 + i)
			}
			_, err := d.ClientAttachmentCounts(ctx, ids)
			return err
		}},
		{"webhook/FlagCustomerMail's customer count", func() error {
			var n int
			return d.bun.NewRaw("SELECT COUNT(*) FROM customers WHERE contact_email = ?", "nobody@nowhere.example").Scan(ctx, &n)
		}},
		{"cycle/simulated reply count of a lead (ApplyReply)", func() error {
			_, err := d.bun.NewSelect().Model((*Reply)(nil)).Where("lead_id = ?", 4242).Count(ctx)
			return err
		}},
		{"start/SeedCatalogue's emptiness check", func() error {
			var n int
			return d.bun.NewRaw("SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM task_kinds LIMIT 1) AS k) + (SELECT COUNT(*) FROM (SELECT 1 FROM plans LIMIT 1) AS p)").Scan(ctx, &n)
		}},
		{"admin action/other active plans (deactivate)", func() error {
			_, err := d.bun.NewSelect().Model((*CataloguePlan)(nil)).Where("p.active AND p.name <> ?", "starter").Count(ctx)
			return err
		}},
		{"page+live/agingSQL (outstanding by age)", func() error {
			_, err := d.bun.NewRaw(d.pin(agingSQL), agingArgs(now)...).Exec(ctx)
			return err
		}},
		// Issue 12 and 13's aggregates.
		{"page/Activity, 24 h (window counts and sums)", func() error { _, err := d.Activity(ctx, now.Add(-24*time.Hour), now); return err }},
		{"page/Activity, 168 h", func() error { _, err := d.Activity(ctx, now.Add(-168*time.Hour), now); return err }},
		{"page/ActivityByHour, 24 h (instants bucketed in Go)", func() error {
			_, err := d.ActivityByHour(ctx, now.Add(-24*time.Hour), now)
			return err
		}},
		{"page/audit search (bounded window, its count)", func() error {
			_, _, err := d.ListAudit(ctx, ListQuery{Search: "run", PerPage: 50})
			return err
		}},
		{"page+live/RevenueByDay, 60 days (dashboard chart)", func() error {
			_, err := d.RevenueByDay(ctx, "usd", now.Add(-60*24*time.Hour), now)
			return err
		}},
		{"page+live/OpenByDueDay, 60 days (dashboard chart)", func() error {
			_, err := d.OpenByDueDay(ctx, "usd", now.Add(-60*24*time.Hour), now)
			return err
		}},
		{"webhook+cycle+page/BounceWindow (each bounce; e-mail panel)", func() error { _, err := d.BounceWindow(ctx); return err }},
		{"page+live+cycle/WaitingDraftCount", func() error { _, err := d.WaitingDraftCount(ctx); return err }},
		{"page/ListUsers (live sessions per account)", func() error { _, err := d.ListUsers(ctx); return err }},
		{"admin action/keepAnAdmin (other admins)", func() error {
			_, err := d.bun.NewSelect().Model((*User)(nil)).Where("role = ? AND id <> ?", RoleAdmin, 1).Count(ctx)
			return err
		}},
		{"admin action/RetryMessage's other live message of the step", func() error {
			var n int
			return d.bun.NewSelect().Model((*Message)(nil)).ColumnExpr("COUNT(*)").
				Where("lead_id = ? AND id <> ? AND step = ?", 4242, 1, 1).
				Where("(status IN ('queued','sending','sent') OR (status = 'failed' AND attempts < ?))", MaxSendAttempts).Scan(ctx, &n)
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			hook.take()
			if err := c.run(); err != nil {
				b.Fatal(err)
			}
			for _, q := range hook.take() {
				switch {
				case !d.Postgres():
					b.Logf("%s\n  plan: %s", q, strings.Join(planOf(b, d, q), " | "))
				case !txControl.MatchString(q):
					b.Logf("%s\n  plan: %s", q, pgPlanOf(b, d, q))
				}
			}
			b.ResetTimer()
			for range b.N {
				if err := c.run(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// seedFile writes a seeded database at path.
func seedFile(b *testing.B, path string, sizes SeedSizes) {
	b.Helper()
	_ = os.Remove(path)
	d, err := Open(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Seed(context.Background(), sizes); err != nil {
		b.Fatal(err)
	}
}

// fillClientMail gives the dataset a client-mail history once: a sent
// welcome per customer, an e-mail per invoice and a receipt per paid one
// (each with a small attachment), and a few queued, in flight and
// requested-link messages, as a running business would have.
func fillClientMail(b *testing.B, d *DB) {
	b.Helper()
	ctx := context.Background()
	var n int
	if err := d.bun.NewRaw("SELECT COUNT(*) FROM client_messages").Scan(ctx, &n); err != nil {
		b.Fatal(err)
	}
	if n > 0 {
		return
	}
	for _, q := range []string{
		`INSERT INTO client_messages (customer_id, kind, dedupe_key, to_addr, subject, body_text, status, attempts, created_at, sending_at, sent_at, updated_at)
		 SELECT id, 'welcome', 'welcome:' || id, contact_email, 'Welcome', 'text', 'sent', 1, created_at, created_at, created_at, created_at FROM customers`,
		`INSERT INTO client_messages (customer_id, invoice_id, kind, dedupe_key, to_addr, subject, body_text, status, attempts, created_at, sending_at, sent_at, updated_at)
		 SELECT i.customer_id, i.id, 'invoice', 'invoice:' || i.id, c.contact_email, 'Invoice', 'text', 'sent', 1, i.created_at, i.created_at, i.created_at, i.created_at
		 FROM invoices AS i JOIN customers AS c ON c.id = i.customer_id WHERE i.status <> 'draft'`,
		`INSERT INTO client_messages (customer_id, invoice_id, kind, dedupe_key, to_addr, subject, body_text, status, attempts, created_at, sending_at, sent_at, updated_at)
		 SELECT i.customer_id, i.id, 'receipt', 'receipt:' || i.id, c.contact_email, 'Receipt', 'text', 'sent', 1, i.paid_at, i.paid_at, i.paid_at, i.paid_at
		 FROM invoices AS i JOIN customers AS c ON c.id = i.customer_id WHERE i.status = 'paid'`,
		`INSERT INTO client_messages (customer_id, kind, dedupe_key, to_addr, subject, body_text, status, attempts, created_at, sending_at, sent_at, updated_at)
		 SELECT id, 'portal_link', 'link:' || id || ':1', contact_email, 'Link', 'text', 'sent', 1, created_at, created_at, created_at, created_at FROM customers WHERE id % 4 = 0`,
		`INSERT INTO client_messages (customer_id, kind, dedupe_key, to_addr, subject, body_text, status, created_at, updated_at)
		 SELECT id, 'welcome', 'queued:' || id, contact_email, 'Welcome', 'text', 'queued', created_at, created_at FROM customers WHERE id % 500 = 0`,
		`INSERT INTO client_attachments (message_id, filename, content_type, content)
		 SELECT id, 'invoice.pdf', 'application/pdf', {blob} FROM client_messages WHERE kind IN ('invoice','receipt')`,
	} {
		blob := "zeroblob(2048)"
		if d.Postgres() {
			blob = "decode(repeat('00', 2048), 'hex')"
		}
		q = strings.ReplaceAll(q, "{blob}", blob)
		if _, err := d.bun.ExecContext(ctx, q); err != nil {
			b.Fatalf("fill client mail: %v\n%s", err, q)
		}
	}
}

// fillAudit gives the dataset 100,000 audit entries once, so that the
// audit search walks a log of the dataset's size.
func fillAudit(b *testing.B, d *DB) {
	b.Helper()
	ctx := context.Background()
	var n int
	if err := d.bun.NewRaw("SELECT COUNT(*) FROM audit_log").Scan(ctx, &n); err != nil {
		b.Fatal(err)
	}
	if n > 0 {
		return
	}
	const insert = `INSERT INTO audit_log (actor, action, target, detail, remote_addr, created_at)
		SELECT 'ops@x.example', CASE i % 3 WHEN 0 THEN 'agent.run' WHEN 1 THEN 'invoice_mark_paid' ELSE 'login' END, 'target ' || i, '', '', `
	if !d.Postgres() {
		_, err := d.bun.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) `+
			insert+`datetime('2026-01-01', '+' || i || ' minutes') FROM n`)
		if err != nil {
			b.Fatal(err)
		}
		return
	}
	// In committed chunks, as in TestRunsAndAuditPagePlans (the kept
	// total's row versions).
	for from := 1; from <= 100000; from += 2000 {
		_, err := d.bun.ExecContext(ctx, fmt.Sprintf("WITH n(i) AS (SELECT generate_series(%d, %d)) ", from, from+1999)+
			insert+`timestamptz '2026-01-01 00:00:00+00' + i * interval '1 minute' FROM n`)
		if err != nil {
			b.Fatal(err)
		}
	}
}
