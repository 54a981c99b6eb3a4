package db

import (
	"context"
	"github.com/uptrace/bun"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkHotAggregates times every COUNT/SUM the pages, live updates and
// cycles run, on the 100k dataset (seeded once into the temp folder), and
// logs each query's plan (-v shows them):
//
//	go test ./db -run '^$' -bench HotAggregates -benchtime 200x -v
func BenchmarkHotAggregates(b *testing.B) {
	ctx := context.Background()
	path := filepath.Join(os.TempDir(), "hossagent-aggregates-100k.db")
	if _, err := os.Stat(path); err != nil {
		seedFile(b, path+".tmp", SeedSizes{Leads: 100_000, Customers: 10_000, Tasks: 100_000, Invoices: 20_000, Seed: 1})
		if err := os.Rename(path+".tmp", path); err != nil {
			b.Fatal(err)
		}
	}
	d, err := Open(ctx, path, WithClock(func() time.Time { return SeedEpoch }))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
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
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			hook.take()
			if err := c.run(); err != nil {
				b.Fatal(err)
			}
			for _, q := range hook.take() {
				b.Logf("%s\n  plan: %s", q, strings.Join(planOf(b, d, q), " | "))
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
