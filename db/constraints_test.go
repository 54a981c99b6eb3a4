package db

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
)

// constraintDB is a small consistent store for the constraint tests: one
// customer, a done task billed on an open invoice, a done unbilled task, and
// a paid invoice.
type constraintDB struct {
	*DB
	customer  *Customer
	billed    *Task
	unbilled  *Task
	open      *Invoice
	paid      *Invoice
	paidEvent string
}

func mustConstraintDB(t *testing.T) *constraintDB {
	t.Helper()
	ctx := context.Background()
	d := mustOpen(t)
	c := &constraintDB{DB: d}
	var err error
	c.customer, _, err = d.CreateCustomer(ctx, nil, NewCustomer{Company: "Acme", ContactEmail: "Ops@Acme.io", Plan: "starter"}, rand.Reader)
	if err != nil {
		t.Fatalf("CreateCustomer: %v", err)
	}
	c.billed = newTask(1, c.customer.ID, TaskDone, "usd", 1500, 200)
	c.unbilled = newTask(2, c.customer.ID, TaskDone, "usd", 900, 1200)
	c.open = &Invoice{CustomerID: c.customer.ID, Number: ptr("INV-000001"), Currency: "usd", AmountCents: 1500,
		Status: InvoiceOpen, CreatedAt: fixedNow, UpdatedAt: fixedNow}
	c.paid = &Invoice{CustomerID: c.customer.ID, Number: ptr("INV-000002"), Currency: "usd", AmountCents: 0,
		Status: InvoicePaid, PaidAt: ptr(fixedNow), CreatedAt: fixedNow, UpdatedAt: fixedNow}
	for _, m := range []any{c.billed, c.unbilled, c.open, c.paid} {
		if _, err := d.Bun().NewInsert().Model(m).Exec(ctx); err != nil {
			t.Fatalf("insert %T: %v", m, err)
		}
	}
	line := &InvoiceLine{InvoiceID: c.open.ID, TaskID: c.billed.ID, AmountCents: 1500, CreatedAt: fixedNow}
	if _, err := d.Bun().NewInsert().Model(line).Exec(ctx); err != nil {
		t.Fatalf("insert line: %v", err)
	}
	c.paidEvent = "evt_1"
	if _, err := d.Bun().NewInsert().Model(&StripeEvent{EventID: c.paidEvent, Type: "checkout.session.completed", ReceivedAt: fixedNow}).Exec(ctx); err != nil {
		t.Fatalf("insert event: %v", err)
	}
	return c
}

// refused asserts that err is a constraint violation (a unique one when
// unique is set) and that countQuery then finds want rows.
func refused(t *testing.T, d *DB, err error, unique bool, want int, countQuery string, args ...any) {
	t.Helper()
	if err == nil {
		t.Fatal("write accepted, want it refused")
	}
	if !IsConstraintViolation(err) {
		t.Fatalf("error %q is not a constraint violation", err)
	}
	if got := IsUniqueViolation(err); got != unique {
		t.Fatalf("IsUniqueViolation(%q) = %v, want %v", err, got, unique)
	}
	if n := countRows(t, d, countQuery, args...); n != want {
		t.Fatalf("%s: %d rows after the refused write, want %d", countQuery, n, want)
	}
}

func TestLeadConstraints(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	lead := func(email, domain string) error {
		_, err := d.CreateLead(ctx, nil, NewLead{Email: email, DomainKey: domain, Company: "Co", Source: "test"})
		return err
	}
	if err := lead("Jane@Bakery.com", "Bakery.com"); err != nil {
		t.Fatalf("first lead: %v", err)
	}

	t.Run("duplicate email", func(t *testing.T) {
		err := lead("jane@bakery.com", "")
		refused(t, d, err, true, 1, "SELECT COUNT(*) FROM leads WHERE email = 'jane@bakery.com'")
	})
	t.Run("duplicate email differing by case", func(t *testing.T) {
		err := lead("  JANE@BAKERY.COM ", "other.com")
		refused(t, d, err, true, 0, "SELECT COUNT(*) FROM leads WHERE domain_key = 'other.com' OR email <> lower(email)")
	})
	t.Run("duplicate domain key", func(t *testing.T) {
		err := lead("bob@bakery.com", "BAKERY.COM")
		refused(t, d, err, true, 0, "SELECT COUNT(*) FROM leads WHERE email = 'bob@bakery.com'")
	})
	t.Run("two free-mail leads", func(t *testing.T) {
		for _, e := range []string{"a@gmail.com", "b@gmail.com"} {
			if err := lead(e, ""); err != nil {
				t.Fatalf("free-mail lead %s: %v", e, err)
			}
		}
		if n := countRows(t, d, "SELECT COUNT(*) FROM leads WHERE domain_key IS NULL"); n != 2 {
			t.Fatalf("leads without domain key = %d, want 2", n)
		}
	})
	t.Run("upper-case email written directly", func(t *testing.T) {
		_, err := d.Bun().ExecContext(ctx, `INSERT INTO leads (email, company, source, created_at, updated_at)
			VALUES ('Raw@Example.com', 'Raw', 'test', ?, ?)`, fixedNow, fixedNow)
		refused(t, d, err, false, 0, "SELECT COUNT(*) FROM leads WHERE company = 'Raw'")
	})
	t.Run("status outside the set", func(t *testing.T) {
		_, err := d.Bun().ExecContext(ctx, `UPDATE leads SET status = 'won' WHERE email = 'jane@bakery.com'`)
		refused(t, d, err, false, 0, "SELECT COUNT(*) FROM leads WHERE status = 'won'")
	})
}

func TestCustomerConstraints(t *testing.T) {
	ctx := context.Background()
	c := mustConstraintDB(t)

	t.Run("duplicate contact email", func(t *testing.T) {
		_, _, err := c.CreateCustomer(ctx, nil, NewCustomer{Company: "Acme 2", ContactEmail: "OPS@acme.io", Plan: "starter"}, rand.Reader)
		refused(t, c.DB, err, true, 0, "SELECT COUNT(*) FROM customers WHERE company = 'Acme 2'")
	})
	t.Run("token hash of the wrong length", func(t *testing.T) {
		for _, hash := range []string{"", "abc", strings.Repeat("a", 63), strings.Repeat("a", 65)} {
			_, err := c.Bun().ExecContext(ctx, `INSERT INTO customers (company, contact_email, plan, portal_token_hash, token_created_at, created_at)
				VALUES ('Short', 'short@example.com', 'starter', ?, ?, ?)`, hash, fixedNow, fixedNow)
			refused(t, c.DB, err, false, 0, "SELECT COUNT(*) FROM customers WHERE company = 'Short'")
		}
		_, err := c.Bun().ExecContext(ctx, "UPDATE customers SET portal_token_hash = 'x' WHERE id = ?", c.customer.ID)
		refused(t, c.DB, err, false, 1, "SELECT COUNT(*) FROM customers WHERE portal_token_hash = ?", c.customer.PortalTokenHash)
	})
	t.Run("duplicate token hash", func(t *testing.T) {
		_, err := c.Bun().ExecContext(ctx, `INSERT INTO customers (company, contact_email, plan, portal_token_hash, token_created_at, created_at)
			VALUES ('Copy', 'copy@example.com', 'starter', ?, ?, ?)`, c.customer.PortalTokenHash, fixedNow, fixedNow)
		refused(t, c.DB, err, true, 0, "SELECT COUNT(*) FROM customers WHERE company = 'Copy'")
	})
	t.Run("lead that does not exist", func(t *testing.T) {
		_, _, err := c.CreateCustomer(ctx, nil, NewCustomer{Company: "Ghost", ContactEmail: "g@ghost.io", Plan: "starter", LeadID: ptr(int64(999))}, rand.Reader)
		refused(t, c.DB, err, false, 0, "SELECT COUNT(*) FROM customers WHERE company = 'Ghost'")
	})
}

func TestTaskConstraints(t *testing.T) {
	ctx := context.Background()
	c := mustConstraintDB(t)
	insert := func(task *Task) error {
		_, err := c.Bun().NewInsert().Model(task).Exec(ctx)
		return err
	}
	count := "SELECT COUNT(*) FROM tasks WHERE description = 'bad'"
	bad := func(mutate func(*Task)) *Task {
		task := newTask(9, c.customer.ID, TaskPending, "usd", 100, 40)
		task.Description = "bad"
		mutate(task)
		return task
	}

	for name, mutate := range map[string]func(*Task){
		"negative reward":         func(t *Task) { t.RewardCents, t.ProfitCents = -100, -140 },
		"negative cost":           func(t *Task) { t.CostCents, t.ProfitCents = -40, 140 },
		"profit not reward-cost":  func(t *Task) { t.ProfitCents = 100 },
		"profit clamped at zero":  func(t *Task) { t.CostCents, t.ProfitCents = 300, 0 },
		"status outside the set":  func(t *Task) { t.Status = "paused" },
		"running without a lease": func(t *Task) { t.Status = TaskRunning },
		"done without completion": func(t *Task) { t.Status = TaskDone },
		"upper-case currency":     func(t *Task) { t.Currency = "USD" },
	} {
		t.Run(name, func(t *testing.T) {
			refused(t, c.DB, insert(bad(mutate)), false, 0, count)
		})
	}
	t.Run("customer that does not exist", func(t *testing.T) {
		err := insert(bad(func(t *Task) { t.CustomerID = 999 }))
		refused(t, c.DB, err, false, 0, count)
	})
	t.Run("negative profit is kept", func(t *testing.T) {
		task := bad(func(t *Task) { t.CostCents, t.ProfitCents = 250, -150 })
		task.Description = "loss"
		if err := insert(task); err != nil {
			t.Fatalf("negative profit refused: %v", err)
		}
	})
	t.Run("update breaking profit", func(t *testing.T) {
		_, err := c.Bun().ExecContext(ctx, "UPDATE tasks SET reward_cents = reward_cents + 1 WHERE id = ?", c.billed.ID)
		refused(t, c.DB, err, false, 1, "SELECT COUNT(*) FROM tasks WHERE id = ? AND reward_cents = 1500", c.billed.ID)
	})
}

func TestInvoiceConstraints(t *testing.T) {
	ctx := context.Background()
	c := mustConstraintDB(t)
	invoice := func(mutate func(*Invoice)) error {
		inv := &Invoice{CustomerID: c.customer.ID, Currency: "usd", Status: InvoiceDraft, Flag: "bad",
			CreatedAt: fixedNow, UpdatedAt: fixedNow}
		mutate(inv)
		_, err := c.Bun().NewInsert().Model(inv).Exec(ctx)
		return err
	}
	count := "SELECT COUNT(*) FROM invoices WHERE flag = 'bad'"

	for name, mutate := range map[string]func(*Invoice){
		"negative amount":          func(i *Invoice) { i.AmountCents = -1 },
		"status outside the set":   func(i *Invoice) { i.Status = "overdue" },
		"open without a number":    func(i *Invoice) { i.Status = InvoiceOpen },
		"void without a number":    func(i *Invoice) { i.Status = InvoiceVoid },
		"paid without paid time":   func(i *Invoice) { i.Status, i.Number = InvoicePaid, ptr("INV-000009") },
		"customer that is missing": func(i *Invoice) { i.CustomerID = 999 },
	} {
		t.Run(name, func(t *testing.T) {
			refused(t, c.DB, invoice(mutate), false, 0, count)
		})
	}
	t.Run("duplicate number", func(t *testing.T) {
		err := invoice(func(i *Invoice) { i.Status, i.Number = InvoiceOpen, ptr("INV-000001") })
		refused(t, c.DB, err, true, 0, count)
	})
	t.Run("paid invoice moved back to open", func(t *testing.T) {
		for _, status := range []string{InvoiceOpen, InvoiceDraft} {
			_, err := c.Bun().ExecContext(ctx, "UPDATE invoices SET status = ?, paid_at = NULL WHERE id = ?", status, c.paid.ID)
			refused(t, c.DB, err, false, 1, "SELECT COUNT(*) FROM invoices WHERE id = ? AND status = 'paid' AND paid_at IS NOT NULL", c.paid.ID)
			if !strings.Contains(err.Error(), "never returns to open") {
				t.Errorf("trigger error %q does not say why", err)
			}
		}
	})
	t.Run("paid invoice may be refunded", func(t *testing.T) {
		if _, err := c.Bun().ExecContext(ctx, "UPDATE invoices SET status = 'refunded' WHERE id = ?", c.paid.ID); err != nil {
			t.Fatalf("refund refused: %v", err)
		}
		_, err := c.Bun().ExecContext(ctx, "UPDATE invoices SET status = 'open' WHERE id = ?", c.paid.ID)
		refused(t, c.DB, err, false, 1, "SELECT COUNT(*) FROM invoices WHERE id = ? AND status = 'refunded'", c.paid.ID)
	})
}

func TestInvoiceLineConstraints(t *testing.T) {
	ctx := context.Background()
	c := mustConstraintDB(t)
	line := func(invoiceID, taskID, amount int64) error {
		l := &InvoiceLine{InvoiceID: invoiceID, TaskID: taskID, Description: "bad", AmountCents: amount, CreatedAt: fixedNow}
		_, err := c.Bun().NewInsert().Model(l).Exec(ctx)
		return err
	}
	count := "SELECT COUNT(*) FROM invoice_lines WHERE description = 'bad'"

	t.Run("one task on two lines", func(t *testing.T) {
		err := line(c.paid.ID, c.billed.ID, 1500)
		refused(t, c.DB, err, true, 1, "SELECT COUNT(*) FROM invoice_lines WHERE task_id = ?", c.billed.ID)
	})
	t.Run("negative amount", func(t *testing.T) {
		refused(t, c.DB, line(c.paid.ID, c.unbilled.ID, -900), false, 0, count)
	})
	t.Run("invoice that does not exist", func(t *testing.T) {
		refused(t, c.DB, line(999, c.unbilled.ID, 900), false, 0, count)
	})
	t.Run("task that does not exist", func(t *testing.T) {
		refused(t, c.DB, line(c.open.ID, 999, 900), false, 0, count)
	})
	t.Run("billed task cannot be deleted", func(t *testing.T) {
		_, err := c.Bun().ExecContext(ctx, "DELETE FROM tasks WHERE id = ?", c.billed.ID)
		refused(t, c.DB, err, false, 1, "SELECT COUNT(*) FROM tasks WHERE id = ?", c.billed.ID)
	})
}

func TestStripeEventConstraints(t *testing.T) {
	ctx := context.Background()
	c := mustConstraintDB(t)
	err := func() error {
		_, err := c.Bun().NewInsert().Model(&StripeEvent{EventID: c.paidEvent, Type: "again", ReceivedAt: fixedNow}).Exec(ctx)
		return err
	}()
	refused(t, c.DB, err, true, 1, "SELECT COUNT(*) FROM stripe_events WHERE event_id = ?", c.paidEvent)

	_, err = c.Bun().NewInsert().Model(&StripeEvent{EventID: "evt_2", Type: "x", InvoiceID: ptr(int64(999)), ReceivedAt: fixedNow}).Exec(ctx)
	refused(t, c.DB, err, false, 0, "SELECT COUNT(*) FROM stripe_events WHERE event_id = 'evt_2'")
}
