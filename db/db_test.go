package db

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"
)

// fixedNow is the time every test store reads from its clock. Due dates and
// leases in the fixtures are placed relative to it.
var fixedNow = time.Date(2025, time.March, 14, 12, 0, 0, 0, time.UTC)

// mustOpen opens a migrated store with the fixed clock, closed when the
// test ends: on a fresh SQLite file, or on a fresh PostgreSQL database when
// HOSSAGENT_TEST_DB=postgres (make test runs this package's tests both ways).
func mustOpen(tb testing.TB) *DB {
	tb.Helper()
	if testOnPostgres() {
		return mustOpenPostgres(tb)
	}
	return mustOpenPath(tb, filepath.Join(tb.TempDir(), FileName))
}

// testOnPostgres reports whether this run of the package's tests is the
// PostgreSQL one.
func testOnPostgres() bool { return os.Getenv("HOSSAGENT_TEST_DB") == "postgres" }

// sqliteOnly skips tb on the PostgreSQL run: for tests of what only the
// SQLite store has (its file, its lock, its query planner). why says what
// stands for it on PostgreSQL.
func sqliteOnly(tb testing.TB, why string) {
	tb.Helper()
	if testOnPostgres() {
		tb.Skip("SQLite only: " + why)
	}
}

func mustOpenPath(tb testing.TB, path string) *DB {
	tb.Helper()
	d, err := Open(context.Background(), path, WithClock(func() time.Time { return fixedNow }))
	if err != nil {
		tb.Fatalf("Open(%s): %v", path, err)
	}
	tb.Cleanup(func() { _ = d.Close() })
	return d
}

// wantTables is every table the migrations create.
var wantTables = []string{
	"agent_runs", "api_tokens", "audit_log", "client_attachments", "client_messages", "collection_jobs", "counters",
	"customers", "customers_fts", "invoice_lines", "invoice_link_errors", "invoices", "invoices_fts", "kept_totals", "leads", "leads_fts",
	"messages", "outreach_drafts", "plan_items", "plan_niches", "plans", "portal_links", "portal_sessions", "replies", "reply_sortings", "sequence_steps", "sessions", "settings",
	"stripe_events", "suppressions", "task_kinds", "tasks", "tasks_fts", "unbilled_tasks", "users",
}

// embeddedMigrations are the names of the migrations in the binary, in order.
func embeddedMigrations(tb testing.TB) []string {
	tb.Helper()
	files, err := fs.Glob(migrationFiles, "migrations/*.up.sql")
	if err != nil {
		tb.Fatal(err)
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = strings.SplitN(path.Base(f), "_", 2)[0]
	}
	return names
}

func tableNames(tb testing.TB, d *DB) []string {
	tb.Helper()
	var names []string
	err := d.Bun().NewRaw(`SELECT name FROM sqlite_master WHERE type = 'table'
		AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name NOT LIKE 'bun\_%' ESCAPE '\'
		AND name NOT LIKE '%\_fts\_%' ESCAPE '\' ORDER BY name`).
		Scan(context.Background(), &names)
	if err != nil {
		tb.Fatalf("list tables: %v", err)
	}
	return names
}

func countRows(tb testing.TB, d *DB, query string, args ...any) int {
	tb.Helper()
	var n int
	if err := d.Bun().NewRaw(query, args...).Scan(context.Background(), &n); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestOpenMigratesEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "dir", FileName)
	d := mustOpenPath(t, path)

	if got := tableNames(t, d); !slices.Equal(got, wantTables) {
		t.Fatalf("tables = %v, want %v", got, wantTables)
	}
	if n := countRows(t, d, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND name = 'invoices_paid_is_final'"); n != 1 {
		t.Fatalf("trigger invoices_paid_is_final: found %d", n)
	}
	var applied []string
	if err := d.Bun().NewRaw("SELECT name FROM bun_migrations ORDER BY id").Scan(context.Background(), &applied); err != nil {
		t.Fatalf("read applied migrations: %v", err)
	}
	if want := embeddedMigrations(t); !slices.Equal(applied, want) || len(want) < 4 {
		t.Fatalf("applied migrations = %v, want %v", applied, want)
	}
	if d.Path() != path {
		t.Fatalf("Path() = %q, want %q", d.Path(), path)
	}
	if err := d.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func TestOpenTwiceIsNoOpAndKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), FileName)
	first, err := Open(ctx, path, WithClock(func() time.Time { return fixedNow }))
	if err != nil {
		t.Fatalf("first Open: %v", err)
	}
	if err := first.SetSetting(ctx, "autopilot", "on"); err != nil {
		t.Fatalf("SetSetting: %v", err)
	}
	if _, err := first.CreateLead(ctx, nil, NewLead{Email: "kept@example.com", Company: "Kept", Source: "test"}); err != nil {
		t.Fatalf("CreateLead: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	second := mustOpenPath(t, path)
	if got, want := countRows(t, second, "SELECT COUNT(*) FROM bun_migrations"), len(embeddedMigrations(t)); got != want {
		t.Fatalf("migrations recorded after reopening = %d, want %d", got, want)
	}
	if got := countRows(t, second, "SELECT COUNT(*) FROM leads WHERE email = 'kept@example.com'"); got != 1 {
		t.Fatalf("lead rows after reopening = %d, want 1", got)
	}
	if v, err := second.Setting(ctx, "autopilot", "off"); err != nil || v != "on" {
		t.Fatalf("Setting after reopening = %q, %v; want on", v, err)
	}
	// Migrating again by hand is a no-op too.
	if err := second.Migrate(ctx); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	if got := tableNames(t, second); !slices.Equal(got, wantTables) {
		t.Fatalf("tables after reopening = %v", got)
	}
}

func TestOpenExistingNeverCreatesOrMigrates(t *testing.T) {
	ctx := context.Background()
	missing := filepath.Join(t.TempDir(), "absent.db")
	if d, err := OpenExisting(ctx, missing); err == nil {
		d.Close()
		t.Fatal("OpenExisting on a missing file succeeded")
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("OpenExisting created %s (stat err %v)", missing, err)
	}

	path := filepath.Join(t.TempDir(), FileName)
	mustOpenPath(t, path).Close()
	d, err := OpenExisting(ctx, path)
	if err != nil {
		t.Fatalf("OpenExisting: %v", err)
	}
	defer d.Close()
	if got := tableNames(t, d); !slices.Equal(got, wantTables) {
		t.Fatalf("tables = %v", got)
	}
}

func TestDSNPragmasApplyToEveryConnection(t *testing.T) {
	sqliteOnly(t, "PostgreSQL sessions take their settings from the URL's runtime parameters (postgres.go)")
	ctx := context.Background()
	d := mustOpen(t)
	// Hold several connections at once so the pool must open distinct ones;
	// each must carry the pragmas, since SQLite keeps them per connection.
	const conns = 3
	for i := range conns {
		conn, err := d.Bun().Conn(ctx)
		if err != nil {
			t.Fatalf("conn %d: %v", i, err)
		}
		defer conn.Close()
		var fk, busy, sync int
		var journal string
		for _, p := range []struct {
			pragma string
			dst    any
		}{
			{"PRAGMA foreign_keys", &fk},
			{"PRAGMA journal_mode", &journal},
			{"PRAGMA busy_timeout", &busy},
			{"PRAGMA synchronous", &sync},
		} {
			if err := conn.QueryRowContext(ctx, p.pragma).Scan(p.dst); err != nil {
				t.Fatalf("conn %d: %s: %v", i, p.pragma, err)
			}
		}
		if fk != 1 || journal != "wal" || busy != 5000 || sync != 1 {
			t.Errorf("conn %d: foreign_keys=%d journal_mode=%s busy_timeout=%d synchronous=%d; want 1 wal 5000 1",
				i, fk, journal, busy, sync)
		}
	}
}

func TestDSNEscapesPath(t *testing.T) {
	got := DSN("/data dir/hoss?agent.db")
	want := "file:/data%20dir/hoss%3Fagent.db?" + dsnPragmas
	if got != want {
		t.Fatalf("DSN = %q, want %q", got, want)
	}
	// A path with a space really opens.
	mustOpenPath(t, filepath.Join(t.TempDir(), "with space", FileName))
}

func TestRunInTxRollsBackOnError(t *testing.T) {
	errRollback := errors.New("roll back")
	ctx := context.Background()
	d := mustOpen(t)
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if _, err := d.CreateLead(ctx, tx, NewLead{Email: "gone@example.com", Company: "Gone", Source: "test"}); err != nil {
			return err
		}
		return errRollback
	})
	if err != errRollback {
		t.Fatalf("RunInTx = %v, want errRollback", err)
	}
	if n := countRows(t, d, "SELECT COUNT(*) FROM leads"); n != 0 {
		t.Fatalf("leads after rollback = %d, want 0", n)
	}
	if !d.Now().Equal(fixedNow) || d.Now().Location() != time.UTC {
		t.Fatalf("Now() = %v, want %v in UTC", d.Now(), fixedNow)
	}
}

// TestRunInTxTakesTheWriteLockAtOnce proves _txlock=immediate: a transaction
// that has only read still holds the write lock, so another writer waits (up
// to busy_timeout) instead of the transaction failing later with SQLITE_BUSY.
// Under WAL a deferred transaction would let the other write through at once.
func TestRunInTxTakesTheWriteLockAtOnce(t *testing.T) {
	sqliteOnly(t, "PostgreSQL has no database write lock: transactions run SERIALIZABLE and RunInTx runs one aborted by a conflict again (TestPostgresRunInTxRetriesSerializationFailures)")
	ctx := context.Background()
	d := mustOpen(t)
	inTx, release := make(chan struct{}), make(chan struct{})
	txDone := make(chan error, 1)
	go func() {
		txDone <- d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
			var n int
			if err := tx.NewRaw("SELECT COUNT(*) FROM leads").Scan(ctx, &n); err != nil {
				return err
			}
			close(inTx)
			<-release
			return nil
		})
	}()
	select {
	case <-inTx:
	case err := <-txDone:
		t.Fatalf("transaction ended early: %v", err)
	}

	wrote := make(chan error, 1)
	go func() { wrote <- d.SetSetting(ctx, "autopilot", "on") }()
	select {
	case err := <-wrote:
		close(release)
		t.Fatalf("write finished (err %v) while a read-only transaction was open: transactions are not immediate", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if err := <-txDone; err != nil {
		t.Fatalf("RunInTx: %v", err)
	}
	if err := <-wrote; err != nil {
		t.Fatalf("waiting write: %v", err)
	}
}
