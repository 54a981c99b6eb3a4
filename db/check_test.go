package db

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"
)

func mustCheck(t *testing.T, d *DB, now time.Time) []InvariantResult {
	t.Helper()
	results, err := d.CheckInvariants(context.Background(), now)
	if err != nil {
		t.Fatalf("CheckInvariants: %v", err)
	}
	if len(results) != 9 {
		t.Fatalf("CheckInvariants returned %d results, want 9", len(results))
	}
	for i, r := range results {
		if r.Number != i+1 || r.Name == "" {
			t.Fatalf("result %d = #%d %q", i, r.Number, r.Name)
		}
	}
	return results
}

// assertBroken asserts that invariant number reports count violations, one
// line of which contains every fragment in want, and that every other
// invariant holds.
func assertBroken(t *testing.T, results []InvariantResult, number, count int, want ...string) {
	t.Helper()
	for _, r := range results {
		if r.Number != number {
			if !r.OK() {
				t.Errorf("invariant %d (%s) also broken: %d %q", r.Number, r.Name, r.Count, r.Violations)
			}
			continue
		}
		if r.OK() || r.Count != count || len(r.Violations) != count {
			t.Fatalf("invariant %d (%s): count %d, lines %q; want %d", number, r.Name, r.Count, r.Violations, count)
		}
		if !anyLineHasAll(r.Violations, want) {
			t.Errorf("invariant %d: no violation line has all of %q: %q", number, want, r.Violations)
		}
	}
}

func anyLineHasAll(lines, fragments []string) bool {
	for _, l := range lines {
		ok := true
		for _, f := range fragments {
			ok = ok && strings.Contains(l, f)
		}
		if ok {
			return true
		}
	}
	return false
}

func mustExec(t *testing.T, db bun.IConn, query string, args ...any) {
	t.Helper()
	if _, err := db.ExecContext(context.Background(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// damaged runs fn on one dedicated connection with foreign keys and CHECK
// constraints switched off, the way another program or a hand edit could
// write the data.
//
// On SQLite the pragmas are per connection, so they are restored before the
// connection goes back to the pool. PostgreSQL cannot switch constraints off
// for a session (session_replication_role would silence the kept-totals
// triggers with them), so they are dropped for the while and added back NOT
// VALID: new rows are held to them again, the damaged rows stay, as on
// SQLite. NOT NULL is a column property on both and stays on.
func damaged(t *testing.T, d *DB, fn func(conn bun.Conn)) {
	t.Helper()
	ctx := context.Background()
	conn, err := d.Bun().Conn(ctx)
	if err != nil {
		t.Fatalf("conn: %v", err)
	}
	defer conn.Close()
	if d.Postgres() {
		drop, restore := pgLooseConstraints(t, conn)
		mustExec(t, conn, drop)
		defer mustExec(t, conn, restore)
		fn(conn)
		return
	}
	mustExec(t, conn, "PRAGMA foreign_keys = OFF")
	mustExec(t, conn, "PRAGMA ignore_check_constraints = ON")
	defer mustExec(t, conn, "PRAGMA foreign_keys = ON")
	defer mustExec(t, conn, "PRAGMA ignore_check_constraints = OFF")
	fn(conn)
}

// pgLooseConstraints is the SQL that drops every CHECK and FOREIGN KEY
// constraint of the schema and the SQL that adds them back, NOT VALID,
// each as one multi-statement text (one round trip).
func pgLooseConstraints(t *testing.T, conn bun.Conn) (drop, restore string) {
	t.Helper()
	var cons []struct {
		Tbl  string `bun:"tbl"`
		Name string `bun:"name"`
		Def  string `bun:"def"`
	}
	err := conn.NewRaw(`SELECT conrelid::regclass::text AS tbl, conname AS name, pg_get_constraintdef(oid) AS def
		  FROM pg_constraint
		 WHERE contype IN ('c', 'f') AND connamespace = current_schema()::regnamespace AND conrelid <> 0
		 ORDER BY contype, conrelid::regclass::text, conname`).Scan(context.Background(), &cons)
	if err != nil || len(cons) == 0 {
		t.Fatalf("read constraints: %d, %v", len(cons), err)
	}
	var dropSQL, addSQL strings.Builder
	for _, c := range cons {
		fmt.Fprintf(&dropSQL, "ALTER TABLE %s DROP CONSTRAINT %q;\n", c.Tbl, c.Name)
		fmt.Fprintf(&addSQL, "ALTER TABLE %s ADD CONSTRAINT %q %s NOT VALID;\n", c.Tbl, c.Name, c.Def)
	}
	return dropSQL.String(), addSQL.String()
}

// loosen rebuilds table with its UNIQUE constraint(s) matching unique
// removed (the column-level UNIQUE of SQLite cannot be dropped as an index),
// keeping its rows, as in a database created by another program. On
// PostgreSQL the UNIQUE constraints of table on the columns pgCols are
// dropped instead.
func loosen(t *testing.T, d *DB, table, unique, loose string, pgCols ...string) {
	t.Helper()
	if d.Postgres() {
		var names []string
		err := d.Bun().NewRaw(`SELECT c.conname FROM pg_constraint AS c
			  JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
			 WHERE c.contype = 'u' AND c.conrelid = ?::regclass AND cardinality(c.conkey) = 1 AND a.attname IN (?)
			 ORDER BY c.conname`, table, bun.List(pgCols)).Scan(context.Background(), &names)
		if err != nil || len(names) != len(pgCols) {
			t.Fatalf("%s: UNIQUE constraints on %v = %v, %v", table, pgCols, names, err)
		}
		for _, n := range names {
			mustExec(t, d.Bun(), fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %q", table, n))
		}
		return
	}
	var ddl string
	err := d.Bun().NewRaw("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", table).Scan(context.Background(), &ddl)
	if err != nil {
		t.Fatalf("read %s schema: %v", table, err)
	}
	if !strings.Contains(ddl, unique) {
		t.Fatalf("%s schema has no %q:\n%s", table, unique, ddl)
	}
	ddl = strings.ReplaceAll(ddl, unique, loose)
	ddl = strings.Replace(ddl, "CREATE TABLE "+table+" (", "CREATE TABLE "+table+"_loose (", 1)
	// Dropping the table drops its triggers (the kept totals and search
	// index ones among them): they are re-created on the rebuilt table.
	var triggers []string
	err = d.Bun().NewRaw("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", table).Scan(context.Background(), &triggers)
	if err != nil {
		t.Fatalf("read %s triggers: %v", table, err)
	}
	damaged(t, d, func(conn bun.Conn) {
		mustExec(t, conn, ddl)
		mustExec(t, conn, fmt.Sprintf("INSERT INTO %s_loose SELECT * FROM %s", table, table))
		mustExec(t, conn, "DROP TABLE "+table)
		// The view kept_totals_expected names the table: the legacy rename
		// leaves views alone instead of refusing while the name is free.
		mustExec(t, conn, "PRAGMA legacy_alter_table = ON")
		mustExec(t, conn, fmt.Sprintf("ALTER TABLE %s_loose RENAME TO %s", table, table))
		mustExec(t, conn, "PRAGMA legacy_alter_table = OFF")
		for _, trigger := range triggers {
			mustExec(t, conn, trigger)
		}
	})
	// The rebuilt table still has its foreign keys and checks.
	if n := countRows(t, d, "SELECT COUNT(*) FROM pragma_foreign_key_check"); n != 0 {
		t.Fatalf("rebuilding %s left %d dangling references", table, n)
	}
}

func insert(t *testing.T, db bun.IDB, models ...any) {
	t.Helper()
	for _, m := range models {
		if _, err := db.NewInsert().Model(m).Exec(context.Background()); err != nil {
			t.Fatalf("insert %T: %v", m, err)
		}
	}
}

// draftBilling is a draft invoice of customer billing tasks, with amount
// equal to the lines, so that only the invariant under test breaks.
func draftBilling(t *testing.T, db bun.IDB, customerID int64, amounts []int64, tasks ...*Task) *Invoice {
	t.Helper()
	inv := &Invoice{CustomerID: customerID, Currency: tasks[0].Currency, Status: InvoiceDraft, CreatedAt: fixedNow, UpdatedAt: fixedNow}
	for _, a := range amounts {
		inv.AmountCents += a
	}
	insert(t, db, inv)
	for i, task := range tasks {
		insert(t, db, &InvoiceLine{InvoiceID: inv.ID, TaskID: task.ID, AmountCents: amounts[i], CreatedAt: fixedNow})
	}
	return inv
}

func TestCheckCleanDatabase(t *testing.T) {
	d := mustOpen(t)
	seed(t, d)
	for _, r := range mustCheck(t, d, fixedNow) {
		if !r.OK() || len(r.Violations) != 0 {
			t.Errorf("invariant %d (%s) broken on a clean store: %q", r.Number, r.Name, r.Violations)
		}
	}
	// The checker opens the database without migrating it (read only) and
	// reaches the same verdict.
	d.Close()
	existing, err := OpenExisting(context.Background(), d.Path())
	if d.Postgres() {
		existing, err = OpenPostgresExisting(context.Background(), d.url.String())
	}
	if err != nil {
		t.Fatalf("OpenExisting: %v", err)
	}
	defer existing.Close()
	for _, r := range mustCheck(t, existing, fixedNow) {
		if !r.OK() {
			t.Errorf("invariant %d broken after reopening: %q", r.Number, r.Violations)
		}
	}
}

func TestCheckEmptyDatabase(t *testing.T) {
	for _, r := range mustCheck(t, mustOpen(t), fixedNow) {
		if !r.OK() {
			t.Errorf("invariant %d broken on an empty store: %q", r.Number, r.Violations)
		}
	}
}

func TestCheckInvariant1TaskOnTwoLines(t *testing.T) {
	d := mustOpen(t)
	f := seed(t, d)
	loosen(t, d, "invoice_lines", "INTEGER NOT NULL UNIQUE", "INTEGER NOT NULL", "task_id")
	u1 := f.doneUSD[0]
	inv := draftBilling(t, d.Bun(), u1.CustomerID, []int64{u1.RewardCents}, u1)
	assertBroken(t, mustCheck(t, d, fixedNow), 1, 1,
		fmt.Sprintf("task %d is on 2 lines", u1.ID), fmt.Sprint(f.invoices[0].ID), fmt.Sprint(inv.ID))
}

func TestCheckInvariant2AmountEqualsLines(t *testing.T) {
	d := mustOpen(t)
	f := seed(t, d)
	inv := f.invoices[4] // INV-000001, one line of 1000
	mustExec(t, d.Bun(), "UPDATE invoices SET amount_cents = amount_cents + 1 WHERE id = ?", inv.ID)
	// An invoice with lines but no amount, and one with an amount but no lines.
	empty := &Invoice{CustomerID: inv.CustomerID, Currency: "usd", AmountCents: 700, Status: InvoiceDraft, CreatedAt: fixedNow, UpdatedAt: fixedNow}
	insert(t, d.Bun(), empty)
	assertBroken(t, mustCheck(t, d, fixedNow), 2, 2,
		fmt.Sprintf("invoice %d (INV-000001) amount 1001 but lines sum to 1000", inv.ID))
	assertBroken(t, mustCheck(t, d, fixedNow), 2, 2,
		fmt.Sprintf("invoice %d (draft) amount 700 but lines sum to 0", empty.ID))
}

func TestCheckInvariant3NoDoneTaskLost(t *testing.T) {
	t.Run("line bills a task that is not done", func(t *testing.T) {
		d := mustOpen(t)
		f := seed(t, d)
		p := f.pending[0]
		inv := draftBilling(t, d.Bun(), p.CustomerID, []int64{p.RewardCents}, p)
		assertBroken(t, mustCheck(t, d, fixedNow), 3, 1, fmt.Sprintf("task %d is billed on invoice %d but is pending", p.ID, inv.ID))
	})
	t.Run("line amount differs from the reward", func(t *testing.T) {
		d := mustOpen(t)
		f := seed(t, d)
		u5, inv := f.doneUSD[4], f.invoices[4]
		mustExec(t, d.Bun(), "UPDATE invoice_lines SET amount_cents = 999 WHERE task_id = ?", u5.ID)
		mustExec(t, d.Bun(), "UPDATE invoices SET amount_cents = 999 WHERE id = ?", inv.ID)
		assertBroken(t, mustCheck(t, d, fixedNow), 3, 1, fmt.Sprintf("task %d reward 1000 is billed as 999", u5.ID))
	})
	t.Run("unbilled done task without completion time", func(t *testing.T) {
		d := mustOpen(t)
		f := seed(t, d)
		u28 := f.doneUSD[27]
		damaged(t, d, func(conn bun.Conn) {
			mustExec(t, conn, "UPDATE tasks SET completed_at = NULL WHERE id = ?", u28.ID)
		})
		assertBroken(t, mustCheck(t, d, fixedNow), 3, 1, fmt.Sprintf("done task %d is unbilled and has no completion time", u28.ID))
	})
	t.Run("done task of a missing customer", func(t *testing.T) {
		d := mustOpen(t)
		seed(t, d)
		orphan := newTask(99, 9999, TaskDone, "usd", 100, 0)
		damaged(t, d, func(conn bun.Conn) { insert(t, conn, orphan) })
		assertBroken(t, mustCheck(t, d, fixedNow), 3, 1, fmt.Sprintf("done task %d belongs to missing customer 9999", orphan.ID))
	})
}

func TestCheckInvariant4LivePortalToken(t *testing.T) {
	t.Run("revoked token of an active customer", func(t *testing.T) {
		d := mustOpen(t)
		f := seed(t, d)
		c := f.customers[3]
		mustExec(t, d.Bun(), "UPDATE customers SET token_revoked_at = ? WHERE id = ?", fixedNow, c.ID)
		assertBroken(t, mustCheck(t, d, fixedNow), 4, 1, fmt.Sprintf("customer %d (Customer 03) has no live portal token", c.ID))
	})
	t.Run("malformed hash", func(t *testing.T) {
		d := mustOpen(t)
		f := seed(t, d)
		damaged(t, d, func(conn bun.Conn) {
			mustExec(t, conn, "UPDATE customers SET portal_token_hash = 'short' WHERE id = ?", f.customers[5].ID)
			mustExec(t, conn, "UPDATE customers SET portal_token_hash = upper(portal_token_hash) WHERE id = ?", f.customers[21].ID)
		})
		assertBroken(t, mustCheck(t, d, fixedNow), 4, 2, "(Customer 05)")
		assertBroken(t, mustCheck(t, d, fixedNow), 4, 2, "(Customer 21)")
	})
}

func TestCheckInvariant5LeadDuplicates(t *testing.T) {
	t.Run("same e-mail and same domain", func(t *testing.T) {
		d := mustOpen(t)
		f := seed(t, d)
		loosen(t, d, "leads", "TEXT UNIQUE CHECK", "TEXT CHECK", "email", "domain_key")
		l1, l2 := f.leads[0], f.leads[1]
		dupEmail := &Lead{Email: l1.Email, DomainKey: ptr("elsewhere.com"), Company: "Copy", Source: "import", Status: LeadNew, CreatedAt: fixedNow, UpdatedAt: fixedNow}
		dupDomain := &Lead{Email: ptr("other@company02.com"), DomainKey: l2.DomainKey, Company: "Copy", Source: "import", Status: LeadNew, CreatedAt: fixedNow, UpdatedAt: fixedNow}
		insert(t, d.Bun(), dupEmail, dupDomain)
		results := mustCheck(t, d, fixedNow)
		assertBroken(t, results, 5, 2, "lead e-mail contact01@company01.com appears 2 times", fmt.Sprintf("%d", dupEmail.ID))
		assertBroken(t, results, 5, 2, "company domain company02.com appears 2 times", fmt.Sprintf("%d", dupDomain.ID))
	})
	t.Run("e-mail differing only by case", func(t *testing.T) {
		// The unique index compares bytes; with the lower-case CHECK off, a
		// second spelling of the same address gets in.
		d := mustOpen(t)
		seed(t, d)
		damaged(t, d, func(conn bun.Conn) {
			mustExec(t, conn, `INSERT INTO leads (email, domain_key, company, source, created_at, updated_at)
				VALUES ('Contact03@Company03.com', 'Company03.com', 'Copy', 'import', ?, ?)`, fixedNow, fixedNow)
		})
		results := mustCheck(t, d, fixedNow)
		assertBroken(t, results, 5, 2, "lead e-mail contact03@company03.com appears 2 times")
		assertBroken(t, results, 5, 2, "company domain company03.com appears 2 times")
	})
}

func TestCheckInvariant6RunningPastLease(t *testing.T) {
	t.Run("expired lease", func(t *testing.T) {
		d := mustOpen(t)
		f := seed(t, d)
		r := f.running[2]
		mustExec(t, d.Bun(), "UPDATE tasks SET lease_expires_at = ? WHERE id = ?", fixedNow.Add(-time.Second), r.ID)
		assertBroken(t, mustCheck(t, d, fixedNow), 6, 1, fmt.Sprintf("task %d is running with a lease that expired at 2025-03-14 11:59:59", r.ID))
	})
	t.Run("leases are judged at the given time", func(t *testing.T) {
		d := mustOpen(t)
		seed(t, d)
		// Every seeded lease ends 10 minutes after fixedNow.
		for _, r := range mustCheck(t, d, fixedNow.Add(9*time.Minute)) {
			if !r.OK() {
				t.Errorf("invariant %d broken before the leases end: %q", r.Number, r.Violations)
			}
		}
		assertBroken(t, mustCheck(t, d, fixedNow.Add(11*time.Minute)), 6, 6, "a lease that expired at")
		// A time in another zone is the same instant.
		assertBroken(t, mustCheck(t, d, fixedNow.Add(11*time.Minute).In(time.FixedZone("X", -7*3600))), 6, 6)
	})
	t.Run("running without a lease", func(t *testing.T) {
		d := mustOpen(t)
		f := seed(t, d)
		damaged(t, d, func(conn bun.Conn) {
			mustExec(t, conn, "UPDATE tasks SET lease_expires_at = NULL WHERE id = ?", f.running[0].ID)
		})
		assertBroken(t, mustCheck(t, d, fixedNow), 6, 1, fmt.Sprintf("task %d is running with no lease", f.running[0].ID))
	})
}

// dropPaidGuard drops the trigger that keeps a paid invoice from returning
// to open (PostgreSQL names a trigger per table).
func dropPaidGuard(t *testing.T, d *DB) {
	t.Helper()
	if d.Postgres() {
		mustExec(t, d.Bun(), "DROP TRIGGER invoices_paid_is_final ON invoices")
		return
	}
	mustExec(t, d.Bun(), "DROP TRIGGER invoices_paid_is_final")
}

func TestCheckInvariant7PaidIsFinal(t *testing.T) {
	t.Run("open invoice with paid time", func(t *testing.T) {
		d := mustOpen(t)
		f := seed(t, d)
		inv := f.invoices[9] // open, INV-000006
		mustExec(t, d.Bun(), "UPDATE invoices SET paid_at = ? WHERE id = ?", fixedNow, inv.ID)
		assertBroken(t, mustCheck(t, d, fixedNow), 7, 1, fmt.Sprintf("invoice %d (INV-000006) was paid at", inv.ID), "but is open")
	})
	t.Run("missing trigger", func(t *testing.T) {
		d := mustOpen(t)
		seed(t, d)
		dropPaidGuard(t, d)
		assertBroken(t, mustCheck(t, d, fixedNow), 7, 1, "invoices_paid_is_final is missing")
	})
	t.Run("paid invoice moved back to open without the trigger", func(t *testing.T) {
		d := mustOpen(t)
		f := seed(t, d)
		inv := f.invoices[12] // paid, INV-000009
		dropPaidGuard(t, d)
		mustExec(t, d.Bun(), "UPDATE invoices SET status = 'open' WHERE id = ?", inv.ID)
		results := mustCheck(t, d, fixedNow)
		assertBroken(t, results, 7, 2, fmt.Sprintf("invoice %d (INV-000009) was paid at", inv.ID), "but is open")
		assertBroken(t, results, 7, 2, "missing")
	})
}

func TestCheckInvariant8StripeEventOnce(t *testing.T) {
	d := mustOpen(t)
	f := seed(t, d)
	loosen(t, d, "stripe_events", "TEXT NOT NULL UNIQUE", "TEXT NOT NULL", "event_id")
	again := &StripeEvent{EventID: f.events[1].EventID, Type: "checkout.session.completed", Outcome: "paid", ReceivedAt: fixedNow}
	insert(t, d.Bun(), again)
	assertBroken(t, mustCheck(t, d, fixedNow), 8, 1, "Stripe event evt_fixture_1 recorded 2 times")
}

func TestCheckManyViolationsAreCountedButCapped(t *testing.T) {
	d := mustOpen(t)
	seed(t, d)
	// 30 invoices with a wrong amount each, plus 30 more added empty.
	mustExec(t, d.Bun(), "UPDATE invoices SET amount_cents = amount_cents + 1")
	for range 30 {
		mustExec(t, d.Bun(), "INSERT INTO invoices (customer_id, currency, amount_cents, created_at, updated_at) VALUES (1, 'usd', 5, ?, ?)", fixedNow, fixedNow)
	}
	r := mustCheck(t, d, fixedNow)[1]
	if r.Count != 60 || len(r.Violations) != maxViolationsShown {
		t.Fatalf("invariant 2: count %d, %d lines; want 60 and %d", r.Count, len(r.Violations), maxViolationsShown)
	}
}
