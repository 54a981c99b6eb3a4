package db

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hossagent/hossagent/db/pgtest"
)

// This file holds what the mail, outreach and activity tests need to run on
// both dialects: a store opened with the test's options on the dialect of
// the run, several stores on one PostgreSQL database (as several instances
// of the app), test data times written in each dialect's SQL, and the
// PostgreSQL plan check of the outbox's hot queries.

// openTestStore opens a fresh, migrated store with opts: a SQLite file, or
// on the PostgreSQL run a new database.
func openTestStore(t *testing.T, opts ...Option) *DB {
	t.Helper()
	ctx := context.Background()
	var d *DB
	var err error
	if testOnPostgres() {
		d, err = OpenPostgres(ctx, pgtest.Start(t).NewDatabase(t), opts...)
	} else {
		d, err = Open(ctx, filepath.Join(t.TempDir(), FileName), opts...)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// openInstances opens n stores on one new PostgreSQL database, each with
// its own connection pool, as n instances of the app would; the first
// migrates it. It always runs on PostgreSQL (skipping, or under CI=true
// failing, when no server can start): on SQLite a second process on one
// file refuses to start (lock.go), so there is nothing to race.
func openInstances(t *testing.T, n int, opts ...Option) []*DB {
	t.Helper()
	d, err := OpenPostgres(context.Background(), pgtest.Start(t).NewDatabase(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return mustOpenInstances(t, d, n)
}

// testMinutesAfter2026 is the SQL of 2026-01-01 00:00 UTC plus minutes
// (and seconds) given as SQL integer expressions, in the run's dialect:
// SQLite's datetime() text, or a PostgreSQL timestamptz.
func testMinutesAfter2026(minutes, seconds string) string {
	if testOnPostgres() {
		return "(TIMESTAMPTZ '2026-01-01 00:00:00+00' + (" + minutes + ") * INTERVAL '1 minute' + (" + seconds + ") * INTERVAL '1 second')"
	}
	if seconds == "0" {
		return "datetime('2026-01-01', '+' || (" + minutes + ") || ' minutes')"
	}
	return "datetime('2026-01-01', '+' || (" + minutes + ") || ' minutes', '+' || (" + seconds + ") || ' seconds')"
}

// checkPGPlan fails when the plan of query (pgPlanOf, queries_test.go)
// reads one of the big tables (messages, leads, suppressions,
// outreach_drafts) from end to end, and when it misses one of the indexes
// uses names.
func checkPGPlan(t *testing.T, d *DB, name, query string, uses ...string) {
	t.Helper()
	plan := pgPlanOf(t, d, query)
	for _, scan := range plan.seqScans("messages", "leads", "suppressions", "outreach_drafts") {
		t.Errorf("%s: a %s\nplan: %s\nquery: %s", name, scan, plan, query)
	}
	for _, idx := range uses {
		if !plan.uses(idx) {
			t.Errorf("%s does not use %s\nplan: %s\nquery: %s", name, idx, plan, query)
		}
	}
}

// seedMailPG fills a PostgreSQL store with n leads and their outreach,
// the shape of a store after months of sending: most leads contacted with
// their message sent, a tenth new (half of those with a queued message), a
// few bounced or unsubscribed and suppressed, a few drafts waiting among
// many decided ones; then ANALYZE, as autovacuum would have.
func seedMailPG(t *testing.T, d *DB, n int, now time.Time) {
	t.Helper()
	base := now.Add(-60 * 24 * time.Hour).UTC().Format("2006-01-02 15:04:05+00")
	ts := func(secs string) string {
		return fmt.Sprintf("(TIMESTAMPTZ '%s' + (%s) * INTERVAL '1 second')", base, secs)
	}
	span := fmt.Sprint(60 * 24 * 3600 / n) // seconds between two leads: the last is a little before now
	stmts := []string{
		`INSERT INTO leads (name, email, company, domain_key, niche, website, source, status, contacted_at, sequence_step, created_at, updated_at)
		SELECT 'Pat ' || i, 'pat' || i || '@lead' || i || '.example', 'Lead ' || i, 'lead' || i || '.example', 'B2B SaaS', '', 'plan',
			CASE i % 10 WHEN 0 THEN 'new' WHEN 8 THEN 'bounced' WHEN 9 THEN 'unsubscribed' ELSE 'contacted' END,
			CASE WHEN i % 10 <> 0 THEN ` + ts("i * "+span+" + 60") + ` END, CASE WHEN i % 10 <> 0 THEN 1 ELSE 0 END,
			` + ts("i * "+span) + `, ` + ts("i * "+span) + ` FROM generate_series(1, ` + fmt.Sprint(n) + `) AS i`,
		`INSERT INTO messages (lead_id, to_addr, template, subject, body, status, attempts, step, created_at, sending_at, sent_at, updated_at)
		SELECT id, email, 'general', 'Hello', 'body', 'sent', 1, 1, created_at, contacted_at, contacted_at, contacted_at
		FROM leads WHERE status <> 'new' ORDER BY id`,
		`INSERT INTO messages (lead_id, to_addr, template, subject, body, status, attempts, step, created_at, updated_at)
		SELECT id, email, 'general', 'Hello', 'body', 'queued', 0, 1, created_at, created_at
		FROM leads WHERE status = 'new' AND id % 20 = 0 ORDER BY id`,
		`INSERT INTO suppressions (kind, value, reason, created_at)
		SELECT 'address', email, CASE status WHEN 'bounced' THEN 'bounced' ELSE 'unsubscribed' END, contacted_at + INTERVAL '1 hour'
		FROM leads WHERE status IN ('bounced', 'unsubscribed') ORDER BY id`,
		`INSERT INTO outreach_drafts (lead_id, step, template, to_addr, subject, body, status, revision, created_at, updated_at, decided_at, decided_by)
		SELECT id, 1, 'saas/1', email, 'Hello', 'Hi', CASE WHEN id % 500 = 3 THEN 'waiting' WHEN id % 3 = 0 THEN 'rejected' ELSE 'approved' END, 1,
			created_at, created_at, CASE WHEN id % 500 = 3 THEN NULL ELSE created_at END, CASE WHEN id % 500 = 3 THEN '' ELSE 'admin' END
		FROM leads WHERE status = 'contacted' ORDER BY id`,
		"ANALYZE",
	}
	for _, s := range stmts {
		mustExec(t, d.Bun(), s)
	}
}

// refuseWrites makes the database refuse event ("INSERT", "UPDATE OF
// status", "DELETE") on table with message, for the rows where when (an SQL
// condition on NEW, "" for every row) holds: a failure a test provokes
// inside a transaction. SQLite takes a trigger that raises ABORT;
// PostgreSQL a plpgsql trigger function that raises an exception.
func refuseWrites(t *testing.T, d *DB, name, event, table, when, message string) {
	t.Helper()
	if !testOnPostgres() {
		if when != "" {
			when = " WHEN " + when
		}
		mustExec(t, d.Bun(), "CREATE TRIGGER "+name+" BEFORE "+event+" ON "+table+when+" BEGIN SELECT RAISE(ABORT, '"+message+"'); END")
		return
	}
	if when != "" {
		when = " WHEN (" + when + ")"
	}
	mustExec(t, d.Bun(), "CREATE FUNCTION "+name+"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '"+message+"'; END $$")
	mustExec(t, d.Bun(), "CREATE TRIGGER "+name+" BEFORE "+event+" ON "+table+" FOR EACH ROW"+when+" EXECUTE FUNCTION "+name+"()")
}
