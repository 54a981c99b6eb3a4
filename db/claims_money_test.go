package db

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"
)

// The money claims across instances (claims_money.go). Each test below
// races several stores on one database: on PostgreSQL each is its own
// OpenPostgres on the database's URL, as separate instances of the app
// are, with its own pool of connections; on SQLite, which one process at a
// time may open (lock.go), they are one store shared by the goroutines.
// Every racer waits at a common start so that they overlap.

// mustOpenInstances returns n stores on d's database, each as another
// instance of the app would open it (see above), with d's clock and guard.
func mustOpenInstances(tb testing.TB, d *DB, n int) []*DB {
	tb.Helper()
	out := make([]*DB, n)
	for i := range out {
		if !d.Postgres() {
			out[i] = d
			continue
		}
		o, err := OpenPostgres(context.Background(), d.url.String(), WithClock(d.now), WithGuard(d.guard))
		if err != nil {
			tb.Fatalf("OpenPostgres (instance %d): %v", i, err)
		}
		tb.Cleanup(func() { _ = o.Close() })
		out[i] = o
	}
	return out
}

// race runs fn once per store, all at once, and waits for every run.
func race(stores []*DB, fn func(i int, d *DB)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, d := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn(i, d)
		}()
	}
	close(start)
	wg.Wait()
}

// Several instances claiming tasks at once never get the same task: every
// pending task is claimed exactly once, with one attempt, and none is lost.
func TestClaimTasksAcrossInstancesNeverTwice(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	f := seed(t, d)
	want := map[int64]bool{}
	for _, p := range f.pending {
		want[p.ID] = true
	}
	for i := range 120 {
		task := newTask(200+i, f.customers[i%20].ID, TaskPending, "usd", 100, 0)
		insert(t, d.Bun(), task)
		want[task.ID] = true
	}
	stores := mustOpenInstances(t, d, 4)
	claims := make([][]ClaimedTask, len(stores))
	errs := make([]error, len(stores))
	race(stores, func(i int, s *DB) {
		for {
			got, err := s.ClaimTasks(ctx, fixedNow, 7, 10*time.Minute)
			if err != nil {
				errs[i] = err
				return
			}
			if len(got) == 0 {
				return
			}
			claims[i] = append(claims[i], got...)
		}
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("ClaimTasks: %v", err)
	}
	seen := map[int64]int{}
	for i, cs := range claims {
		for _, c := range cs {
			seen[c.ID]++
			if c.Attempts != 1 || c.Status != TaskRunning {
				t.Errorf("instance %d claimed task %d with attempts %d, status %s", i, c.ID, c.Attempts, c.Status)
			}
		}
	}
	for id, n := range seen {
		if n != 1 || !want[id] {
			t.Errorf("task %d claimed %d times (pending before: %v)", id, n, want[id])
		}
	}
	if len(seen) != len(want) {
		t.Errorf("claimed %d tasks, %d were pending", len(seen), len(want))
	}
	if n := countRows(t, d, "SELECT COUNT(*) FROM tasks WHERE status = 'pending'"); n != 0 {
		t.Errorf("%d tasks still pending", n)
	}
	requireAllInvariants(t, d, fixedNow)
}

// Several instances billing the same customers at once bill each task
// exactly once, and the invoice numbers they take are distinct and
// gapless, whether the counter row exists or the first issuers must create
// it.
func TestBillCustomerAcrossInstancesBillsOnce(t *testing.T) {
	for _, noCounter := range []bool{false, true} {
		t.Run(fmt.Sprintf("no counter row %v", noCounter), func(t *testing.T) {
			ctx := context.Background()
			d := mustOpen(t)
			f := seed(t, d)
			for i := range 30 {
				task := newTask(300+i, f.customers[i%10].ID, TaskDone, "usd", int64(1000+i), 10)
				insert(t, d.Bun(), task)
			}
			var before struct {
				Invoices int `bun:"n"`
				Highest  int `bun:"highest"`
			}
			highest := "MAX(CAST(substr(number, 5) AS INTEGER))"
			if err := d.Bun().NewRaw("SELECT COUNT(*) AS n, "+highest+" AS highest FROM invoices WHERE number IS NOT NULL").Scan(ctx, &before); err != nil {
				t.Fatal(err)
			}
			mustExec(t, d.Bun(), "DELETE FROM counters")
			if !noCounter {
				mustExec(t, d.Bun(), "INSERT INTO counters (name, value) VALUES (?, ?)", InvoiceCounter, before.Highest)
			}
			unbilled := countRows(t, d, "SELECT COUNT(*) FROM unbilled_tasks")
			customers, err := d.CustomersWithUnbilledWork(ctx, 0, 100)
			if err != nil || len(customers) < 10 {
				t.Fatalf("customers with unbilled work = %v, %v", customers, err)
			}
			rules := BillingRules{MinAmountCents: 1, MaxAmountCents: 99_999_999, DueAfter: 14 * 24 * time.Hour}
			stores := mustOpenInstances(t, d, 4)
			lines := make([]int, len(stores))
			errs := make([]error, len(stores))
			race(stores, func(i int, s *DB) {
				// Each instance walks the customers from another
				// starting point, so that they meet on every customer.
				for k := range customers {
					id := customers[(k+i*len(customers)/len(stores))%len(customers)]
					b, err := s.BillCustomer(ctx, id, fixedNow, rules)
					if errors.Is(err, ErrAlreadyBilled) {
						continue
					}
					if err != nil {
						errs[i] = errors.Join(errs[i], err)
						continue
					}
					lines[i] += b.Lines
				}
			})
			if err := errors.Join(errs...); err != nil {
				t.Fatalf("BillCustomer: %v", err)
			}
			total := 0
			for _, n := range lines {
				total += n
			}
			if total != unbilled {
				t.Errorf("billed %d lines, %d tasks were unbilled", total, unbilled)
			}
			if n := countRows(t, d, "SELECT COUNT(*) FROM unbilled_tasks"); n != 0 {
				t.Errorf("%d tasks left unbilled", n)
			}
			var numbers []string
			if err := d.Bun().NewRaw("SELECT number FROM invoices WHERE number IS NOT NULL ORDER BY number").Scan(ctx, &numbers); err != nil {
				t.Fatal(err)
			}
			issued := numbers[before.Invoices:]
			for k, n := range issued {
				if want := fmt.Sprintf("INV-%06d", before.Highest+1+k); n != want {
					t.Fatalf("issued numbers %v are not gapless after %d: %s, want %s", issued, before.Highest, n, want)
				}
			}
			if len(issued) == 0 {
				t.Fatal("no invoice issued")
			}
			requireAllInvariants(t, d, fixedNow)
		})
	}
}

// Two different events paying one invoice, applied by two instances at
// once (the webhook's event and reconcile's, say), mark it paid once: the
// other is a late report of the same payment, not an error, and nothing is
// recorded as unprocessable.
func TestApplyPaymentTwoEventsOfOneSessionAcrossInstances(t *testing.T) {
	d := mustOpen(t)
	f := seed(t, d)
	inv := f.invoices[9]
	webhook := paidSession("evt_webhook", inv)
	reconcile := webhook
	reconcile.EventID = "reconcile:" + webhook.SessionID
	events := []PaymentEvent{webhook, reconcile, webhook, reconcile}
	stores := mustOpenInstances(t, d, len(events))
	outs := make([]PaymentOutcome, len(stores))
	errs := make([]error, len(stores))
	race(stores, func(i int, s *DB) {
		outs[i], errs[i] = s.ApplyPaymentEvent(context.Background(), events[i], testInstall, fixedNow)
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("ApplyPaymentEvent: %v", err)
	}
	paid, late, dup := 0, 0, 0
	for _, out := range outs {
		switch {
		case out.Duplicate:
			dup++
		case out.Paid:
			paid++
		case out.Outcome == OutcomeAlreadyPaid:
			late++
		default:
			t.Errorf("outcome %+v", out)
		}
	}
	if paid != 1 || late != 1 || dup != 2 {
		t.Errorf("paid %d, already paid %d, duplicates %d; want 1, 1, 2", paid, late, dup)
	}
	if n := countRows(t, d, "SELECT COUNT(*) FROM stripe_events WHERE outcome = ?", OutcomeUnprocessable); n != 0 {
		t.Errorf("%d events recorded as unprocessable", n)
	}
	if s := readPaymentState(t, d, inv.ID); s.Status != InvoicePaid {
		t.Errorf("invoice = %+v", s)
	}
	allHold(t, d)
}

// Several instances doing one collection job at once queue its e-mail once
// and delete the job; the others find it gone (or, past that, the e-mail
// already queued).
func TestCompleteCollectionJobAcrossInstancesOnce(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	seed(t, d)
	jobs, err := d.DueCollectionJobs(ctx, fixedNow.Add(365*24*time.Hour), 1)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("due jobs = %+v, %v", jobs, err)
	}
	job := jobs[0]
	key := fmt.Sprintf("test:%d", job.ID)
	compose := func(cs CollectionCase) (*ClientDraft, []NewCollectionJob, error) {
		return &ClientDraft{Kind: cs.Job.Kind, DedupeKey: key, Subject: "Hello", Text: "Hello", HTML: "<p>Hello</p>"}, nil, nil
	}
	stores := mustOpenInstances(t, d, 4)
	outcomes := make([]CollectionOutcome, len(stores))
	errs := make([]error, len(stores))
	race(stores, func(i int, s *DB) {
		outcomes[i], _, errs[i] = s.CompleteCollectionJob(ctx, job.ID, compose)
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("CompleteCollectionJob: %v", err)
	}
	queued := 0
	for _, o := range outcomes {
		switch o {
		case JobQueued:
			queued++
		case JobGone, JobDup:
		default:
			t.Errorf("outcome %q", o)
		}
	}
	if queued != 1 {
		t.Errorf("outcomes %v: queued %d times, want once", outcomes, queued)
	}
	if n := countRows(t, d, "SELECT COUNT(*) FROM client_messages WHERE dedupe_key = ?", key); n != 1 {
		t.Errorf("%d messages queued for the job", n)
	}
	if n := countRows(t, d, "SELECT COUNT(*) FROM collection_jobs WHERE id = ?", job.ID); n != 0 {
		t.Errorf("the job is still there")
	}
}

// Several instances starting on one empty database seed the catalogue
// once, and none of them fails for it.
func TestSeedCatalogueAcrossInstancesOnce(t *testing.T) {
	d := mustOpen(t)
	c := CatalogueData{
		Kinds: []CatalogueKind{{Kind: "market_research_brief", Title: "Brief", PriceCents: 15000, Currency: "usd"}},
		Plans: []CataloguePlan{{Name: "starter", Title: "Starter", Currency: "usd", Billing: BillingOnce, Active: true, Kinds: []string{"market_research_brief"}}},
	}
	stores := mustOpenInstances(t, d, 4)
	seeded := make([]bool, len(stores))
	errs := make([]error, len(stores))
	race(stores, func(i int, s *DB) { seeded[i], errs[i] = s.SeedCatalogue(context.Background(), c) })
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("SeedCatalogue: %v", err)
	}
	if n := len(slices.DeleteFunc(seeded, func(b bool) bool { return !b })); n != 1 {
		t.Errorf("seeded by %d instances, want 1", n)
	}
	if n := countRows(t, d, "SELECT COUNT(*) FROM plan_items"); n != 1 {
		t.Errorf("plan items = %d, want 1", n)
	}
}

// Finishing an attempt while another instance recovers its lease is
// either the one or the other, never an error: the finisher that loses
// gets false, as a late finisher does.
func TestFinishRacesLeaseRecoveryAcrossInstances(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	seed(t, d)
	claimed, err := d.ClaimTasks(ctx, fixedNow, 12, time.Minute)
	if err != nil || len(claimed) != 12 {
		t.Fatalf("claim: %d, %v", len(claimed), err)
	}
	later := fixedNow.Add(2 * time.Minute) // past every lease just taken
	stores := mustOpenInstances(t, d, 2)
	done := make([]bool, len(claimed))
	var recovered int
	errs := make([]error, 2)
	race(stores, func(i int, s *DB) {
		if i == 0 {
			recovered, _, errs[0] = s.RecoverExpiredLeases(ctx, later, 3)
			return
		}
		for k, c := range claimed {
			ok, err := s.CompleteTask(ctx, c.ID, c.Attempts, "done", 1, later)
			if err != nil {
				errs[1] = errors.Join(errs[1], err)
			}
			done[k] = ok
		}
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("finish or recover: %v", err)
	}
	completed := 0
	for k, c := range claimed {
		task := loadFulfilmentTask(t, d, c.ID)
		want := TaskPending
		if done[k] {
			want = TaskDone
			completed++
		}
		if task.Status != want {
			t.Errorf("task %d is %s, finisher said done=%v", c.ID, task.Status, done[k])
		}
	}
	// The fixture's 6 running tasks have leases 10 minutes ahead: not
	// recovered at later.
	if completed+recovered != len(claimed) {
		t.Errorf("completed %d + recovered %d, want %d", completed, recovered, len(claimed))
	}
	requireAllInvariants(t, d, later)
}

// pgPlanSteps is the plan PostgreSQL picks for q, one node a line
// ("Index Scan stripe_events USING stripe_events_session"), with
// sequential scans priced out of reach (enable_seqscan off): the fixture
// is far too small for the planner to prefer an index on its own, so a
// Seq Scan left in the plan means no index can serve the query.
func pgPlanSteps(t *testing.T, d *DB, q string, args ...any) string {
	t.Helper()
	return pgPlanLines(t, d, q, args, "SET LOCAL enable_seqscan = off")
}

// pgPlanStepsAsIs is pgPlanSteps with the planner left to itself, for a
// dataset big enough that its choice says something.
func pgPlanStepsAsIs(t *testing.T, d *DB, q string, args ...any) string {
	t.Helper()
	return pgPlanLines(t, d, q, args)
}

// pgPlanLines is pgPlanOf's plan (queries_test.go) of q with args bound,
// one node a line, sorted.
func pgPlanLines(t *testing.T, d *DB, q string, args []any, settings ...string) string {
	t.Helper()
	var out []string
	pgPlanOf(t, d, d.Bun().NewRaw(q, args...).String(), settings...).walk(func(n pgPlan) {
		step := n.NodeType
		if n.Relation != "" {
			step += " " + n.Relation
		}
		if n.Index != "" {
			step += " USING " + n.Index
		}
		out = append(out, step)
	})
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// The money queries the agents run every cycle (queryplan_test.go proves
// their SQLite plans) are each served by the index they were written for
// on PostgreSQL too: with sequential scans priced out, the plan reads that
// index and no big table whole. (Without it on a real dataset the planner
// is free to choose; pgPlanSteps says why the fixture cannot tell.) uses
// is the index, or the start of the names of the indexes, it must read.
func TestMoneyHotQueriesUseTheirIndexesOnPostgres(t *testing.T) {
	if !testOnPostgres() {
		t.Skip("PostgreSQL's plans: the SQLite ones are TestHotQueryPlansReadTheBatchNotTheTable's")
	}
	d := mustOpen(t)
	seed(t, d)
	for _, q := range []struct {
		name, sql string
		args      []any
		uses      string
	}{
		{"ClaimTasks", claimTasksPostgresSQL, []any{10, planNow, planNow.Add(10 * time.Minute), planNow}, "tasks_status_created"},
		// Either index led by status finds the running tasks.
		{"RecoverExpiredLeases", expireLeasesSQL + ">= ?", []any{TaskFailed, LeaseExpiredError, planNow, planNow, 3}, "tasks_status_"},
		{"CustomersWithUnbilledWork", d.pinJoins(customersWithUnbilledWorkSQL), []any{0, 100}, "unbilled_tasks_customer"},
		{"BillCustomer's unbilled tasks", unbilledTasksQuery(d.bun, new([]Task), 7).String(), nil, "unbilled_tasks_customer"},
		{"InvoicesNeedingPaymentLink", d.pin(invoicesNeedingPaymentLinkSQL), []any{20}, "invoices_need_link"},
		{"DuePeriods", duePeriodsQuery(d.bun, new([]Customer), planNow, 20).String(), nil, "customers_next_period"},
		{"DueCollectionJobs", dueJobsQuery(d.bun, new([]CollectionJob), planNow, 50).String(), nil, "collection_jobs_run"},
		{"invoice by payment link", invoiceCols + invoiceByLinkWhere, []any{"plink_123"}, "invoices_payment_link"},
		{"invoice by PaymentIntent", invoiceCols + invoiceByPaymentIntentWhere, []any{"pi_123", bun.List(paidOutcomes)}, "stripe_events_payment_intent"},
		{"refunds before payment", earlyRefundsSQL, []any{"pi_123", OutcomeRefundBeforePayment}, "stripe_events_payment_intent"},
		// Which side of the join leads is the planner's to choose here
		// (SQLite's is pinned by CROSS JOIN); neither may be read whole.
		{"LatestLinkError", d.pinJoins(latestLinkErrorSQL), nil, ""},
	} {
		t.Run(q.name, func(t *testing.T) {
			plan := pgPlanSteps(t, d, q.sql, q.args...)
			if !strings.Contains(plan, "USING "+q.uses) || strings.Contains(plan, "Seq Scan") {
				t.Errorf("plan does not read %s alone:\n%s", q.uses, plan)
			}
		})
	}
}

// Without its counter row, numbering continues after the highest number
// issued, read as each dialect reads it: the digits after "INV-" (none:
// 0), the prefix in any case.
func TestInvoiceNumberWithoutCounterContinuesAfterTheHighest(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	f := seed(t, d)
	mustExec(t, d.Bun(), "DELETE FROM counters")
	mustExec(t, d.Bun(), "UPDATE invoices SET number = 'inv-000070' WHERE id = ?", f.invoices[0].ID)
	mustExec(t, d.Bun(), "UPDATE invoices SET number = 'INV-AGE-99' WHERE id = ?", f.invoices[1].ID)
	mustExec(t, d.Bun(), "UPDATE invoices SET number = 'INV-' WHERE id = ?", f.invoices[2].ID)
	customers, err := d.CustomersWithUnbilledWork(ctx, 0, 1)
	if err != nil || len(customers) != 1 {
		t.Fatalf("customers with unbilled work = %v, %v", customers, err)
	}
	b, err := d.BillCustomer(ctx, customers[0], fixedNow, BillingRules{MinAmountCents: 1, MaxAmountCents: 99_999_999})
	if err != nil || len(b.Invoices) == 0 {
		t.Fatalf("BillCustomer = %+v, %v", b, err)
	}
	if got := *b.Invoices[0].Number; got != "INV-000071" {
		t.Errorf("first number without a counter = %s, want INV-000071", got)
	}
}
