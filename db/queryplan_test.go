package db

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"
)

// The agent cycles run the queries below on every tick, so their cost must
// follow the batch, not the size of the tables. This test builds a large-ish
// dataset, lets the planner see its statistics (ANALYZE) and fails when the
// plan of any hot query has a step that reads a whole big table.
//
// A step "SCAN <table>" reads every row of the table (or of the index it
// names) and is refused, with two kinds of exceptions, each named per query
// in scans with its reason:
//   - a scan of a partial index that holds only a working set (the outbox
//     still to send, the unbilled work): as long as that set, whatever the
//     history;
//   - a scan of an index in the query's ORDER BY order, stopped by its LIMIT.
//
// SEARCH steps (an index range or a key lookup) and temporary B-trees for
// sorting the few rows found are fine.
//
// To add a hot query: give it a named SQL constant or a query function in
// its file, and an entry in hotQueries.

// hotQuery is one cycle query and the representative arguments it runs with.
type hotQuery struct {
	name string
	sql  func(d *DB) string
	// scans lists the scans the plan may contain ("<table or alias>
	// USING [COVERING ]INDEX <index>", as EXPLAIN QUERY PLAN prints them
	// after "SCAN "), each with why it is bounded.
	scans map[string]string
	// uses are the indexes the plan must read: a SEARCH of the wrong index
	// (every sent message, by status) is as slow as a scan.
	uses []string
}

var (
	planNow = fixedNow
	// planCursor is a contact time in the middle of the dataset.
	planCursor = LeadCursor{ContactedAt: fixedNow.Add(-20 * 24 * time.Hour), ID: 5000}
)

const (
	boundedByLimit = "read in the ORDER BY order and stopped at the LIMIT"
	workingSet     = "a partial index of the working set only, not of the history"
)

func raw(query string, args ...any) func(d *DB) string {
	return func(d *DB) string { return d.bun.NewRaw(query, args...).String() }
}

var hotQueries = []hotQuery{
	// BizDev.
	{name: "caps count, hour and day (sendsInWindowsSQL)", sql: raw(sendsInWindowsSQL, planNow.Add(-time.Hour), planNow.Add(-24*time.Hour)),
		uses: []string{"messages_left", "messages_sending"}},
	{name: "PendingOutbox", sql: raw(pendingOutboxSQL, MaxSendAttempts),
		scans: map[string]string{"m USING INDEX messages_sendable": workingSet}, uses: []string{"messages_sendable"}},
	{name: "SendableMessages", sql: func(d *DB) string { return sendableMessagesQuery(d.bun, new([]Message), 10).String() },
		scans: map[string]string{"m USING INDEX messages_sendable": workingSet + ", " + boundedByLimit}, uses: []string{"messages_sendable"}},
	{name: "NewLeadsToContact", sql: func(d *DB) string { return newLeadsToContactQuery(d.bun, new([]Lead), 10).String() },
		scans: map[string]string{"l USING INDEX leads_new_email": workingSet + ", " + boundedByLimit},
		uses:  []string{"leads_new_email", "messages_lead"}},
	{name: "suppressionFor", sql: raw(suppressionForSQL, "pat7@lead7.example", bun.List([]string{"mail.lead7.example", "lead7.example", "example"})),
		uses: []string{"sqlite_autoindex_suppressions_1"}},
	// The deliverability guard, on every bounce applied: the last 50 real
	// sends, newest first, each with a probe of its address's suppression.
	{name: "bounce window (bounceWindowSQL)", sql: raw(bounceWindowSQL, planNow.Add(-10*24*time.Hour), 50),
		uses: []string{"messages_sent_window", "sqlite_autoindex_suppressions_1"}},
	{name: "warm-up start (warmupIn)", sql: func(d *DB) string {
		return d.bun.NewSelect().Model((*Setting)(nil)).Column("value").Where("key = ?", SettingWarmupStartedAt).String()
	}},
	{name: "message by id (ClaimMessage, MarkSent)", sql: func(d *DB) string {
		return d.bun.NewSelect().Model(new(Message)).Where("m.id = ?", 42).String()
	}},
	{name: "FlagStaleSending", sql: func(d *DB) string {
		return flagStaleSendingQuery(d.bun, planNow, 15*time.Minute).String()
	}, uses: []string{"messages_sending"}},
	{name: "LastSubject", sql: func(d *DB) string {
		return d.bun.NewSelect().Model((*Message)(nil)).Column("subject").
			Where("lead_id = ? AND status IN (?)", 42, bun.List([]string{MessageSent, MessageDryRun})).
			OrderExpr("id DESC").Limit(1).String()
	}, uses: []string{"messages_lead"}},
	// Lead source.
	{name: "lead by e-mail (dedupe)", sql: func(d *DB) string { return leadIDByEmailQuery(d.bun, "pat7@lead7.example").String() },
		uses: []string{"sqlite_autoindex_leads_1"}},
	{name: "duplicate lead (CreateLead)", sql: func(d *DB) string {
		return duplicateLeadQuery(d.bun, "pat7@lead7.example", []string{"lead7.example", "shop.lead7.example"}).String()
	}, uses: []string{"sqlite_autoindex_leads_1", "sqlite_autoindex_leads_2", "leads_website_key"}},
	// Prospect simulator and onboarding.
	{name: "ContactedAfter", sql: func(d *DB) string {
		return contactedAfterQuery(d.bun, new([]Lead), planNow.Add(-2*time.Minute), planCursor, 200).String()
	}, uses: []string{"leads_contacted", "replies_lead"}},
	{name: "replies of a lead (RecordReply)", sql: func(d *DB) string {
		return d.bun.NewSelect().Model((*Reply)(nil)).Where("lead_id = ?", 42).ColumnExpr("count(*)").String()
	}, uses: []string{"replies_lead"}},
	// Replies: a message asked about before the LLM is paid to sort it,
	// and the sortings of a reply.
	{name: "ReplyStored", sql: func(d *DB) string { return replyStoredQuery(d.bun, 42, "mid:0123456789abcdef").String() },
		uses: []string{"replies_dedupe"}},
	{name: "ReplySortings", sql: func(d *DB) string { return replySortingsQuery(d.bun, new([]ReplySorting), 42).String() },
		uses: []string{"reply_sortings_reply"}},
	{name: "RespondedLeads", sql: func(d *DB) string { return respondedLeadsQuery(d.bun, new([]Lead), 5).String() },
		scans: map[string]string{"l USING INDEX leads_responded": workingSet + ", " + boundedByLimit}, uses: []string{"leads_responded"}},
	{name: "existing customer (ConvertLead)", sql: func(d *DB) string {
		return existingCustomerQuery(d.bun, new(Customer), "pat16@lead16.example", 16).String()
	}, uses: []string{"sqlite_autoindex_customers_1", "sqlite_autoindex_customers_2"}},
	{name: "DuePeriods (monthly plans)", sql: func(d *DB) string { return duePeriodsQuery(d.bun, new([]Customer), planNow, 20).String() },
		uses: []string{"customers_next_period"}},
	// Ops.
	{name: "RecoverExpiredLeases", sql: raw(expireLeasesSQL+">= ?", TaskFailed, LeaseExpiredError, planNow, planNow, 3)},
	{name: "ClaimTasks", sql: raw(claimTasksSQL, planNow, planNow.Add(10*time.Minute), planNow, 10)},
	// Billing.
	{name: "CustomersWithUnbilledWork", sql: raw(customersWithUnbilledWorkSQL, 0, 100),
		uses: []string{"unbilled_tasks_customer"}},
	{name: "BillCustomer's unbilled tasks", sql: func(d *DB) string { return unbilledTasksQuery(d.bun, new([]Task), 7).String() },
		uses: []string{"unbilled_tasks_customer"}},
	{name: "InvoicesNeedingPaymentLink", sql: raw(invoicesNeedingPaymentLinkSQL, 20),
		scans: map[string]string{"i USING INDEX invoices_need_link": workingSet + ", " + boundedByLimit}, uses: []string{"invoices_need_link"}},
	// The Stripe webhook: every event of every install sharing the account
	// is recorded, so stripe_events grows fastest of all.
	{name: "invoice by payment link (Stripe session)", sql: raw(invoiceCols+invoiceByLinkWhere, "plink_123"),
		uses: []string{"invoices_payment_link"}},
	{name: "invoice by PaymentIntent (Stripe refund)", sql: raw(invoiceCols+invoiceByPaymentIntentWhere, "pi_123", bun.List(paidOutcomes)),
		uses: []string{"stripe_events_payment_intent"}},
	{name: "refunds before payment (Stripe session)", sql: raw(earlyRefundsSQL, "pi_123", OutcomeRefundBeforePayment),
		uses: []string{"stripe_events_payment_intent"}},
	// Collections: its jobs by time, the clients' outbox, its own caps.
	{name: "DueCollectionJobs", sql: func(d *DB) string { return dueJobsQuery(d.bun, new([]CollectionJob), planNow, 50).String() },
		uses: []string{"collection_jobs_run"}},
	{name: "collection job's invoice lines", sql: func(d *DB) string {
		return invoiceLinesQuery(d.bun, new([]InvoiceLineRow), 42).String()
	}, uses: []string{"invoice_lines_invoice"}},
	{name: "collection job's welcome tasks", sql: func(d *DB) string {
		return d.bun.NewSelect().Model(new([]Task)).Where("t.customer_id = ?", 42).OrderExpr("t.created_at, t.id").Limit(50).String()
	}, uses: []string{"tasks_customer_created"}},
	{name: "client caps count, hour and day (clientSendsSQL)", sql: raw(clientSendsSQL, planNow.Add(-time.Hour), planNow.Add(-24*time.Hour)),
		uses: []string{"client_messages_left", "client_messages_sending"}},
	{name: "the admin's client e-mail figures (allSendsSQL)", sql: raw(allSendsSQL, planNow.Add(-time.Hour), planNow.Add(-24*time.Hour)),
		uses: []string{"client_messages_left", "client_links_left", "client_messages_sending"}},
	{name: "portal link caps count, hour and day (linkSendsSQL)", sql: raw(linkSendsSQL, planNow.Add(-time.Hour), planNow.Add(-24*time.Hour)),
		uses: []string{"client_links_left", "client_messages_sending"}},
	{name: "ClearCustomerMailFlag's held-back messages", sql: func(d *DB) string {
		return d.bun.NewUpdate().Model((*ClientMessage)(nil)).ModelTableExpr("client_messages INDEXED BY client_messages_customer").
			Set("status = 'queued'").Where("customer_id = ? AND status = ? AND error LIKE ?", 7, MessageSuppressed, "not sent: "+flaggedAddress+"%").String()
	}, uses: []string{"client_messages_customer"}},
	{name: "SendableClientMessages", sql: func(d *DB) string { return sendableClientQuery(d.bun, new([]ClientMessage), 50).String() },
		scans: map[string]string{"cm USING INDEX client_messages_sendable": workingSet + ", " + boundedByLimit}, uses: []string{"client_messages_sendable"}},
	{name: "portal link mail's customer (QueuePortalLinkMail)", sql: func(d *DB) string {
		return d.bun.NewSelect().Model(new(Customer)).Where("c.contact_email = ?", "billing@customer7.example").String()
	}, uses: []string{"sqlite_autoindex_customers_1"}},
}

// bigTables are the tables that grow with the business's history.
var bigTables = []string{"leads", "messages", "outreach_drafts", "replies", "reply_sortings", "suppressions", "customers", "tasks", "invoices", "invoice_lines", "unbilled_tasks", "stripe_events",
	"client_messages", "client_attachments", "collection_jobs", "portal_links", "portal_sessions"}

// The plans are checked twice: as the app sees them (it never runs ANALYZE,
// so the planner guesses) and with the statistics of the dataset.
func TestHotQueryPlansReadTheBatchNotTheTable(t *testing.T) {
	d := mustOpenPath(t, filepath.Join(t.TempDir(), FileName))
	buildPlanDataset(t, d, 20_000)
	t.Run("without statistics", func(t *testing.T) { checkHotPlans(t, d) })
	if _, err := d.bun.ExecContext(context.Background(), "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	t.Run("after ANALYZE", func(t *testing.T) { checkHotPlans(t, d) })
}

func checkHotPlans(t *testing.T, d *DB) { checkPlans(t, d, hotQueries) }

// checkPlans checks the plan of each of queries on d.
func checkPlans(t *testing.T, d *DB, queries []hotQuery) {
	ctx := context.Background()
	scanStep := regexp.MustCompile(`^SCAN (\S+)(.*)$`)
	for _, q := range queries {
		t.Run(q.name, func(t *testing.T) {
			query := q.sql(d)
			var steps []struct {
				ID      int    `bun:"id"`
				Parent  int    `bun:"parent"`
				NotUsed int    `bun:"notused"`
				Detail  string `bun:"detail"`
			}
			if err := d.bun.NewRaw("EXPLAIN QUERY PLAN "+query).Scan(ctx, &steps); err != nil {
				t.Fatalf("EXPLAIN QUERY PLAN %s: %v", query, err)
			}
			var plan []string
			for _, s := range steps {
				plan = append(plan, s.Detail)
			}
			for _, s := range steps {
				m := scanStep.FindStringSubmatch(s.Detail)
				if m == nil {
					continue
				}
				rest := strings.TrimSpace(m[1] + m[2])
				if _, ok := q.scans[rest]; ok {
					continue
				}
				if !readsBigTable(m[1], query) {
					continue
				}
				t.Errorf("%s: step %q reads a whole table\nquery: %s\nplan:\n  %s", q.name, s.Detail, query, strings.Join(plan, "\n  "))
			}
			for _, index := range q.uses {
				if !strings.Contains(strings.Join(plan, "\n")+"\n", "INDEX "+index+" ") &&
					!strings.Contains(strings.Join(plan, "\n")+"\n", "INDEX "+index+"\n") {
					t.Errorf("%s: the plan does not use index %s\nquery: %s\nplan:\n  %s", q.name, index, query, strings.Join(plan, "\n  "))
				}
			}
			t.Logf("%s:\n  %s", q.name, strings.Join(plan, "\n  "))
		})
	}
}

// readsBigTable reports whether name (a table or the alias the query gives
// one) is one of bigTables.
func readsBigTable(name, query string) bool {
	name = strings.Trim(name, `"`)
	for _, table := range bigTables {
		if name == table {
			return true
		}
		alias := regexp.MustCompile(`(?i)\b"?` + table + `"?\s+AS\s+"?` + regexp.QuoteMeta(name) + `"?(\s|$|\))`)
		if alias.MatchString(query) {
			return true
		}
	}
	return false
}

// TestSendsSinceCountsWhatLeftTheOutbox pins the caps count's meaning on
// every status: sent and dry-run messages by sent_at, sending ones by
// sending_at, nothing else, in both the one-window and two-window forms.
func TestSendsSinceCountsWhatLeftTheOutbox(t *testing.T) {
	d := mustOpenPath(t, filepath.Join(t.TempDir(), FileName))
	ctx := context.Background()
	l, err := d.CreateLead(ctx, nil, NewLead{Email: "pat@caps.example", Company: "Caps", Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	recent, old := planNow.Add(-30*time.Minute), planNow.Add(-3*time.Hour)
	for _, m := range []struct {
		status            string
		sendingAt, sentAt *time.Time
	}{
		{MessageSent, &recent, &recent},   // hour and day
		{MessageDryRun, &old, &old},       // day
		{MessageSent, &recent, &old},      // day: sent_at decides
		{MessageSending, &recent, nil},    // hour and day
		{MessageSending, &old, nil},       // day
		{MessageQueued, nil, nil},         // never
		{MessageFailed, &recent, nil},     // never
		{MessageSuppressed, nil, nil},     // never
		{MessageFailed, &recent, &recent}, // never: not sent, whatever sent_at says
		{MessageSending, &recent, &old},   // hour and day: sending_at decides
	} {
		msg := &Message{LeadID: l.ID, ToAddr: "pat@caps.example", Template: "t", Subject: "s", Body: "b", Status: m.status,
			SendingAt: m.sendingAt, SentAt: m.sentAt, CreatedAt: old, UpdatedAt: old}
		if _, err := d.bun.NewInsert().Model(msg).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	hour, day, err := sendsInWindows(ctx, d.bun, planNow)
	if err != nil || hour != 3 || day != 6 {
		t.Fatalf("sendsInWindows = %d, %d, %v; want 3, 6", hour, day, err)
	}
}

// buildPlanDataset fills d with n leads, n/10 customers with ten done and
// billed tasks each, n/5 invoices and about 0.9n messages, plus a small
// working set for each cycle. Lead i's status follows i
// mod 10: 0 new without an e-mail, 1-5 contacted, 6 converted, 7 failed (its
// message used every attempt), 8 bounced and 9 unsubscribed (suppressed).
// ANALYZE is left to the caller.
func buildPlanDataset(t *testing.T, d *DB, n int) {
	t.Helper()
	ctx := context.Background()
	base := planNow.Add(-30 * 24 * time.Hour)
	ts := func(secs string) string {
		return fmt.Sprintf("(strftime('%%Y-%%m-%%d %%H:%%M:%%S', '%s', '+' || (%s) || ' seconds') || '+00:00')",
			base.Format("2006-01-02 15:04:05"), secs)
	}
	seq := func(count int) string {
		return fmt.Sprintf("WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < %d) ", count)
	}
	c := n / 10
	stmts := []string{
		seq(n) + `INSERT INTO leads (id, name, email, company, domain_key, niche, website, source, status,
			contacted_at, responded_at, converted_at, created_at, updated_at)
		SELECT i, 'Pat ' || i, CASE WHEN i % 10 = 0 THEN NULL ELSE 'pat' || i || '@lead' || i || '.example' END,
			'Lead ' || i, 'lead' || i || '.example', 'B2B SaaS', 'https://lead' || i || '.example', 'plan',
			CASE i % 10 WHEN 0 THEN 'new' WHEN 6 THEN 'converted' WHEN 7 THEN 'failed' WHEN 8 THEN 'bounced'
				WHEN 9 THEN 'unsubscribed' ELSE 'contacted' END,
			CASE WHEN i % 10 <> 0 THEN ` + ts("i * 10 + 3600") + ` END,
			CASE WHEN i % 10 = 6 THEN ` + ts("i * 10 + 7200") + ` END, CASE WHEN i % 10 = 6 THEN ` + ts("i * 10 + 7200") + ` END,
			` + ts("i * 10") + `, ` + ts("i * 10") + ` FROM seq`,
		`INSERT INTO messages (lead_id, to_addr, template, subject, body, status, attempts, created_at, sending_at, sent_at, updated_at)
		SELECT id, email, 'general', 'Hello', 'body', CASE WHEN id % 10 = 7 THEN 'failed' ELSE 'sent' END,
			CASE WHEN id % 10 = 7 THEN 3 ELSE 1 END, created_at, contacted_at,
			CASE WHEN id % 10 = 7 THEN NULL ELSE contacted_at END, contacted_at
		FROM leads WHERE id % 10 <> 0 ORDER BY id`,
		`INSERT INTO suppressions (kind, value, reason, created_at)
		SELECT 'address', email, CASE WHEN id % 10 = 8 THEN 'bounced' ELSE 'unsubscribed' END, contacted_at
		FROM leads WHERE id % 10 IN (8, 9) ORDER BY id`,
		`INSERT INTO replies (lead_id, from_addr, subject, body, received_at)
		SELECT id, email, 'Re: Hello', 'yes', responded_at FROM leads WHERE id % 10 = 6 ORDER BY id`,
		seq(c) + `INSERT INTO customers (id, company, contact_email, plan, lead_id, portal_token_hash, token_created_at, created_at)
		SELECT i, 'Lead ' || (i * 10 - 4), 'pat' || (i * 10 - 4) || '@lead' || (i * 10 - 4) || '.example', 'starter', i * 10 - 4,
			printf('%064d', i), ` + ts("i * 100 + 7200") + `, ` + ts("i * 100 + 7200") + ` FROM seq`,
		seq(c*10) + `INSERT INTO tasks (id, customer_id, kind, status, currency, reward_cents, cost_cents, profit_cents,
			attempts, started_at, completed_at, created_at, updated_at)
		SELECT i, (i - 1) / 10 + 1, 'market_research', 'done', 'usd', 5000, 100, 4900, 1,
			` + ts("i * 10 + 9000") + `, ` + ts("i * 10 + 9000") + `, ` + ts("i * 10 + 8000") + `, ` + ts("i * 10 + 9000") + ` FROM seq`,
		seq(c*2) + `INSERT INTO invoices (id, customer_id, number, currency, amount_cents, status, issued_at, due_at,
			payment_url, paid_at, created_at, updated_at)
		SELECT i, (i + 1) / 2, printf('INV-%06d', i), 'usd', 25000, CASE WHEN i % 2 = 1 THEN 'paid' ELSE 'open' END,
			` + ts("i * 50 + 10000") + `, ` + ts("i * 50 + 10000 + 1209600") + `, 'https://pay.example/' || i,
			CASE WHEN i % 2 = 1 THEN ` + ts("i * 50 + 11000") + ` END, ` + ts("i * 50 + 10000") + `, ` + ts("i * 50 + 10000") + ` FROM seq`,
		`INSERT INTO invoice_lines (invoice_id, task_id, amount_cents, created_at)
		SELECT (customer_id - 1) * 2 + 1 + ((id - 1) % 10) / 5, id, reward_cents, completed_at FROM tasks ORDER BY id`,
		// The working sets: a few queued messages, responded leads, pending
		// and running tasks, unbilled work and invoices without a link.
		`UPDATE messages SET status = 'queued', sent_at = NULL WHERE lead_id IN (SELECT id FROM leads WHERE id % 1000 = 1)`,
		`UPDATE leads SET status = 'responded', responded_at = contacted_at WHERE id % 1000 = 2`,
		`UPDATE leads SET email = 'new' || id || '@lead' || id || '.example', status = 'new', contacted_at = NULL
			WHERE id % 2000 = 0`,
		`INSERT INTO tasks (customer_id, kind, status, currency, reward_cents, profit_cents, attempts, lease_expires_at, created_at, updated_at)
		SELECT id, 'market_research', CASE WHEN id % 2 = 0 THEN 'pending' ELSE 'running' END, 'usd', 5000, 5000,
			id % 2, CASE WHEN id % 2 = 1 THEN created_at END, created_at, created_at FROM customers WHERE id % 50 = 0`,
		`INSERT INTO tasks (customer_id, kind, status, currency, reward_cents, profit_cents, attempts, completed_at, created_at, updated_at)
		SELECT id, 'market_research', 'done', 'usd', 5000, 5000, 1, created_at, created_at, created_at FROM customers WHERE id % 40 = 0`,
		`UPDATE invoices SET payment_url = '' WHERE id % 400 = 0`,
		// A customer in a hundred is on a monthly plan, its period due or not.
		`UPDATE customers SET next_period_at = created_at WHERE id % 100 = 0`,
	}
	for _, s := range stmts {
		if _, err := d.bun.ExecContext(ctx, s); err != nil {
			t.Fatalf("build dataset: %v\n%s", err, s)
		}
	}
	if got := countRows(t, d, "SELECT COUNT(*) FROM unbilled_tasks"); got != c/40 {
		t.Fatalf("unbilled_tasks has %d rows, want %d (the triggers keep it)", got, c/40)
	}
}
