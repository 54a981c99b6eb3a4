// Package db is HossAgent's store: bun over a SQLite file, the embedded
// numbered migrations that define the schema, the queries the agents and the
// web layer run, and the invariant checker that proves the money rules hold.
//
// db imports none of the other HossAgent packages.
package db

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"
	_ "modernc.org/sqlite" // the pure-Go SQLite driver, registered as "sqlite"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// postgresMigrationFiles are the same numbered migrations written for
// PostgreSQL; schema_equiv_test.go keeps the two schemas equivalent.
//
//go:embed migrations/postgres
var postgresMigrationFiles embed.FS

// FileName is the name of the database file inside DATA_DIR.
const FileName = "hossagent.db"

// dsnPragmas are the connection settings every connection gets:
//   - busy_timeout(5000): wait up to 5 s for another writer instead of failing
//     at once with SQLITE_BUSY;
//   - journal_mode(WAL): readers (pages, SSE) never block the agents' writes;
//   - foreign_keys(1): SQLite leaves foreign keys off unless asked, per
//     connection;
//   - synchronous(NORMAL): durable at every checkpoint, safe with WAL;
//   - cache_size(-8192): 8 MiB of page cache per connection instead of
//     SQLite's 2 MiB, so the hot index pages of a large file stay in memory
//     (the cache grows only as pages are read; an idle app does not pay it);
//   - _txlock=immediate: every transaction takes the write lock when it
//     begins. A deferred transaction that reads and then writes fails with
//     SQLITE_BUSY under concurrency instead of waiting.
const dsnPragmas = "_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_pragma=cache_size(-8192)&_txlock=immediate"

// DSN returns the modernc.org/sqlite data source name for the file at path.
func DSN(path string) string {
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + dsnPragmas
}

// DB is the HossAgent store. It is safe for concurrent use.
type DB struct {
	bun *bun.DB
	// path is the SQLite file; "" on PostgreSQL.
	path string
	// url is the PostgreSQL server's URL (its password removed when shown);
	// nil on SQLite.
	url *url.URL
	now func() time.Time
	// guard is the deliverability guard's configuration (deliverability.go).
	guard Guard
}

// Option changes how Open builds a DB.
type Option func(*DB)

// WithClock makes the store read the time from now instead of time.Now. Tests
// inject a fixed clock; every stored time is converted to UTC regardless.
func WithClock(now func() time.Time) Option {
	return func(d *DB) { d.now = now }
}

// Open opens (creating it if needed) the SQLite file at path and applies every
// pending migration. The directory is created when missing.
func Open(ctx context.Context, path string, opts ...Option) (*DB, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("db: unable to create data directory %s: %w", dir, err)
		}
	}
	d, err := openFile(path, opts...)
	if err != nil {
		return nil, err
	}
	if err := d.Migrate(ctx); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// OpenExisting opens a database file that must already exist, read-only and
// without migrating it. The checker uses it so that checking a file never
// changes it.
func OpenExisting(ctx context.Context, path string, opts ...Option) (*DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("db: unable to open %s: %w", path, err)
	}
	d, err := openDSN(path, readOnlyDSN(path), opts...)
	if err != nil {
		return nil, err
	}
	if err := d.bun.PingContext(ctx); err != nil {
		d.Close()
		return nil, fmt.Errorf("db: unable to reach %s: %w", path, err)
	}
	return d, nil
}

// OpenExistingWritable opens a database file that must already exist, for
// writing but without migrating it: for repairs an operator asks for
// (check --repair-totals), beside a running app.
func OpenExistingWritable(ctx context.Context, path string, opts ...Option) (*DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("db: unable to open %s: %w", path, err)
	}
	d, err := openFile(path, opts...)
	if err != nil {
		return nil, err
	}
	if err := d.bun.PingContext(ctx); err != nil {
		d.Close()
		return nil, fmt.Errorf("db: unable to reach %s: %w", path, err)
	}
	return d, nil
}

// readOnlyDSN opens a file without changing it: no journal-mode switch, no
// writes (the checker reads a live database or a backup as it is).
func readOnlyDSN(path string) string {
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?mode=ro&_pragma=busy_timeout(5000)&_pragma=query_only(1)"
}

func openFile(path string, opts ...Option) (*DB, error) {
	return openDSN(path, DSN(path), opts...)
}

func openDSN(path, dsn string, opts ...Option) (*DB, error) {
	sqldb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("db: unable to open %s: %w", path, err)
	}
	// One writer at a time is all SQLite allows; in WAL mode readers never
	// wait for it, so a few connections let pages, streams and the API read
	// while an agent writes.
	sqldb.SetMaxOpenConns(6)
	sqldb.SetMaxIdleConns(6)
	sqldb.SetConnMaxIdleTime(5 * time.Minute)
	d := &DB{bun: bun.NewDB(sqldb, newDialect()), path: path, now: time.Now, guard: DefaultGuard()}
	for _, o := range opts {
		o(d)
	}
	return d, nil
}

// Migrate applies the embedded migrations that the database has not seen
// yet: the SQLite set, or on PostgreSQL the PostgreSQL one.
func (d *DB) Migrate(ctx context.Context) error {
	ms := migrate.NewMigrations()
	files := migrationFiles
	if d.Postgres() {
		files = postgresMigrationFiles
	}
	if err := ms.Discover(files); err != nil {
		return fmt.Errorf("db: unable to read migrations: %w", err)
	}
	if d.Postgres() {
		// Several instances may start at once on an empty database: each
		// waits for the others' migrations (then finds nothing to do). The
		// session lock is held on one connection of the pool, the
		// migrations run on others.
		conn, err := d.bun.Conn(ctx)
		if err != nil {
			return fmt.Errorf("db: unable to lock the migrations: %w", err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(?, ?)", lockSpace, lockMigrate); err != nil {
			return fmt.Errorf("db: unable to lock the migrations: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(?, ?)", lockSpace, lockMigrate) //nolint:errcheck // the session's end releases it too
	}
	m := migrate.NewMigrator(d.bun, ms, migrate.WithMarkAppliedOnSuccess(true))
	if err := m.Init(ctx); err != nil {
		return fmt.Errorf("db: unable to prepare migration tables: %w", err)
	}
	if _, err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("db: unable to apply migrations: %w", err)
	}
	return nil
}

// BackupTo writes a consistent copy of the database to path with SQLite's
// VACUUM INTO, while the app keeps running. path must not exist yet.
func (d *DB) BackupTo(ctx context.Context, path string) error {
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("db: backup %s already exists", path)
	}
	if _, err := d.bun.ExecContext(ctx, "VACUUM INTO ?", path); err != nil {
		return fmt.Errorf("db: unable to back up to %s: %w", path, err)
	}
	return nil
}

// Close closes the database.
func (d *DB) Close() error { return d.bun.Close() }

// Path is the file the store was opened on.
func (d *DB) Path() string { return d.path }

// Ping reports whether the database answers a query.
func (d *DB) Ping(ctx context.Context) error {
	var one int
	if err := d.bun.NewRaw("SELECT 1").Scan(ctx, &one); err != nil {
		return fmt.Errorf("db: unable to reach database: %w", err)
	}
	return nil
}

// Bun exposes the underlying bun handle to tests. Code outside this package
// goes through the store's methods and builds no queries of its own.
func (d *DB) Bun() *bun.DB { return d.bun }

// Now is the store's clock, in UTC.
func (d *DB) Now() time.Time { return d.now().UTC() }

// RunInTx runs fn in one transaction, committed when fn returns nil: an
// immediate one on SQLite (it holds the write lock from its start), a
// SERIALIZABLE one on PostgreSQL, run again when PostgreSQL aborts it for
// a conflict with a concurrent transaction (postgres.go).
func (d *DB) RunInTx(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
	if d.Postgres() {
		return d.runInTxPostgres(ctx, nil, fn)
	}
	return d.bun.RunInTx(ctx, nil, fn)
}

// ErrNotFound is returned when the asked-for record does not exist.
var ErrNotFound = errors.New("not found")

func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// or returns idb, or the database itself when idb is nil, so that a write can
// join the caller's transaction or run on its own.
func (d *DB) or(idb bun.IDB) bun.IDB {
	if idb == nil {
		return d.bun
	}
	return idb
}

func affected(res sql.Result) int {
	n, err := res.RowsAffected()
	if err != nil {
		return 0
	}
	return int(n)
}
