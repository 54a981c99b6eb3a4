package agents

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hossagent/hossagent/db"
)

// The cycle benchmarks run each cycle on the same fixed batch of work over
// datasets of growing size, so that a cycle whose cost follows the table
// instead of the batch shows up as a slope:
//
//	go test -run '^$' -bench Cycle -benchmem -benchtime 20x ./agents/
//
// Each size is built once per benchmark (bulk INSERT ... SELECT from a
// recursive CTE) into a file that every iteration copies, with
// the timer stopped, so every iteration sees exactly the same state.

// benchSizes are the dataset sizes: N leads, N/10 customers, N tasks, N/5
// invoices, about 0.9 N messages.
var benchSizes = []struct {
	name string
	n    int
}{{"1k", 1_000}, {"10k", 10_000}, {"100k", 100_000}}

// benchSeed is the prospect simulator's seed in every dataset.
const benchSeed = "00112233445566778899aabbccddeeff"

// The fixed batch every dataset carries on top of its background rows.
const (
	benchNewLeads     = 10 // e-mailable new leads, for BizDev
	benchDueReplies   = 10 // recently contacted leads due to reply, for the simulator
	benchResponded    = 5  // leads waiting for onboarding
	benchPendingTasks = 10 // for ops
	benchBilledCusts  = 10 // customers with one done, unbilled task each
	benchCollections  = 10 // open invoices whose e-mail is due, for Collections
)

func BenchmarkCycleLeadSource(b *testing.B) {
	benchCycle(b, func(s *db.DB, env Env) Cycle {
		return NewLeadSourceCycle(s, env, benchProvider{}, LeadSourceOptions{MaxPerCycle: 12})
	}, func(b *testing.B, c Counts) { wantBenchCount(b, c, LeadOutcomeCreated, 10) })
}

func BenchmarkCycleBizDev(b *testing.B) {
	benchCycle(b, func(s *db.DB, env Env) Cycle {
		return NewBizDevCycle(s, env, NewDryRunMailer(), BizDevOptions{
			MaxPerCycle: 10, MaxPerHour: 1000, MaxPerDay: 10000,
			Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
			From:  "outreach@hossagent.example", SenderName: "HossAgent", Offer: "research", Signature: "The team",
			BaseURL: "https://hossagent.example",
		})
	}, func(b *testing.B, c Counts) { wantBenchCount(b, c, bizdevDryRun, benchNewLeads) })
}

func BenchmarkCycleOnboarding(b *testing.B) {
	benchCycle(b, func(s *db.DB, env Env) Cycle {
		// As in development: the simulator answers, then onboarding converts.
		sim := NewProspectSimulator(s, env, SimulatorOptions{})
		return Sequence(sim, NewOnboardingCycle(s, env, DefaultCatalogue("usd"), OnboardingOptions{}))
	}, func(b *testing.B, c Counts) {
		wantBenchCount(b, c, "replied", benchDueReplies)
		wantBenchCount(b, c, "converted", 5)
	})
}

func BenchmarkCycleOps(b *testing.B) {
	benchCycle(b, func(s *db.DB, env Env) Cycle {
		return NewOpsCycle(s, env, &BuiltinExecutor{CostCents: 10}, OpsOptions{})
	}, func(b *testing.B, c Counts) { wantBenchCount(b, c, "done", benchPendingTasks) })
}

func BenchmarkCycleBilling(b *testing.B) {
	benchCycle(b, func(s *db.DB, env Env) Cycle {
		return NewBillingCycle(s, env, benchLinks{}, BillingOptions{BaseURL: "https://hossagent.example"})
	}, func(b *testing.B, c Counts) {
		wantBenchCount(b, c, "invoiced", benchBilledCusts)
		wantBenchCount(b, c, "links", benchBilledCusts)
	})
}

func BenchmarkCycleCollections(b *testing.B) {
	benchCycle(b, func(s *db.DB, env Env) Cycle {
		return NewCollectionsCycle(s, env, NewDryRunMailer(), CollectionsOptions{
			Company: CompanyInfo{Name: "HossAgent", BillingEmail: "billing@hossagent.example"}, BaseURL: "https://hossagent.example",
			From: "billing@hossagent.example", Schedule: testSchedule, Docs: fakeDocs{}, Titles: DefaultCatalogue("usd").Titles(),
		})
	}, func(b *testing.B, c Counts) {
		wantBenchCount(b, c, "invoice", benchCollections)
		wantBenchCount(b, c, collectDryRun, benchCollections)
	})
}

// benchCycle runs one cycle per iteration on a fresh copy of each dataset.
func benchCycle(b *testing.B, build func(*db.DB, Env) Cycle, check func(*testing.B, Counts)) {
	ctx := context.Background()
	dir := b.TempDir()
	for _, size := range benchSizes {
		src := filepath.Join(dir, "dataset-"+size.name+".db")
		buildBenchDataset(b, src, size.n)
		b.Run("rows="+size.name, func(b *testing.B) {
			b.ReportAllocs()
			work := filepath.Join(dir, "work-"+size.name)
			b.StopTimer()
			for i := 0; i < b.N; i++ {
				copyBenchFile(b, src, work)
				clock := newFakeClock()
				store, err := db.Open(ctx, work, db.WithClock(clock.Now))
				if err != nil {
					b.Fatalf("db.Open: %v", err)
				}
				rnd := newOutreachRand(uint64(i + 1))
				cycle := build(store, Env{Now: clock.Now, Random: rnd, Rand: rnd})
				b.StartTimer()
				counts, err := cycle.Run(ctx)
				b.StopTimer()
				if err != nil {
					b.Fatalf("Run: %v (counts %v)", err, counts)
				}
				check(b, counts)
				if err := store.Close(); err != nil {
					b.Fatalf("Close: %v", err)
				}
			}
		})
	}
}

func wantBenchCount(b *testing.B, c Counts, key string, want int) {
	b.Helper()
	if c[key] != want {
		b.Fatalf("count %q = %d, want %d (all: %v)", key, c[key], want, c)
	}
}

// copyBenchFile copies the dataset over the iteration's file (its WAL and
// shared-memory files removed, so nothing of the last iteration survives).
func copyBenchFile(b *testing.B, src, dst string) {
	b.Helper()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(dst + suffix); err != nil && !os.IsNotExist(err) {
			b.Fatal(err)
		}
	}
	in, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
}

// benchTS is the SQL of a stored timestamp (bun's format) secs seconds after
// base.
func benchTS(base time.Time, secs string) string {
	return fmt.Sprintf("(strftime('%%Y-%%m-%%d %%H:%%M:%%S', '%s', '+' || (%s) || ' seconds') || '+00:00')",
		base.UTC().Format("2006-01-02 15:04:05"), secs)
}

// buildBenchDataset writes a dataset of n leads to path. Lead i's status
// follows i mod 10: 0 new without an e-mail (a website-only lead, which
// BizDev can never contact), 1-5 contacted (none due to reply under
// benchSeed), 6 converted (its customer has ten done, billed tasks on two
// invoices, one paid and one open with a link), 7 failed (its message used
// every attempt), 8 bounced and 9 unsubscribed (both suppressed). The batch
// rows follow, all newer than the background.
func buildBenchDataset(b *testing.B, path string, n int) {
	b.Helper()
	ctx := context.Background()
	store, err := db.Open(ctx, path, db.WithClock(newFakeClock().Now))
	if err != nil {
		b.Fatalf("db.Open: %v", err)
	}
	defer store.Close()
	// Every background row is weeks older than the benchmarks' clock
	// (testEpoch), so the rolling e-mail caps start empty.
	base := testEpoch.Add(-30 * 24 * time.Hour)
	created := benchTS(base, "i * 10")
	contacted := benchTS(base, "i * 10 + 3600")
	seq := func(count int) string {
		return fmt.Sprintf("WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < %d) ", count)
	}
	c := n / 10 // customers: one per converted lead
	stmts := []string{
		seq(n) + `INSERT INTO leads (id, name, email, company, domain_key, niche, website, source, status, dry_run,
			contacted_at, responded_at, converted_at, created_at, updated_at)
		SELECT i, 'Pat ' || i, CASE WHEN i % 10 = 0 THEN NULL ELSE 'pat' || i || '@lead' || i || '.example' END,
			'Lead ' || i, 'lead' || i || '.example', 'B2B SaaS', 'https://lead' || i || '.example', 'bench',
			CASE i % 10 WHEN 0 THEN 'new' WHEN 6 THEN 'converted' WHEN 7 THEN 'failed' WHEN 8 THEN 'bounced'
				WHEN 9 THEN 'unsubscribed' ELSE 'contacted' END,
			FALSE, CASE WHEN i % 10 = 0 THEN NULL ELSE ` + contacted + ` END,
			CASE WHEN i % 10 = 6 THEN ` + contacted + ` END, CASE WHEN i % 10 = 6 THEN ` + contacted + ` END,
			` + created + `, ` + created + ` FROM seq`,
		`INSERT INTO messages (lead_id, to_addr, template, subject, body, status, attempts, created_at, sending_at, sent_at, updated_at, error)
		SELECT id, email, 'general', 'Hello ' || company, 'body', CASE WHEN id % 10 = 7 THEN 'failed' ELSE 'sent' END,
			CASE WHEN id % 10 = 7 THEN 3 ELSE 1 END, created_at, contacted_at,
			CASE WHEN id % 10 = 7 THEN NULL ELSE contacted_at END, contacted_at,
			CASE WHEN id % 10 = 7 THEN 'provider said no' ELSE '' END
		FROM leads WHERE id % 10 <> 0 ORDER BY id`,
		`INSERT INTO suppressions (kind, value, reason, source, created_at)
		SELECT 'address', email, CASE WHEN id % 10 = 8 THEN 'bounced' ELSE 'unsubscribed' END, 'bench', contacted_at
		FROM leads WHERE id % 10 IN (8, 9) ORDER BY id`,
		`INSERT INTO replies (lead_id, from_addr, subject, body, simulated, received_at)
		SELECT id, email, 'Re: hello', 'yes please', FALSE, contacted_at FROM leads WHERE id % 10 = 6 ORDER BY id`,
		seq(c) + `INSERT INTO customers (id, company, contact_email, plan, lead_id, status, portal_token_hash, token_created_at, created_at)
		SELECT i, 'Lead ' || (i * 10 - 4), 'pat' || (i * 10 - 4) || '@lead' || (i * 10 - 4) || '.example', 'starter', i * 10 - 4,
			'active', printf('%064d', i), ` + benchTS(base, "i * 100 + 3600") + `, ` + benchTS(base, "i * 100 + 3600") + ` FROM seq`,
		// Task i belongs to customer (i-1)/10+1, the k-th (k = (i-1)%10) of its ten.
		seq(c*10) + `INSERT INTO tasks (id, customer_id, kind, description, status, currency, reward_cents, cost_cents,
			profit_cents, attempts, started_at, result, completed_at, created_at, updated_at)
		SELECT i, (i - 1) / 10 + 1, 'market_research', 'Market research brief', 'done', 'usd', 5000, 100, 4900, 1,
			` + benchTS(base, "i * 10 + 7200") + `, 'delivered', ` + benchTS(base, "i * 10 + 7200") + `,
			` + benchTS(base, "i * 10 + 3600") + `, ` + benchTS(base, "i * 10 + 7200") + ` FROM seq`,
		// Invoice 2c-1 (paid) bills tasks 0-4 of customer c, invoice 2c (open, with a link) tasks 5-9.
		seq(c*2) + `INSERT INTO invoices (id, customer_id, number, currency, amount_cents, status, issued_at, due_at,
			payment_url, stripe_payment_link_id, paid_at, created_at, updated_at)
		SELECT i, (i + 1) / 2, printf('INV-%06d', i), 'usd', 25000, CASE WHEN i % 2 = 1 THEN 'paid' ELSE 'open' END,
			` + benchTS(base, "i * 50 + 8000") + `, ` + benchTS(base, "i * 50 + 8000 + 1209600") + `,
			'https://pay.example/' || i, 'plink_' || i, CASE WHEN i % 2 = 1 THEN ` + benchTS(base, "i * 50 + 9000") + ` END,
			` + benchTS(base, "i * 50 + 8000") + `, ` + benchTS(base, "i * 50 + 8000") + ` FROM seq`,
		`INSERT INTO invoice_lines (invoice_id, task_id, description, amount_cents, created_at)
		SELECT (customer_id - 1) * 2 + 1 + ((id - 1) % 10) / 5, id, description, reward_cents, completed_at FROM tasks ORDER BY id`,
		fmt.Sprintf(`INSERT INTO counters (name, value) VALUES ('%s', %d)`, db.InvoiceCounter, c*2),
		fmt.Sprintf(`INSERT INTO settings (key, value, updated_at) VALUES ('%s', '%s', '2025-06-01 00:00:00+00:00')`, SettingSimulatorSeed, benchSeed),
		// The simulator ran before and judged every background lead (code
		// that keeps no cursor ignores this).
		fmt.Sprintf(`INSERT INTO settings (key, value, updated_at) VALUES ('%s', '%s %d', '2025-06-01 00:00:00+00:00')`,
			SettingSimulatorCursor, base.Add(time.Duration(n*10+3600)*time.Second).Format(time.RFC3339Nano), n),
	}
	bun := store.Bun()
	for _, s := range stmts {
		if _, err := bun.ExecContext(ctx, s); err != nil {
			b.Fatalf("build dataset: %v\n%s", err, s)
		}
	}
	// No background contacted lead is due to reply: in a steady state the
	// simulator has answered for those long ago. The ones that would be due
	// are marked dead, so each run must look past all the others.
	var contactedIDs []int64
	if err := bun.NewRaw("SELECT id FROM leads WHERE status = 'contacted' ORDER BY id").Scan(ctx, &contactedIDs); err != nil {
		b.Fatal(err)
	}
	var due []string
	for _, id := range contactedIDs {
		if SimulatedReplyDue(benchSeed, id, 0.3) {
			due = append(due, fmt.Sprint(id))
		}
	}
	for len(due) > 0 {
		chunk := due[:min(len(due), 500)]
		due = due[len(chunk):]
		if _, err := bun.ExecContext(ctx, "UPDATE leads SET status = 'dead' WHERE id IN ("+strings.Join(chunk, ",")+")"); err != nil {
			b.Fatal(err)
		}
	}
	// The clients were told long ago: a welcome for every customer, an
	// e-mail for every invoice and a receipt for every paid one, all sent;
	// no job is left of the background.
	for _, q := range []string{
		`INSERT INTO client_messages (customer_id, kind, dedupe_key, to_addr, subject, body_text, body_html, status, attempts, created_at, sending_at, sent_at, updated_at)
		SELECT id, 'welcome', 'welcome:' || id, contact_email, 'Welcome', 'text', '<p>html</p>', 'sent', 1, created_at, created_at, created_at, created_at
		FROM customers ORDER BY id`,
		`INSERT INTO client_messages (customer_id, invoice_id, kind, dedupe_key, to_addr, subject, body_text, body_html, status, attempts, created_at, sending_at, sent_at, updated_at)
		SELECT i.customer_id, i.id, 'invoice', 'invoice:' || i.id, c.contact_email, 'Invoice', 'text', '<p>html</p>', 'sent', 1, i.issued_at, i.issued_at, i.issued_at, i.issued_at
		FROM invoices AS i JOIN customers AS c ON c.id = i.customer_id ORDER BY i.id`,
		`INSERT INTO client_messages (customer_id, invoice_id, kind, dedupe_key, to_addr, subject, body_text, body_html, status, attempts, created_at, sending_at, sent_at, updated_at)
		SELECT i.customer_id, i.id, 'receipt', 'receipt:' || i.id, c.contact_email, 'Receipt', 'text', '<p>html</p>', 'sent', 1, i.paid_at, i.paid_at, i.paid_at, i.paid_at
		FROM invoices AS i JOIN customers AS c ON c.id = i.customer_id WHERE i.status = 'paid' ORDER BY i.id`,
		`DELETE FROM collection_jobs`,
	} {
		if _, err := bun.ExecContext(ctx, q); err != nil {
			b.Fatalf("build dataset: %v\n%s", err, q)
		}
	}
	addBenchBatch(b, store, n)
	// No ANALYZE: the app never runs it, so the planner works without
	// statistics, as here.
	if _, err := bun.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		b.Fatal(err)
	}
}

// addBenchBatch adds the fixed batch through the store, as the app would.
func addBenchBatch(b *testing.B, store *db.DB, n int) {
	b.Helper()
	ctx := context.Background()
	bun := store.Bun()
	exec := func(q string, args ...any) {
		b.Helper()
		if _, err := bun.ExecContext(ctx, q, args...); err != nil {
			b.Fatalf("batch: %v\n%s", err, q)
		}
	}
	id := int64(n)
	lead := func(status string, contactedAgo time.Duration) int64 {
		id++
		at := testEpoch.Add(-contactedAgo)
		var contactedAt any
		if status != db.LeadNew {
			contactedAt = at
		}
		exec(`INSERT INTO leads (id, name, email, company, domain_key, niche, website, source, status, contacted_at, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, 'B2B SaaS', '', 'bench', ?, ?, ?, ?)`,
			id, fmt.Sprintf("Pat %d", id), fmt.Sprintf("pat%d@lead%d.example", id, id), fmt.Sprintf("Lead %d", id),
			fmt.Sprintf("lead%d.example", id), status, contactedAt, at.Add(-time.Hour), at)
		return id
	}
	for range benchNewLeads {
		lead(db.LeadNew, 2*time.Hour)
	}
	// Contacted ten minutes ago, until benchDueReplies of them are due to
	// reply (the ones between are judged "no reply").
	for due := 0; due < benchDueReplies; {
		l := lead(db.LeadContacted, 10*time.Minute)
		if SimulatedReplyDue(benchSeed, l, 0.3) {
			due++
		}
		exec(`INSERT INTO messages (lead_id, to_addr, template, subject, body, status, attempts, created_at, sending_at, sent_at, updated_at)
			SELECT id, email, 'general', 'Hello', 'body', 'dry_run', 1, contacted_at, contacted_at, contacted_at, contacted_at FROM leads WHERE id = ?`, l)
	}
	for range benchResponded {
		l := lead(db.LeadContacted, 3*time.Hour)
		exec("UPDATE leads SET status = 'responded', responded_at = ? WHERE id = ?", testEpoch.Add(-2*time.Hour), l)
	}
	c := n / 10
	for i := range benchPendingTasks {
		exec(`INSERT INTO tasks (customer_id, kind, description, status, currency, reward_cents, profit_cents, created_at, updated_at)
			VALUES (?, 'market_research', 'Market research brief', 'pending', 'usd', 15000, 15000, ?, ?)`,
			i*c/benchPendingTasks+1, testEpoch.Add(-time.Hour), testEpoch.Add(-time.Hour))
	}
	// Collections' batch: the e-mails of the benchCollections latest open
	// invoices are due (their old ones removed).
	exec(`DELETE FROM client_messages WHERE kind = 'invoice' AND invoice_id IN
		(SELECT id FROM invoices WHERE status = 'open' ORDER BY id DESC LIMIT ?)`, benchCollections)
	exec(`INSERT INTO collection_jobs (kind, customer_id, invoice_id, run_at, created_at)
		SELECT 'invoice', customer_id, id, ?, ? FROM invoices WHERE status = 'open' ORDER BY id DESC LIMIT ?`,
		testEpoch.Add(-time.Minute), testEpoch.Add(-time.Minute), benchCollections)
	for i := range benchBilledCusts {
		done := testEpoch.Add(-30 * time.Minute)
		exec(`INSERT INTO tasks (customer_id, kind, description, status, currency, reward_cents, cost_cents, profit_cents,
				attempts, started_at, result, completed_at, created_at, updated_at)
			VALUES (?, 'market_research', 'Market research brief', 'done', 'usd', 15000, 100, 14900, 1, ?, 'delivered', ?, ?, ?)`,
			i*c/benchBilledCusts+1, done, done, done, done)
	}
}

// benchProvider offers ten fresh candidates and two that are duplicates of
// background leads.
type benchProvider struct{}

func (benchProvider) Name() string { return "bench" }

func (benchProvider) Candidates(_ context.Context, n int) ([]LeadCandidate, error) {
	var out []LeadCandidate
	for i := range 10 {
		out = append(out, LeadCandidate{Name: "New Person", Email: fmt.Sprintf("new%d@fresh%d.example", i, i), Company: fmt.Sprintf("Fresh %d", i)})
	}
	out = append(out, LeadCandidate{Email: "pat1@lead1.example", Company: "Lead 1"}, LeadCandidate{Email: "other@lead2.example", Company: "Lead 2"})
	return out[:min(n, len(out))], nil
}

// benchLinks is an enabled payment provider answering at once.
type benchLinks struct{}

func (benchLinks) Enabled() bool { return true }

func (benchLinks) CreateLink(_ context.Context, req LinkRequest) (Link, error) {
	return Link{PriceID: fmt.Sprintf("price_%d", req.InvoiceID), PaymentLinkID: fmt.Sprintf("plink_new_%d", req.InvoiceID),
		URL: fmt.Sprintf("https://pay.example/new/%d", req.InvoiceID)}, nil
}

// BenchmarkCycleLeadSourceWarm is the lead source as a running app sees it:
// one store kept open across cycles (its page cache warm), each cycle
// writing ten new leads. BenchmarkCycleLeadSource measures the first cycle
// after a start instead, on a fresh copy with a cold cache.
func BenchmarkCycleLeadSourceWarm(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	for _, size := range benchSizes {
		path := filepath.Join(dir, "warm-"+size.name+".db")
		buildBenchDataset(b, path, size.n)
		provider := &freshProvider{} // across the runs b.Run makes: every lead new
		b.Run("rows="+size.name, func(b *testing.B) {
			clock := newFakeClock()
			store, err := db.Open(ctx, path, db.WithClock(clock.Now))
			if err != nil {
				b.Fatalf("db.Open: %v", err)
			}
			defer store.Close()
			rnd := newOutreachRand(1)
			cycle := NewLeadSourceCycle(store, Env{Now: clock.Now, Random: rnd, Rand: rnd}, provider, LeadSourceOptions{MaxPerCycle: 10})
			run := func() {
				counts, err := cycle.Run(ctx)
				if err != nil {
					b.Fatalf("Run: %v", err)
				}
				wantBenchCount(b, counts, LeadOutcomeCreated, 10)
			}
			run() // warm the connections' caches
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				run()
			}
		})
	}
}

// freshProvider offers ten candidates never offered before on every call.
type freshProvider struct{ next int }

func (*freshProvider) Name() string { return "bench" }

func (p *freshProvider) Candidates(_ context.Context, n int) ([]LeadCandidate, error) {
	out := make([]LeadCandidate, 0, n)
	for range n {
		p.next++
		out = append(out, LeadCandidate{Name: "New Person", Email: fmt.Sprintf("warm%d@warm%d.example", p.next, p.next), Company: fmt.Sprintf("Warm %d", p.next)})
	}
	return out, nil
}
