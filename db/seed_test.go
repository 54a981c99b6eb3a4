package db

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// smallSeed is big enough that every status and share shows up.
var smallSeed = SeedSizes{Leads: 400, Customers: 40, Tasks: 600, Invoices: 90, Seed: 7}

// A seed writes what it was asked for, and every invariant holds on it.
func TestSeedWritesConsistentData(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	rep, err := d.Seed(ctx, smallSeed)
	if err != nil {
		t.Fatalf("Seed: %v", err)
	}
	results, err := d.CheckInvariants(ctx, SeedEpoch)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if !r.OK() {
			t.Errorf("invariant %d (%s) violated %d times: %v", r.Number, r.Name, r.Count, r.Violations)
		}
	}
	counts := map[string]int{
		"SELECT COUNT(*) FROM leads":                            smallSeed.Leads,
		"SELECT COUNT(*) FROM customers":                        smallSeed.Customers,
		"SELECT COUNT(*) FROM tasks":                            smallSeed.Tasks,
		"SELECT COUNT(*) FROM invoices":                         smallSeed.Invoices,
		"SELECT COUNT(*) FROM leads WHERE status = 'converted'": smallSeed.Customers,
		"SELECT COUNT(*) FROM tasks WHERE status = 'running'":   0,
		// seeded leads take part in the website dedupe like any other
		"SELECT COUNT(*) FROM leads WHERE website_key IS NULL":                    0,
		"SELECT COUNT(*) FROM invoice_lines":                                      rep.InvoiceLines,
		"SELECT COUNT(*) FROM messages":                                           rep.Messages,
		"SELECT COUNT(*) FROM tasks WHERE status = 'done'":                        rep.DoneTasks,
		"SELECT COUNT(*) FROM invoices WHERE status = 'paid'":                     rep.PaidInvoices,
		"SELECT COUNT(*) FROM invoices WHERE paid_at IS NULL AND status = 'paid'": 0,
		// every invoice has a line, and numbers run 1..n without a gap
		"SELECT COUNT(*) FROM invoices AS i WHERE NOT EXISTS (SELECT 1 FROM invoice_lines WHERE invoice_id = i.id)":                                                     0,
		"SELECT COUNT(*) FROM invoices WHERE number <> " + invoiceNumberSQL("id"):                                                                                       0,
		"SELECT COUNT(*) FROM invoice_lines AS il JOIN invoices AS i ON i.id = il.invoice_id JOIN tasks AS t ON t.id = il.task_id WHERE t.customer_id <> i.customer_id": 0,
		"SELECT COUNT(*) FROM invoices WHERE due_at <> " + plusDaysSQL("issued_at", 14):                                                                                 0,
		"SELECT COUNT(*) FROM customers AS c JOIN leads AS l ON l.id = c.lead_id WHERE l.status = 'converted' AND l.email = c.contact_email":                            smallSeed.Customers,
		"SELECT COUNT(*) FROM tasks WHERE profit_cents <> reward_cents - cost_cents OR currency <> 'usd'":                                                               0,
	}
	for q, want := range counts {
		if got := countRows(t, d, q); got != want {
			t.Errorf("%s = %d, want %d", q, got, want)
		}
	}
	// Realistic mixes: some of each, without asserting exact shares.
	for _, q := range []string{
		"SELECT COUNT(*) FROM tasks WHERE status = 'pending'",
		"SELECT COUNT(*) FROM tasks WHERE status = 'failed'",
		"SELECT COUNT(*) FROM invoices WHERE status = 'open' AND due_at < '" + seedTime(SeedEpoch) + "'",
		"SELECT COUNT(*) FROM invoices WHERE status = 'open' AND due_at >= '" + seedTime(SeedEpoch) + "'",
		"SELECT COUNT(*) FROM tasks AS t WHERE status = 'done' AND NOT EXISTS (SELECT 1 FROM invoice_lines WHERE task_id = t.id)",
		"SELECT COUNT(*) FROM leads WHERE status = 'new'",
		"SELECT COUNT(*) FROM leads WHERE status = 'dead'",
		"SELECT COUNT(*) FROM messages WHERE status = 'dry_run' AND sent_at IS NOT NULL",
		"SELECT COUNT(*) FROM messages WHERE status = 'sent' AND sent_at IS NOT NULL",
	} {
		if got := countRows(t, d, q); got == 0 {
			t.Errorf("%s = 0, want some", q)
		}
	}
	if got := countRows(t, d, "SELECT value FROM counters WHERE name = ?", InvoiceCounter); got != smallSeed.Invoices {
		t.Errorf("invoice counter = %d, want %d", got, smallSeed.Invoices)
	}
	if max := countRows(t, d, "SELECT COUNT(*) FROM leads WHERE created_at > ? OR updated_at > ?", seedTime(SeedEpoch), seedTime(SeedEpoch)); max != 0 {
		t.Errorf("%d leads lie after the seed's now", max)
	}

	// The app's next rows take ids after the seeded ones (PostgreSQL's
	// identity sequences were moved past them).
	next, err := d.CreateLead(ctx, nil, NewLead{Email: "after@seed.example", Company: "After", Source: "test"})
	if err != nil || next.ID != int64(smallSeed.Leads)+1 {
		t.Fatalf("lead created after the seed: %+v, %v; want id %d", next, err, smallSeed.Leads+1)
	}

	// The printed portal token opens the first customer's portal, and the
	// store reads seeded rows back like its own.
	c, err := d.CustomerByPortalToken(ctx, rep.PortalToken)
	if err != nil || c.ID != 1 {
		t.Fatalf("portal token of the report: customer %+v, %v", c, err)
	}
	if c.CreatedAt.IsZero() || c.CreatedAt.After(SeedEpoch) {
		t.Errorf("customer 1 created at %v", c.CreatedAt)
	}
	invoices, _, err := d.ListInvoices(ctx, ListQuery{})
	if err != nil || len(invoices) == 0 {
		t.Fatalf("ListInvoices: %d rows, %v", len(invoices), err)
	}
	if rep.Leads != smallSeed.Leads || rep.Customers != smallSeed.Customers || rep.Tasks != smallSeed.Tasks || rep.Invoices != smallSeed.Invoices {
		t.Errorf("report %+v does not match %+v", rep, smallSeed)
	}
	if !strings.HasPrefix(rep.String(), "seeded 400 leads") {
		t.Errorf("report line %q", rep.String())
	}
}

// A database that already holds business data is never seeded, and the
// refusal changes nothing.
func TestSeedRefusesADatabaseWithData(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	if _, err := d.Seed(ctx, SeedSizes{Leads: 20, Customers: 2, Tasks: 10, Invoices: 1}); err != nil {
		t.Fatal(err)
	}
	_, err := d.Seed(ctx, SeedSizes{Leads: 20, Customers: 2, Tasks: 10, Invoices: 1})
	if !errors.Is(err, ErrSeedRefused) || !strings.Contains(err.Error(), "leads: 20") {
		t.Fatalf("second seed: %v, want ErrSeedRefused naming the leads", err)
	}
	if n := countRows(t, d, "SELECT COUNT(*) FROM leads"); n != 20 {
		t.Errorf("refused seed left %d leads, want 20", n)
	}

	// Invoice numbers handed out count as data even without invoices.
	d2 := mustOpen(t)
	if _, err := d2.Bun().ExecContext(ctx, "INSERT INTO counters (name, value) VALUES (?, 3)", InvoiceCounter); err != nil {
		t.Fatal(err)
	}
	if _, err := d2.Seed(ctx, SeedSizes{Leads: 1}); !errors.Is(err, ErrSeedRefused) {
		t.Errorf("seed over issued invoice numbers: %v", err)
	}
}

// Sizes that cannot be seeded are refused before anything is written.
func TestSeedValidatesSizes(t *testing.T) {
	for _, s := range []SeedSizes{
		{Leads: -1},
		{Leads: 5, Customers: 6},
		{Leads: 5, Tasks: 3},
		{Leads: 5, Customers: 1, Tasks: 3, Invoices: 4},
	} {
		if err := s.Validate(); err == nil {
			t.Errorf("%+v: no error", s)
		}
	}
	// More invoices than done tasks is found once the tasks are drawn.
	d := mustOpen(t)
	_, err := d.Seed(context.Background(), SeedSizes{Leads: 5, Customers: 1, Tasks: 3, Invoices: 3, Now: SeedEpoch})
	if err != nil && !strings.Contains(err.Error(), "done tasks") {
		t.Errorf("unexpected error: %v", err)
	}
	if err != nil && countRows(t, d, "SELECT COUNT(*) FROM leads") != 0 {
		t.Error("a failed seed wrote leads")
	}
}

// The same sizes and seed write the same rows; another seed writes others.
func TestSeedIsDeterministic(t *testing.T) {
	ctx := context.Background()
	digests := make([]map[string]string, 3)
	for i, s := range []uint64{smallSeed.Seed, smallSeed.Seed, smallSeed.Seed + 1} {
		d := mustOpen(t)
		sizes := smallSeed
		sizes.Seed = s
		if _, err := d.Seed(ctx, sizes); err != nil {
			t.Fatal(err)
		}
		digests[i] = map[string]string{}
		for _, table := range append(seedGuardTables, "counters") {
			digests[i][table] = tableDigest(t, d, table)
		}
	}
	for table, want := range digests[0] {
		if got := digests[1][table]; got != want {
			t.Errorf("%s differs between two seeds of the same size and seed", table)
		}
	}
	if digests[2]["leads"] == digests[0]["leads"] || digests[2]["tasks"] == digests[0]["tasks"] {
		t.Error("another seed wrote the same leads or tasks")
	}
}

// invoiceNumberSQL is the invoice number of id in SQL ("INV-000042").
func invoiceNumberSQL(id string) string {
	if testOnPostgres() {
		return "'INV-' || lpad(" + id + "::text, 6, '0')"
	}
	return "printf('INV-%06d', " + id + ")"
}

// plusDaysSQL is the stored time col plus days, in SQL: SQLite's text in
// bun's layout, PostgreSQL's timestamptz arithmetic.
func plusDaysSQL(col string, days int) string {
	if testOnPostgres() {
		return fmt.Sprintf("%s + interval '%d days'", col, days)
	}
	return fmt.Sprintf("strftime('%%Y-%%m-%%d %%H:%%M:%%S+00:00', %s, '+%d days')", col, days)
}

// tableDigest is the SHA-256 of every row of table, in key order.
func tableDigest(t *testing.T, d *DB, table string) string {
	t.Helper()
	order := "id"
	if table == "counters" {
		order = "name"
	}
	rows, err := d.Bun().QueryContext(context.Background(), "SELECT * FROM "+table+" ORDER BY "+order)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n := 0
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			if tm, ok := v.(time.Time); ok {
				v = tm.UTC().Format(time.RFC3339Nano)
			}
			fmt.Fprintf(h, "%T:%v|", v, v)
		}
		h.Write([]byte("\n"))
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d rows %s", n, hex.EncodeToString(h.Sum(nil)))
}
