package db

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The kept totals on both dialects: the same statements, raw SQL that both
// SQLite and PostgreSQL accept (so only the triggers can keep the totals),
// run on a fresh database of each. After every batch each database's
// kept_totals must equal its kept_totals_expected, and at the end the two
// databases must agree with each other: same statements applied or refused,
// same rows changed, same totals (the due-day labels included).

// keptKey is one kept total's identity.
type keptKey struct{ metric, label, currency string }

// keptRows reads a relation shaped like kept_totals. The sums are compared
// in Go rather than with KeptTotalsDrift, so this test depends on nothing
// but the two relations the migrations define.
func keptRows(t *testing.T, d *DB, relation string) map[keptKey][2]int64 {
	t.Helper()
	rows, err := d.Bun().QueryContext(context.Background(), "SELECT metric, label, currency, n, cents FROM "+relation)
	if err != nil {
		t.Fatalf("read %s: %v", relation, err)
	}
	defer rows.Close()
	out := map[keptKey][2]int64{}
	for rows.Next() {
		var k keptKey
		var n, cents int64
		if err := rows.Scan(&k.metric, &k.label, &k.currency, &n, &cents); err != nil {
			t.Fatalf("read %s: %v", relation, err)
		}
		if _, dup := out[k]; dup {
			t.Fatalf("%s holds %v twice", relation, k)
		}
		out[k] = [2]int64{n, cents}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read %s: %v", relation, err)
	}
	return out
}

// keptDiff lists how two sets of kept totals differ, one line per total.
func keptDiff(aName string, a map[keptKey][2]int64, bName string, b map[keptKey][2]int64) []string {
	var out []string
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(x, y keptKey) int {
		return strings.Compare(x.metric+"\x00"+x.label+"\x00"+x.currency, y.metric+"\x00"+y.label+"\x00"+y.currency)
	})
	for _, k := range keys {
		av, aok := a[k]
		bv, bok := b[k]
		if aok && bok && av == bv {
			continue
		}
		show := func(v [2]int64, ok bool) string {
			if !ok {
				return "no row"
			}
			return fmt.Sprintf("n=%d cents=%d", v[0], v[1])
		}
		out = append(out, fmt.Sprintf("%s/%s/%s: %s %s, %s %s", k.metric, k.label, k.currency, aName, show(av, aok), bName, show(bv, bok)))
	}
	return out
}

// keptMixBase is the starting data: every table with kept totals, ids
// given (so both dialects number every row alike), times in UTC.
func keptMixBase() []string {
	const at = "'2025-03-14 10:00:00+00:00'"
	var q []string
	leadStatus := []string{"new", "contacted", "responded", "converted", "bounced"}
	for i := 1; i <= 30; i++ {
		q = append(q, fmt.Sprintf(`INSERT INTO leads (id, name, email, company, source, status, created_at, updated_at)
			VALUES (%d, 'Lead %d', 'l%d@co%d.example', 'Co %d', 'test', '%s', %s, %s)`, i, i, i, i, i, leadStatus[i%len(leadStatus)], at, at))
	}
	for i := 1; i <= 10; i++ {
		q = append(q, fmt.Sprintf(`INSERT INTO customers (id, company, contact_email, plan, status, portal_token_hash, token_created_at, created_at)
			VALUES (%d, 'Customer %d', 'c%d@cust.example', 'starter', '%s', '%064d', %s, %s)`, i, i, i, []string{"active", "paused"}[i%2], i, at, at))
	}
	taskStatus := []string{"pending", "running", "done", "done", "failed"}
	for i := 1; i <= 40; i++ {
		reward, cost := 100*i, 30*(i%7)
		q = append(q, fmt.Sprintf(`INSERT INTO tasks (id, customer_id, kind, status, currency, reward_cents, cost_cents, profit_cents,
				lease_expires_at, completed_at, created_at, updated_at)
			VALUES (%d, %d, 'audit', '%s', '%s', %d, %d, %d, %s, %s, %s, %s)`,
			i, 1+i%10, taskStatus[i%len(taskStatus)], []string{"usd", "eur"}[i%2], reward, cost, reward-cost, at, at, at, at))
	}
	invStatus := []string{"draft", "open", "open", "paid", "void", "refunded"}
	for i := 1; i <= 20; i++ {
		// Due days cross UTC midnight: 23:30 and 00:30 are different days.
		due := fmt.Sprintf("'2025-03-%02d %s+00:00'", 10+i%5, []string{"23:30:00", "00:30:00"}[i%2])
		if i%6 == 0 {
			due = "NULL"
		}
		q = append(q, fmt.Sprintf(`INSERT INTO invoices (id, customer_id, number, currency, amount_cents, status, due_at, paid_at, created_at, updated_at)
			VALUES (%d, %d, 'INV-%06d', '%s', %d, '%s', %s, %s, %s, %s)`,
			i, 1+i%10, i, []string{"usd", "eur"}[i%2], 250*i, invStatus[i%len(invStatus)], due, at, at, at))
	}
	for i := 1; i <= 15; i++ {
		q = append(q, fmt.Sprintf(`INSERT INTO invoice_lines (id, invoice_id, task_id, amount_cents, created_at) VALUES (%d, %d, %d, %d, %s)`,
			i, 1+i%20, i, 100*i, at))
	}
	msgStatus := []string{"queued", "sending", "sent", "dry_run", "failed", "suppressed"}
	for i := 1; i <= 20; i++ {
		q = append(q, fmt.Sprintf(`INSERT INTO messages (id, lead_id, to_addr, template, subject, body, status, needs_review, created_at, updated_at)
			VALUES (%d, %d, 'l%d@co.example', 't', 's', 'b', '%s', %s, %s, %s)`,
			i, 1+i%30, i, msgStatus[i%len(msgStatus)], []string{"FALSE", "TRUE"}[i%3/2], at, at))
	}
	for i := 1; i <= 10; i++ {
		q = append(q, fmt.Sprintf(`INSERT INTO agent_runs (id, agent, trigger, started_at, outcome) VALUES (%d, '%s', 'manual', %s, '%s')`,
			i, []string{"bizdev", "billing"}[i%2], at, []string{"ok", "failed", "running"}[i%3]))
		q = append(q, fmt.Sprintf(`INSERT INTO audit_log (id, actor, action, created_at) VALUES (%d, 'admin', 'test', %s)`, i, at))
	}
	for i := 1; i <= 5; i++ {
		q = append(q, fmt.Sprintf(`INSERT INTO suppressions (id, kind, value, reason, created_at) VALUES (%d, 'address', 's%d@x.example', '%s', %s)`,
			i, i, []string{"bounced", "manual"}[i%2], at))
		q = append(q, fmt.Sprintf(`INSERT INTO reply_sortings (id, model, class, cost_cents, currency, created_at) VALUES (%d, 'm', 'other', %d, '%s', %s)`,
			i, i, []string{"usd", "eur"}[i%2], at))
	}
	return q
}

// keptMixChanges is a deterministic sequence of raw changes to the base
// data: single-row and multi-row updates, inserts and deletes. Some are
// refused (a foreign key, a UNIQUE index, the paid-invoice guard), alike on
// both dialects.
func keptMixChanges(n int) []string {
	r := rand.New(rand.NewPCG(14, 2026))
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	nextID := 1000
	newID := func() int { nextID++; return nextID }
	const at = "'2025-03-14 11:00:00+00:00'"
	due := func() string {
		if r.IntN(5) == 0 {
			return "NULL"
		}
		return fmt.Sprintf("'2025-03-%02d %s+00:00'", 10+r.IntN(6), pick("00:00:00", "12:00:00", "23:59:59"))
	}
	gens := []func() string{
		// tasks
		func() string {
			return fmt.Sprintf("UPDATE tasks SET status = '%s' WHERE id = %d", pick("pending", "running", "done", "failed"), 1+r.IntN(45))
		},
		func() string {
			return fmt.Sprintf("UPDATE tasks SET status = '%s' WHERE id %% 7 = %d", pick("done", "failed"), r.IntN(7))
		},
		func() string {
			return fmt.Sprintf("UPDATE tasks SET reward_cents = %[1]d, profit_cents = %[1]d - cost_cents WHERE id = %[2]d", r.IntN(9000), 1+r.IntN(45))
		},
		func() string {
			return fmt.Sprintf("UPDATE tasks SET cost_cents = %[1]d, profit_cents = reward_cents - %[1]d WHERE id = %[2]d", r.IntN(4000), 1+r.IntN(45))
		},
		func() string {
			return fmt.Sprintf("UPDATE tasks SET currency = '%s' WHERE id = %d", pick("usd", "eur", "gbp"), 1+r.IntN(45))
		},
		func() string {
			return fmt.Sprintf(`INSERT INTO tasks (id, customer_id, kind, status, currency, reward_cents, cost_cents, profit_cents,
					lease_expires_at, completed_at, created_at, updated_at)
				VALUES (%d, %d, 'audit', '%s', 'usd', 700, 200, 500, %s, %s, %s, %s)`, newID(), 1+r.IntN(10), pick("done", "pending"), at, at, at, at)
		},
		func() string { return fmt.Sprintf("DELETE FROM tasks WHERE id = %d", 1+r.IntN(45)) },
		// invoices
		func() string {
			return fmt.Sprintf("UPDATE invoices SET status = '%s' WHERE id = %d", pick("draft", "open", "paid", "void", "refunded"), 1+r.IntN(25))
		},
		func() string {
			return fmt.Sprintf("UPDATE invoices SET status = 'paid', paid_at = %s WHERE status = 'open' AND id %% 4 = %d", at, r.IntN(4))
		},
		func() string {
			return fmt.Sprintf("UPDATE invoices SET amount_cents = %d, currency = '%s' WHERE id = %d", r.IntN(9000), pick("usd", "eur"), 1+r.IntN(25))
		},
		func() string {
			return fmt.Sprintf("UPDATE invoices SET due_at = %s WHERE id = %d", due(), 1+r.IntN(25))
		},
		func() string {
			id := newID()
			return fmt.Sprintf(`INSERT INTO invoices (id, customer_id, number, currency, amount_cents, status, due_at, paid_at, created_at, updated_at)
				VALUES (%d, %d, 'INV-%06d', 'usd', %d, '%s', %s, %s, %s, %s)`, id, 1+r.IntN(10), id, r.IntN(5000), pick("open", "paid", "draft"), due(), at, at, at)
		},
		func() string { return fmt.Sprintf("DELETE FROM invoices WHERE id = %d", 1+r.IntN(25)) },
		// invoice lines
		func() string {
			return fmt.Sprintf(`INSERT INTO invoice_lines (id, invoice_id, task_id, amount_cents, created_at) VALUES (%d, %d, %d, 100, %s)`,
				newID(), 1+r.IntN(25), 1+r.IntN(45), at)
		},
		func() string {
			return fmt.Sprintf("UPDATE invoice_lines SET task_id = %d WHERE id = %d", 1+r.IntN(45), 1+r.IntN(15))
		},
		func() string {
			return fmt.Sprintf("UPDATE invoice_lines SET invoice_id = %d WHERE id = %d", 1+r.IntN(25), 1+r.IntN(15))
		},
		func() string { return fmt.Sprintf("DELETE FROM invoice_lines WHERE invoice_id = %d", 1+r.IntN(25)) },
		// leads, customers
		func() string {
			return fmt.Sprintf("UPDATE leads SET status = '%s' WHERE id = %d", pick(LeadStatuses...), 1+r.IntN(32))
		},
		func() string {
			id := newID()
			return fmt.Sprintf(`INSERT INTO leads (id, email, company, source, status, created_at, updated_at)
				VALUES (%d, 'n%d@new.example', 'New %d', 'test', '%s', %s, %s)`, id, id, id, pick(LeadStatuses...), at, at)
		},
		func() string { return fmt.Sprintf("DELETE FROM leads WHERE id = %d", 1+r.IntN(32)) },
		func() string {
			return fmt.Sprintf("UPDATE customers SET status = '%s' WHERE id = %d", pick("active", "paused", "closed"), 1+r.IntN(10))
		},
		// messages
		func() string {
			return fmt.Sprintf("UPDATE messages SET status = '%s', needs_review = %s WHERE id = %d",
				pick("queued", "sending", "sent", "dry_run", "failed", "suppressed"), pick("TRUE", "FALSE"), 1+r.IntN(22))
		},
		func() string {
			return fmt.Sprintf("UPDATE messages SET needs_review = NOT needs_review WHERE id %% 5 = %d", r.IntN(5))
		},
		func() string {
			return fmt.Sprintf(`INSERT INTO messages (id, lead_id, to_addr, template, subject, body, status, needs_review, created_at, updated_at)
				VALUES (%d, %d, 'x@co.example', 't', 's', 'b', '%s', %s, %s, %s)`, newID(), 1+r.IntN(30), pick("queued", "sent"), pick("TRUE", "FALSE"), at, at)
		},
		func() string { return fmt.Sprintf("DELETE FROM messages WHERE id = %d", 1+r.IntN(22)) },
		// agent runs, audit log, suppressions, reply sortings
		func() string {
			return fmt.Sprintf("INSERT INTO agent_runs (id, agent, trigger, started_at, outcome) VALUES (%d, '%s', 'manual', %s, '%s')",
				newID(), pick("bizdev", "billing", "ops"), at, pick("running", "ok", "failed", "interrupted"))
		},
		func() string {
			return fmt.Sprintf("UPDATE agent_runs SET outcome = '%s' WHERE id = %d", pick("ok", "failed", "panicked"), 1+r.IntN(12))
		},
		func() string {
			return fmt.Sprintf("UPDATE agent_runs SET agent = '%s' WHERE id = %d", pick("bizdev", "ops"), 1+r.IntN(12))
		},
		func() string { return fmt.Sprintf("DELETE FROM agent_runs WHERE id = %d", 1+r.IntN(12)) },
		func() string {
			return fmt.Sprintf("INSERT INTO audit_log (id, actor, action, created_at) VALUES (%d, 'admin', 'x', %s)", newID(), at)
		},
		func() string { return fmt.Sprintf("DELETE FROM audit_log WHERE id = %d", 1+r.IntN(12)) },
		func() string {
			return fmt.Sprintf("UPDATE suppressions SET reason = '%s' WHERE id = %d", pick("unsubscribed", "bounced", "complaint", "manual"), 1+r.IntN(6))
		},
		func() string {
			id := newID()
			return fmt.Sprintf("INSERT INTO suppressions (id, kind, value, reason, created_at) VALUES (%d, 'domain', 'd%d.example', '%s', %s)",
				id, id, pick("unsubscribed", "complaint"), at)
		},
		func() string { return fmt.Sprintf("DELETE FROM suppressions WHERE id = %d", 1+r.IntN(6)) },
		func() string {
			return fmt.Sprintf("UPDATE reply_sortings SET cost_cents = %d, currency = '%s' WHERE id = %d", r.IntN(9), pick("usd", "eur"), 1+r.IntN(6))
		},
		func() string { return fmt.Sprintf("DELETE FROM reply_sortings WHERE id = %d", 1+r.IntN(6)) },
	}
	out := make([]string, n)
	for i := range out {
		out[i] = gens[r.IntN(len(gens))]()
	}
	return out
}

// keptMixRun applies the base data and the changes to d, checking after
// every batch of ten that kept_totals equals kept_totals_expected, and
// returns each change's outcome ("3 rows" or "refused"), the final totals
// and the metrics (agent_runs:NAME as agent_runs) any check saw.
func keptMixRun(t *testing.T, d *DB, name string, changes []string) ([]string, map[keptKey][2]int64, map[string]bool) {
	t.Helper()
	ctx := context.Background()
	for _, q := range keptMixBase() {
		if _, err := d.Bun().ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: base data: %s: %v", name, q, err)
		}
	}
	seen := map[string]bool{}
	check := func(when string) {
		kept := keptRows(t, d, "kept_totals")
		for _, l := range keptDiff("kept_totals", kept, "kept_totals_expected", keptRows(t, d, "kept_totals_expected")) {
			t.Errorf("%s, %s: %s", name, when, l)
		}
		for k := range kept {
			seen[strings.SplitN(k.metric, ":", 2)[0]] = true
		}
	}
	check("after the base data")
	outcomes := make([]string, len(changes))
	for i, q := range changes {
		res, err := d.Bun().ExecContext(ctx, q)
		if err != nil {
			outcomes[i] = "refused"
		} else {
			n, _ := res.RowsAffected()
			outcomes[i] = fmt.Sprintf("%d rows", n)
		}
		if i%10 == 9 {
			check(fmt.Sprintf("after change %d (%s)", i+1, q))
			if t.Failed() {
				t.FailNow()
			}
		}
	}
	return outcomes, keptRows(t, d, "kept_totals"), seen
}

func TestKeptTotalsAgreeOnBothDialects(t *testing.T) {
	changes := keptMixChanges(600)
	lite, err := Open(context.Background(), filepath.Join(t.TempDir(), FileName))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = lite.Close() })
	pg := mustOpenPostgres(t)

	liteOut, liteTotals, _ := keptMixRun(t, lite, "SQLite", changes)
	pgOut, pgTotals, seen := keptMixRun(t, pg, "PostgreSQL", changes)

	changed := 0
	for i := range changes {
		if liteOut[i] != pgOut[i] {
			t.Errorf("change %d (%s): SQLite %s, PostgreSQL %s", i+1, changes[i], liteOut[i], pgOut[i])
		}
		if liteOut[i] != "refused" && liteOut[i] != "0 rows" {
			changed++
		}
	}
	for _, l := range keptDiff("SQLite", liteTotals, "PostgreSQL", pgTotals) {
		t.Errorf("final kept totals differ: %s", l)
	}
	// The mix must exercise what it claims to: most changes land, and the
	// checks saw figures of every kind, due days included.
	if changed < 300 {
		t.Errorf("only %d of %d changes changed a row: the test proves little", changed, len(changes))
	}
	for _, m := range []string{"leads", "customers", "messages", "messages_review", "suppressions", "tasks", "task_cost",
		"unbilled", "invoices", "open_due", "agent_runs", "audit_log", "paid_cost", "reply_sort_cost"} {
		if !seen[m] {
			t.Errorf("no check saw a %s total: the mix does not reach it", m)
		}
	}
}

// TestPostgresDueDayIsTheUTCDay: the open_due label is the due time's UTC
// day whatever the session's time zone (the store sets UTC, a psql session
// of an operator may not), as SQLite's first ten characters of the UTC text.
func TestPostgresDueDayIsTheUTCDay(t *testing.T) {
	ctx := context.Background()
	d := mustOpenPostgres(t)
	tx, err := d.Bun().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, q := range []string{
		"SET LOCAL TIME ZONE 'America/New_York'",
		`INSERT INTO customers (id, company, contact_email, plan, portal_token_hash, token_created_at, created_at)
		 VALUES (1, 'Acme', 'a@acme.io', 'starter', repeat('a', 64), now(), now())`,
		// 22:30 on the 14th in New York is 02:30 on the 15th in UTC.
		`INSERT INTO invoices (id, customer_id, number, currency, amount_cents, status, due_at, created_at, updated_at)
		 VALUES (1, 1, 'INV-000001', 'usd', 500, 'open', '2025-03-14 22:30:00-04:00', now(), now())`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var kept, expected string
	if err := tx.NewRaw("SELECT label FROM kept_totals WHERE metric = 'open_due'").Scan(ctx, &kept); err != nil {
		t.Fatal(err)
	}
	if err := tx.NewRaw("SELECT label FROM kept_totals_expected WHERE metric = 'open_due'").Scan(ctx, &expected); err != nil {
		t.Fatal(err)
	}
	if kept != "2025-03-15" || expected != "2025-03-15" {
		t.Errorf("due day kept as %q, expected as %q; want the UTC day 2025-03-15", kept, expected)
	}
}
