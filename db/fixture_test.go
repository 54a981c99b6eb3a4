package db

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/uptrace/bun"
)

// fixture is a consistent dataset (every invariant holds) with more than 20
// rows of each kind, so that a sum over only the newest rows would be caught.
// The expected figures in stats_test.go are computed by hand from the recipe
// in seed; change one and the other must follow.
//
// Recipe:
//   - 37 leads: 1-10 new, 11-18 contacted, 19-23 responded, 24-29 converted,
//     30-32 bounced, 33-34 unsubscribed, 35-36 failed, 37 dead. Every 4th lead
//     is in the "Dentist" niche; lead 34 is "Snake_Case Labs", lead 35 is
//     "100% Organic"; leads 36 and 37 use free mail (no domain key).
//   - 25 customers "Customer 00".."Customer 24": 0-19 active, 20-22 paused,
//     23-24 closed with revoked tokens; customers 0-5 come from leads 24-29.
//   - 60 tasks: done usd u1..u29 (reward 500+100i, cost 50i) for customer
//     (i-1)%25; a done usd task with reward 1000 and cost 2500 (negative
//     profit) for customer 0; done eur e1..e4 (reward 1000+1000j, cost 500)
//     for customer 19+j; 6 running (lease 10 minutes ahead), 12 pending and 8
//     failed tasks for customers 10-24.
//   - 30 invoices, one line per task at the task's reward: invoice i (1-25)
//     bills u_i in usd: 1-4 draft, 5-12 open (5-8 overdue, 9 due exactly now,
//     10-12 due later), 13-20 paid, 21-22 void, 23-25 refunded. Invoices
//     26-28 bill e1-e3 in eur: paid, open overdue, open not due. Invoice 29
//     bills the negative-profit task and u26 (open, overdue); invoice 30 bills
//     u27 (paid). u28, u29 and e4 are unbilled.
//   - 22 outbox messages, 3 Stripe events.
type fixture struct {
	leads     []*Lead     // lead k at [k-1]
	customers []*Customer // "Customer NN" at [NN]
	tokens    []string    // plain portal tokens, by customer index
	doneUSD   []*Task     // u_i at [i-1]
	negative  *Task
	doneEUR   []*Task // e_j at [j-1]
	running   []*Task
	pending   []*Task
	failed    []*Task
	invoices  []*Invoice // invoice n at [n-1]
	messages  []*Message
	events    []*StripeEvent
}

// leadStatusCounts is how many leads of each status the fixture holds, in
// LeadStatuses order.
var leadStatusCounts = []int{10, 8, 5, 6, 3, 2, 2, 1}

// seed fills d with the fixture in one transaction.
func seed(tb testing.TB, d *DB) *fixture {
	tb.Helper()
	f := &fixture{}
	err := d.RunInTx(context.Background(), func(ctx context.Context, tx bun.Tx) error {
		for _, step := range []func(context.Context, *DB, bun.Tx) error{
			f.seedLeads, f.seedCustomers, f.seedTasks, f.seedInvoices, f.seedMessages, f.seedEvents,
		} {
			if err := step(ctx, d, tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("seed: %v", err)
	}
	return f
}

func ptr[T any](v T) *T { return &v }

func (f *fixture) seedLeads(ctx context.Context, d *DB, tx bun.Tx) error {
	var statuses []string
	for i, n := range leadStatusCounts {
		for range n {
			statuses = append(statuses, LeadStatuses[i])
		}
	}
	for k := 1; k <= len(statuses); k++ {
		in := NewLead{
			Name:      fmt.Sprintf("Contact %02d", k),
			Email:     fmt.Sprintf("Contact%02d@Company%02d.com", k, k), // CreateLead lower-cases
			Company:   fmt.Sprintf("Company %02d", k),
			DomainKey: fmt.Sprintf("company%02d.com", k),
			Website:   fmt.Sprintf("https://company%02d.com", k),
			Niche:     "Bakery",
			Source:    "fixture",
		}
		if k%4 == 0 {
			in.Niche = "Dentist"
		}
		switch k {
		case 34:
			in.Company = "Snake_Case Labs"
		case 35:
			in.Company = "100% Organic"
		case 36, 37:
			in.Email, in.DomainKey, in.Website = fmt.Sprintf("owner%02d@gmail.com", k), "", ""
		}
		l, err := d.CreateLead(ctx, tx, in)
		if err != nil {
			return err
		}
		// Spread creation times so "newest first" has one answer.
		l.Status = statuses[k-1]
		l.CreatedAt = fixedNow.Add(-time.Duration(len(statuses)-k) * time.Hour)
		if _, err := tx.NewUpdate().Model(l).Column("status", "created_at").WherePK().Exec(ctx); err != nil {
			return err
		}
		f.leads = append(f.leads, l)
	}
	return nil
}

func (f *fixture) seedCustomers(ctx context.Context, d *DB, tx bun.Tx) error {
	for n := range 25 {
		in := NewCustomer{
			Company:      fmt.Sprintf("Customer %02d", n),
			ContactEmail: fmt.Sprintf("Billing@Customer%02d.com", n),
			Plan:         "starter",
		}
		if n < 6 {
			in.LeadID = &f.leads[23+n].ID
		}
		c, token, err := d.CreateCustomer(ctx, tx, in, rand.Reader)
		if err != nil {
			return err
		}
		c.CreatedAt = fixedNow.Add(-time.Duration(25-n) * time.Hour)
		switch {
		case n >= 23:
			c.Status, c.TokenRevokedAt = CustomerClosed, ptr(fixedNow.Add(-time.Hour))
		case n >= 20:
			c.Status = CustomerPaused
		}
		_, err = tx.NewUpdate().Model(c).Column("status", "token_revoked_at", "created_at").WherePK().Exec(ctx)
		if err != nil {
			return err
		}
		f.customers = append(f.customers, c)
		f.tokens = append(f.tokens, token)
	}
	return nil
}

// newTask builds a task valid for its status; seq orders creation times.
func newTask(seq int, customerID int64, status, currency string, reward, cost int64) *Task {
	created := fixedNow.Add(-72*time.Hour + time.Duration(seq)*time.Minute)
	t := &Task{
		CustomerID: customerID, Kind: "report", Description: fmt.Sprintf("task %d", seq),
		Status: status, Currency: currency, RewardCents: reward, CostCents: cost, ProfitCents: reward - cost,
		CreatedAt: created, UpdatedAt: created,
	}
	switch status {
	case TaskDone:
		t.Attempts, t.StartedAt, t.CompletedAt = 1, ptr(created.Add(time.Minute)), ptr(created.Add(2*time.Minute))
		t.Result = "delivered"
	case TaskRunning:
		t.Attempts, t.StartedAt, t.LeaseExpiresAt = 1, ptr(fixedNow.Add(-time.Minute)), ptr(fixedNow.Add(10*time.Minute))
	case TaskFailed:
		t.Attempts, t.LastError = 3, "gave up"
	}
	return t
}

func (f *fixture) seedTasks(ctx context.Context, _ *DB, tx bun.Tx) error {
	var all []*Task
	add := func(t *Task) *Task { all = append(all, t); return t }
	cust := func(n int) int64 { return f.customers[n].ID }
	for i := 1; i <= 29; i++ {
		f.doneUSD = append(f.doneUSD, add(newTask(len(all), cust((i-1)%25), TaskDone, "usd", int64(500+100*i), int64(50*i))))
	}
	f.negative = add(newTask(len(all), cust(0), TaskDone, "usd", 1000, 2500))
	for j := 1; j <= 4; j++ {
		f.doneEUR = append(f.doneEUR, add(newTask(len(all), cust(19+j), TaskDone, "eur", int64(1000+1000*j), 500)))
	}
	for r := range 6 {
		f.running = append(f.running, add(newTask(len(all), cust(10+r), TaskRunning, "usd", 9999, 1)))
	}
	for p := range 12 {
		f.pending = append(f.pending, add(newTask(len(all), cust(10+p%15), TaskPending, "usd", 7777, 0)))
	}
	for x := range 8 {
		f.failed = append(f.failed, add(newTask(len(all), cust(10+x), TaskFailed, "usd", 5555, 3333)))
	}
	for _, t := range all {
		if _, err := tx.NewInsert().Model(t).Exec(ctx); err != nil {
			return fmt.Errorf("insert task %q: %w", t.Description, err)
		}
	}
	return nil
}

// invoiceSpec describes one fixture invoice; due is relative to fixedNow.
type invoiceSpec struct {
	status   string
	currency string
	due      *time.Duration
	tasks    []*Task
}

func (f *fixture) seedInvoices(ctx context.Context, _ *DB, tx bun.Tx) error {
	day := 24 * time.Hour
	rel := func(d time.Duration) *time.Duration { return &d }
	var specs []invoiceSpec
	for i := 1; i <= 25; i++ {
		s := invoiceSpec{currency: "usd", tasks: []*Task{f.doneUSD[i-1]}}
		switch {
		case i <= 4:
			s.status = InvoiceDraft
		case i <= 8:
			s.status, s.due = InvoiceOpen, rel(-time.Duration(i)*day)
		case i == 9:
			s.status, s.due = InvoiceOpen, rel(0)
		case i <= 12:
			s.status, s.due = InvoiceOpen, rel(time.Duration(i)*day)
		case i <= 20:
			s.status, s.due = InvoicePaid, rel(-30*day)
		case i <= 22:
			s.status, s.due = InvoiceVoid, rel(-30*day)
		default:
			s.status, s.due = InvoiceRefunded, rel(-30*day)
		}
		specs = append(specs, s)
	}
	specs = append(specs,
		invoiceSpec{InvoicePaid, "eur", rel(-30 * day), []*Task{f.doneEUR[0]}},
		invoiceSpec{InvoiceOpen, "eur", rel(-2 * day), []*Task{f.doneEUR[1]}},
		invoiceSpec{InvoiceOpen, "eur", rel(2 * day), []*Task{f.doneEUR[2]}},
		invoiceSpec{InvoiceOpen, "usd", rel(-time.Second), []*Task{f.negative, f.doneUSD[25]}},
		invoiceSpec{InvoicePaid, "usd", rel(-30 * day), []*Task{f.doneUSD[26]}},
	)
	issued := 0
	for n, s := range specs {
		inv := &Invoice{
			CustomerID: s.tasks[0].CustomerID, Currency: s.currency, Status: s.status,
			CreatedAt: fixedNow.Add(-time.Duration(len(specs)-n) * time.Hour),
		}
		inv.UpdatedAt = inv.CreatedAt
		for _, t := range s.tasks {
			inv.AmountCents += t.RewardCents
		}
		if s.status != InvoiceDraft {
			issued++
			inv.Number, inv.IssuedAt = ptr(fmt.Sprintf("INV-%06d", issued)), ptr(inv.CreatedAt)
		}
		if s.due != nil {
			inv.DueAt = ptr(fixedNow.Add(*s.due))
		}
		if s.status == InvoicePaid || s.status == InvoiceRefunded {
			inv.PaidAt, inv.PayerEmail = ptr(fixedNow.Add(-20*day)), "payer@example.com"
		}
		if _, err := tx.NewInsert().Model(inv).Exec(ctx); err != nil {
			return fmt.Errorf("insert invoice %d: %w", n+1, err)
		}
		for _, t := range s.tasks {
			line := &InvoiceLine{InvoiceID: inv.ID, TaskID: t.ID, Description: t.Description,
				AmountCents: t.RewardCents, CreatedAt: inv.CreatedAt}
			if _, err := tx.NewInsert().Model(line).Exec(ctx); err != nil {
				return fmt.Errorf("insert line of invoice %d: %w", n+1, err)
			}
		}
		f.invoices = append(f.invoices, inv)
	}
	_, err := tx.NewRaw("INSERT INTO counters (name, value) VALUES ('invoice', ?)", issued).Exec(ctx)
	return err
}

// messageStatusCounts is how many outbox messages of each status the fixture
// holds, in MessageStatuses order.
var messageStatusCounts = []int{5, 1, 10, 3, 2, 1}

func (f *fixture) seedMessages(ctx context.Context, _ *DB, tx bun.Tx) error {
	for i, n := range messageStatusCounts {
		for range n {
			l := f.leads[len(f.messages)]
			m := &Message{
				LeadID: l.ID, ToAddr: l.EmailAddr(), Template: "intro", Subject: "Hello", Body: "Hi there",
				Status: MessageStatuses[i], CreatedAt: fixedNow.Add(-time.Hour), UpdatedAt: fixedNow.Add(-time.Hour),
			}
			if _, err := tx.NewInsert().Model(m).Exec(ctx); err != nil {
				return err
			}
			f.messages = append(f.messages, m)
		}
	}
	return nil
}

func (f *fixture) seedEvents(ctx context.Context, _ *DB, tx bun.Tx) error {
	for i, inv := range []*Invoice{f.invoices[12], f.invoices[13], f.invoices[25]} {
		e := &StripeEvent{
			EventID: fmt.Sprintf("evt_fixture_%d", i), Type: "checkout.session.completed",
			InvoiceID: &inv.ID, Outcome: "paid", ReceivedAt: *inv.PaidAt,
		}
		if _, err := tx.NewInsert().Model(e).Exec(ctx); err != nil {
			return err
		}
		f.events = append(f.events, e)
	}
	return nil
}
